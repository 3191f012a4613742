r"""``pikflow bench multilevel``: the multilevel hierarchy against the single-level flow and HMC, at equal errors.

:func:`pikflow.lattice.multilevel` samples φ⁴ at ``(m2, lam)`` from ``--sizes[0]`` (HMC) up to
``--sizes[-1]``, one SMC run per level, each level's proposal checked (IMH acceptance, and the hole
check against ``--hole-check`` HMC configurations of that level). On the finest lattice
:func:`pikflow.lattice.hmc` (tuned step, ``--reference`` trajectories, Gamma-method errors) measures
the same observables, and the single-level flow (:func:`pikflow.lattice.fit_lattice`, ``--single-n``
samples, IMH estimates; ``--single-n 0`` skips it) samples the same target. The table gives every
level's ESS/N, checks and seconds, the pulls of the final observables against HMC, and HMC's cost at
each sampler's errors, :math:`\text{s}_{\rm HMC}(\sigma_{\rm HMC}/\sigma)^2`, over that sampler's total
seconds (the hierarchy's and the flow's set-up and compilation included, so the ratios are conservative),
and the process's peak resident memory (``ru_maxrss``).
"""

from __future__ import annotations

import math
import resource
import time

from .._errors import ConfigError
from . import register
from ._common import OBSERVABLES, chains_argument, fourier_mass_argument, replica_cost_correction, write_json
from ._hmc_length import tuned_leapfrog
from ._lattice import timed_sample


def _arguments(p):
    p.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 32], help="lattice sizes (default 4 8 16 32)")
    p.add_argument("--m2", type=float, default=-1.0, help="m2 of eq. 31 (default -1)")
    p.add_argument("--lam", type=float, default=1.0, help="lam of eq. 31 (default 1)")
    p.add_argument("--particles", type=int, default=1000, help="particles per replica (default 1000)")
    p.add_argument("--replicas", type=int, default=4, help="independent replicas (default 4)")
    p.add_argument("--steps", type=int, default=20, help="SMC steps per level (default 20)")
    p.add_argument("--sigma", type=float, default=None, help="noise width (default: free-field block width)")
    p.add_argument(
        "--noise", choices=("white", "conditional", "fourier"), default="conditional", help="lift noise (default)"
    )
    p.add_argument("--mass2", default="auto", help="m_f^2 of the conditional noise, or auto (default)")
    p.add_argument("--scale", default="auto", help="field scale a, or auto (default)")
    p.add_argument("--coarse-m2", type=float, default=None, help="m2 of the coarser levels (default: --m2)")
    p.add_argument("--coarse-lam", type=float, default=None, help="lam of the coarser levels (default: --lam)")
    p.add_argument("--transport", choices=("none", "pik"), default="none", help="SMC transport: none or a PIK flow")
    p.add_argument("--collocation", type=int, default=1000, help="collocation configurations per level flow (pik)")
    p.add_argument("--mcmc", choices=("hmc", "fhmc", "mala"), default="hmc", help="SMC moves (default hmc)")
    p.add_argument(
        "--fourier-mass",
        type=fourier_mass_argument,
        default=1.0,
        help="fhmc: mu^2 of the mass k^2 + mu^2, or adaptive (measured from the particles; default 1)",
    )
    p.add_argument("--coarse-basis", action="store_true", help="level flows: add the coarse basis on the block means")
    p.add_argument(
        "--level-bins",
        type=int,
        default=None,
        help="level flows: merge the two-point terms' momentum orbits into this many groups (default: per orbit)",
    )
    p.add_argument("--reference", type=int, default=20000, help="HMC trajectories on the finest lattice")
    p.add_argument("--chains", type=int, default=16, help="HMC chains (default 16)")
    p.add_argument(
        "--hmc-leapfrog", type=chains_argument, default="auto",
        help="leapfrog steps a trajectory of the reference HMC on the finest lattice, or auto (default): the best of "
        "10, 20, 30, 40 (and longer while the longest is best) in a short pilot (as bench lattice --leapfrog; "
        "reported, not counted in HMC's seconds)",
    )  # fmt: skip
    p.add_argument(
        "--hmc-start",
        choices=("hot", "ordered"),
        default="hot",
        help="start of every HMC run (coarsest level, hole checks, reference, the single-level flow's): 'hot' "
        "(default) or 'ordered' (the uniform minimum of the action; for the broken phase)",
    )
    p.add_argument(
        "--hole-check", type=int, default=1000, help="HMC configurations per level for its hole check (0: none)"
    )
    p.add_argument("--single-n", type=int, default=4000, help="single-level flow samples (0: no single-level flow)")
    p.add_argument("--single-basis", default=None, help="the single-level flow's basis preset (fit_lattice default)")
    p.add_argument("--single-steps", type=int, default=10, help="the single-level flow's RK4 steps (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")


@register("multilevel", "multilevel (upsampling + SMC per level) against the single-level flow and HMC", config=False)(
    _arguments
)
def run(args) -> dict:
    import jax

    import pikflow.lattice as pl

    if args.fourier_mass != 1.0 and args.mcmc != "fhmc":
        raise ConfigError(f"--fourier-mass is the mass of --mcmc fhmc moves; --mcmc is {args.mcmc}")
    fine = {"m2": args.m2, "lam": args.lam}
    coarse = {
        "m2": args.m2 if args.coarse_m2 is None else args.coarse_m2,
        "lam": args.lam if args.coarse_lam is None else args.coarse_lam,
    }
    target = lambda L: pl.LatticePath(  # noqa: E731
        pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), fine if L == args.sizes[-1] else coarse
    )
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    partial = lambda levels: write_json(args, {"settings": settings, "levels": [lev.summary() for lev in levels]})  # noqa: E731
    num = lambda v: v if v == "auto" else float(v)  # noqa: E731
    t0 = time.perf_counter()
    levels = pl.multilevel(
        target, args.sizes, particles=args.particles, replicas=args.replicas, steps=args.steps,
        sigma="free" if args.sigma is None else args.sigma, noise=args.noise, mass2=num(args.mass2),
        scale=num(args.scale), seed=args.seed, progress=not args.quiet, on_level=partial,
        transport=args.transport, mcmc=args.mcmc, fourier_mass=args.fourier_mass, hole_check=args.hole_check,
        hmc_options={"start": args.hmc_start},
        flow_options={"n_collocation": args.collocation, "basis_options": _level_basis_options(args)},
    )  # fmt: skip
    total = time.perf_counter() - t0
    L = args.sizes[-1]
    path = target(L)
    per = max(args.reference // args.chains, 20)
    key = jax.random.PRNGKey(args.seed + 7)
    # auto: HMC's trajectory length tuned by a short pilot (the HMC guide, "Trajectory length")
    leapfrog, pilot, pilot_seconds = tuned_leapfrog(
        args.hmc_leapfrog, path, args.chains, seed=args.seed + 8, start=args.hmc_start
    )
    kw = dict(n_chains=args.chains, step="auto", keep="magnetisation", start=args.hmc_start, n_leapfrog=leapfrog)
    pl.hmc(path, key, 20 * args.chains, n_therm=20, **kw)  # compile
    t1 = time.perf_counter()
    M, acc = pl.hmc(path, key, per * args.chains, progress=not args.quiet, **kw)
    hmc_secs = time.perf_counter() - t1
    ref = pl.chain_observables(M.reshape(-1), path.lattice.volume, chains=M.shape[0])
    final = levels[-1].observables
    fix = replica_cost_correction(args.replicas)["mean"]
    single = _single_level(args, path, ref, hmc_secs) if args.single_n > 0 else None
    res = {
        "settings": settings,
        "levels": [lev.summary() for lev in levels],
        "multilevel_seconds": total,
        "hmc": {
            "seconds": hmc_secs,
            "acceptance": float(acc),
            "leapfrog": leapfrog,
            "leapfrog_pilot": pilot,
            "leapfrog_pilot_seconds": pilot_seconds,
            "observables": {k: v.to_dict() for k, v in ref.items()},
        },  # fmt: skip
        "pull": {k: (final[k].value - ref[k].value) / math.hypot(final[k].error, ref[k].error) for k in OBSERVABLES},
        # the hierarchy's errors are replica errors: E[sigma^2/s^2] = nu/(nu - 2), corrected by (nu - 2)/nu
        "replica_cost_correction": fix,
        "hmc_over_multilevel_at_equal_errors": {
            k: hmc_secs * (ref[k].error / final[k].error) ** 2 / total * fix if final[k].error > 0 else math.nan
            for k in OBSERVABLES
        },
        "single_level": single,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    _print(res)
    write_json(args, res)
    return res


def _level_basis_options(args) -> dict | None:
    """``solve_level``'s basis keywords from ``--coarse-basis`` and ``--level-bins`` (``None``: the default basis)."""
    opts = {"coarse": {"fourier": False}} if args.coarse_basis else {}
    if args.level_bins is not None:
        opts["fourier_bins"] = args.level_bins
    return opts or None


def _single_level(args, path, ref: dict, hmc_secs: float) -> dict:
    """The single-level flow on the finest lattice: set-up, sampling and IMH estimates (:func:`timed_sample`, as
    ``bench lattice`` times them), hole check, pulls against HMC and HMC's cost at its errors over its seconds with
    and without the set-up (with it: also the compiling first calls of the draw and the estimates)."""
    import jax
    import numpy as np

    import pikflow.lattice as pl

    t0 = time.perf_counter()
    flow = pl.fit_lattice(path, basis=args.single_basis, steps=args.single_steps, seed=args.seed,
                          hmc_options={"start": args.hmc_start}, progress=not args.quiet)  # fmt: skip
    setup = time.perf_counter() - t0
    samples, obs, acc, secs = timed_sample(
        flow, jax.random.PRNGKey(args.seed + 11), args.single_n, jax.random.PRNGKey(args.seed + 12), not args.quiet
    )
    cold = float(flow.info["first_call_extra_seconds"])  # the draw's and estimates' compiling first calls
    reference = getattr(flow, "reference", None)
    tess = None if reference is None else float(flow.target_ess(reference, samples))
    ratio = lambda total: {  # noqa: E731
        k: hmc_secs * (ref[k].error / obs[k].error) ** 2 / total if obs[k].error > 0 else math.nan for k in OBSERVABLES
    }
    return {
        "basis": flow.basis.n, "steps": flow.steps, "setup_seconds": setup, "sample_seconds": secs, "n": args.single_n,
        "first_call_extra_seconds": cold,
        "ess": float(samples.ess()), "target_ess": tess, "imh_acceptance": float(acc),
        "observables": {k: v.to_dict() for k, v in obs.items()},
        "pull": {k: (obs[k].value - ref[k].value) / math.hypot(obs[k].error, ref[k].error) for k in OBSERVABLES},
        "hmc_over_single_level_at_equal_errors": ratio(secs),
        "hmc_over_single_level_with_setup": ratio(secs + setup + cold),
        "finite": float(np.mean(samples.finite)),
    }  # fmt: skip


def _print(res):
    s = res["settings"]
    print(f"\nphi^4 at (m2, lam) = ({s['m2']}, {s['lam']}), {s['particles']} particles x {s['replicas']} replicas")
    print(
        f"noise {s['noise']}, coarse levels at (m2, lam) = ({s['coarse_m2']}, {s['coarse_lam']}) (None: the target's)"
    )
    print("| L | ESS/N | min ESS/N | base ESS/N | IMH acc. | from HMC | Var log w (noise + coarse) | lift | seconds | "
          + " | ".join(OBSERVABLES) + " |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|" + "---|" * len(OBSERVABLES))
    for lev in res["levels"]:
        cells = [f"{lev['observables'][k]['value']:.4f}({lev['observables'][k]['error']:.4f})" for k in OBSERVABLES]
        b, lift = lev.get("base"), lev.get("lift") or {}
        var = "" if b is None else f"{b['var']:.3g} ({b['within']:.3g} + {b['between']:.3g})"
        sig = "" if lev["sigma"] is None else f"sigma {lev['sigma']:.3f}, "
        sig = (
            ""
            if not lift
            else sig + f"a {lift['scale']:.2f}" + (f", m_f^2 {lift['mass2']:.3g}" if "mass2" in lift else "")
        )
        print(
            f"| {lev['L']} | {lev['ess']:.3f} | {lev['min_ess']:.3f} | {_f(lev['base_ess'])} | "
            + f"{_f(lev.get('imh_acceptance'))} | {_f(lev.get('target_ess'))} | {var} | {sig} | "
            + f"{lev['seconds']:.1f} | "
            + " | ".join(cells)
            + " |"
        )
    for lev in res["levels"]:
        if lev.get("flow"):
            f, li = lev["flow"]["flow"], lev["flow"]["lift"]
            print(
                f"L {lev['L']} PIK flow ({lev['flow']['basis']} functions, {lev['flow']['seconds']:.1f} s, residual "
                f"{min(lev['flow']['residual']):.2f}-{max(lev['flow']['residual']):.2f}): Var log w {li['var']:.3g} "
                f"({li['within']:.3g} + {li['between']:.3g}) -> {f['var']:.3g} "
                f"({f['within']:.3g} + {f['between']:.3g}), "
                f"ESS/N {li['ess']:.3g} -> {f['ess']:.3g}"
            )
    h = res["hmc"]["observables"]
    print(
        "| HMC | | | | | | | | {:.1f} | ".format(res["hmc"]["seconds"])
        + " | ".join(f"{h[k]['value']:.4f}({h[k]['error']:.4f})" for k in OBSERVABLES)
        + " |"
    )
    print("pulls vs HMC:", ", ".join(f"{k} {v:+.2f}" for k, v in res["pull"].items()))
    print(
        "HMC / multilevel at equal errors:",
        ", ".join(f"{k} {v:.3g}" for k, v in res["hmc_over_multilevel_at_equal_errors"].items()),
    )
    print(f"peak memory of the process: {res['peak_memory_mb']:.0f} MB")
    sl = res.get("single_level")
    if sl:
        o = sl["observables"]
        print(
            f"single-level flow ({sl['basis']} functions, {sl['steps']} steps): ESS/N {sl['ess']:.3f}, from HMC "
            f"{_f(sl['target_ess'])}, IMH acceptance {sl['imh_acceptance']:.3f}, set-up {sl['setup_seconds']:.1f} s, "
            f"{sl['n']} samples {sl['sample_seconds']:.1f} s; "
            + ", ".join(f"{k} {o[k]['value']:.4f}({o[k]['error']:.4f}) [{sl['pull'][k]:+.1f}]" for k in OBSERVABLES)
        )
        print(
            "HMC / single-level flow at equal errors, sampling:",
            ", ".join(f"{k} {v:.3g}" for k, v in sl["hmc_over_single_level_at_equal_errors"].items()),
            "; with its set-up:",
            ", ".join(f"{k} {v:.3g}" for k, v in sl["hmc_over_single_level_with_setup"].items()),
        )


def _f(x):
    return "" if x is None else f"{x:.3g}"


def _match_arguments(p):
    p.add_argument("--sizes", type=int, nargs=2, default=[8, 16], help="coarse and fine size (default 8 16)")
    p.add_argument("--m2", type=float, default=-1.0, help="m2 of the fine target (default -1)")
    p.add_argument("--lam", type=float, default=1.0, help="lam of the fine target (default 1)")
    p.add_argument("--coarse", action="append", default=[], metavar="M2,LAM", help="coarse couplings to try (repeat)")
    p.add_argument("--samples", type=int, default=800, help="coarse HMC configurations (default 800)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")


@register(
    "multilevel-match",
    "IR matching of one multilevel level: base Var(log w) for coarse couplings x lifts",
    config=False,
)(_match_arguments)
def run_match(args) -> dict:
    r"""The landscape of one level's base (no SMC): per coarse coupling (HMC pool on the coarse lattice) and lift
    (white with :math:`a = 1`, white with tuned :math:`a`, conditional with tuned :math:`m_f^2, a`), the base's
    ESS/N and :math:`\mathrm{Var}\log w` split into the noise (``within``) and coarse-marginal (``between``) parts."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import pikflow.lattice as pl
    from pikflow.lattice import log_weights, make_lift, weight_diagnostics

    Lc, Lf = args.sizes
    path = lambda L, m2, lam: pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": m2, "lam": lam})  # noqa: E731
    fine = path(Lf, args.m2, args.lam)
    S_1 = jax.jit(jax.vmap(lambda p: fine.value(p, 1.0)))
    couplings = [(args.m2, args.lam)] + [tuple(float(x) for x in c.split(",")) for c in args.coarse]
    res = {"settings": {k: v for k, v in vars(args).items() if k != "func"}, "points": []}
    print("| coarse (m2, lam) | lift | a | m_f^2 | base ESS/N | Var log w | noise part | coarse part |")
    print("|---|---|---|---|---|---|---|---|")
    key = jax.random.PRNGKey(args.seed)
    for m2c, lamc in couplings:
        coarse = path(Lc, m2c, lamc)
        fields, _ = pl.hmc(coarse, key, 2 * args.samples, n_chains=8, step="auto", progress=False)
        phi = jnp.asarray(np.asarray(fields).reshape(-1, Lc, Lc)[::2][: args.samples])
        S_c = jax.jit(jax.vmap(lambda p, c=coarse: c.value(p, 1.0)))
        for noise, m, a in (("white", 1.0, 1.0), ("white", 1.0, "auto"), ("conditional", "auto", "auto")):
            lift, _ = make_lift(
                noise, fine.lattice.shape, "free", m, a, S_c, S_1, phi[:250], jax.random.fold_in(key, 1)
            )
            d = weight_diagnostics(log_weights(lift, S_c, S_1, phi, jax.random.fold_in(key, 2)))
            mf = None if lift.precision is None else float(np.asarray(lift.precision).flat[0])
            res["points"].append({"coarse": [m2c, lamc], "noise": noise, "scale": lift.scale, "mass2": mf, **d})
            print(
                f"| ({m2c}, {lamc}) | {noise}{' tuned' if a == 'auto' else ''} | {lift.scale:.2f} | "
                f"{'' if mf is None else f'{mf:.3g}'} | {d['ess']:.2g} | {d['var']:.3g} | {d['within']:.3g} | "
                f"{d['between']:.3g} |"
            )
            write_json(args, res)
    return res


def _flow_arguments(p):
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 16], help="coarse sizes of the levels (default 8 16)")
    p.add_argument("--m2", type=float, default=-1.0, help="m2 of eq. 31 (default -1)")
    p.add_argument("--lam", type=float, default=1.0, help="lam of eq. 31 (default 1)")
    p.add_argument("--basis", choices=("block", "default", "both"), default="both", help="level basis (default both)")
    p.add_argument("--steps", type=int, default=10, help="RK4 steps of each flow (default 10)")
    p.add_argument("--collocation", type=int, default=1000, help="collocation configurations (default 1000)")
    p.add_argument("--samples", type=int, default=2000, help="coarse HMC configurations (default 2000)")
    p.add_argument("--products", nargs="+", default=None, metavar="P,Q", help="block products zeta^p m^q (block)")
    p.add_argument("--neighbours", type=int, nargs="+", default=[], help="powers q of BlockNeighbours to add (block)")
    p.add_argument("--coarse-basis", action="store_true", help="add the coarse lattice's basis on the block means")
    p.add_argument("--level-bins", type=int, default=None, help="merge the momentum orbits into this many groups")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")


@register(
    "multilevel-flow",
    "one level's PIK flow: Var log w and ESS/N of the lift alone and flowed, per basis (no SMC)",
    config=False,
)(_flow_arguments)
def run_flow(args) -> dict:
    r"""Per coarse size :math:`L`: HMC on the :math:`L^d` target, the tuned conditional lift to :math:`(2L)^d`, the
    level's PIK flow (:func:`~pikflow.lattice.solve_level`) with the default lattice basis and/or with the block
    terms; the weights of the lift alone and of the flowed lift on the same draws (ESS/N, Var log w split into noise
    and coarse parts, 2 fine samples per coarse field), the solve's seconds and per-layer residuals."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import pikflow.lattice as pl
    from pikflow.lattice import LevelPath, level_diagnostics, make_lift, solve_level

    path = lambda L: pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (L, L)), {"m2": args.m2, "lam": args.lam})  # noqa: E731
    res = {"settings": {k: v for k, v in vars(args).items() if k != "func"}, "levels": []}
    bases = ("default", "block") if args.basis == "both" else (args.basis,)
    print(
        "| L | basis | functions | solve s | residual | Var log w lift (noise + coarse) | flowed | ESS/N lift | flowed"
        " |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for Lc in args.sizes:
        key = jax.random.fold_in(jax.random.PRNGKey(args.seed), Lc)
        coarse, fine = path(Lc), path(2 * Lc)
        fields, _ = pl.hmc(coarse, key, 2 * args.samples, n_chains=8, step="auto", progress=False)
        pool = jnp.asarray(np.asarray(fields).reshape(-1, Lc, Lc)[::2][: args.samples])
        S_c = jax.jit(jax.vmap(lambda p, c=coarse: c.value(p, 1.0)))
        S_1 = jax.jit(jax.vmap(lambda p, f=fine: f.value(p, 1.0)))
        lift, _ = make_lift("conditional", fine.lattice.shape, "free", "auto", "auto", S_c, S_1, pool[:250],
                            jax.random.fold_in(key, 1))  # fmt: skip
        lp = LevelPath(coarse, fine, lift)
        for name in bases:
            basis = pl.lattice_basis(fine.lattice, symmetry=fine.symmetry(), fourier_bins=args.level_bins)
            if name == "block":
                prods = pl.BlockTerms.__init__.__kwdefaults__["products"] if args.products is None else args.products
                prods = [tuple(int(v) for v in str(p).split(",")) if isinstance(p, str) else p for p in prods]
                basis = pl.level_basis(
                    fine.lattice,
                    symmetry=fine.symmetry(),
                    block={"products": prods},
                    neighbours=args.neighbours,
                    coarse={"fourier": False} if args.coarse_basis else None,
                    fourier_bins=args.level_bins,
                )
            t0 = time.perf_counter()
            flow = solve_level(lp, pool, basis, steps=args.steps, n_collocation=args.collocation,
                               seed=args.seed, progress=not args.quiet)  # fmt: skip
            secs = time.perf_counter() - t0
            t1 = time.perf_counter()
            diag = level_diagnostics(flow, pool[: args.samples // 2], jax.random.fold_in(key, 2))
            sample_secs = time.perf_counter() - t1
            resid = [r.residual for r in flow.reports]
            entry = {"L": 2 * Lc, "basis": name, "functions": flow.basis.n, "solve_seconds": secs,
                     "weights_seconds": sample_secs, "residual": resid, "scale": lift.scale,
                     "mass2": float(np.asarray(lift.precision).flat[0]), **diag}  # fmt: skip
            res["levels"].append(entry)
            li, fl = diag["lift"], diag["flow"]
            print(
                f"| {2 * Lc} | {name} | {flow.basis.n} | {secs:.0f} | {min(resid):.3f}-{max(resid):.3f} | "
                f"{li['var']:.3g} ({li['within']:.3g} + {li['between']:.3g}) | "
                f"{fl['var']:.3g} ({fl['within']:.3g} + {fl['between']:.3g}) | {li['ess']:.3g} | {fl['ess']:.3g} |",
                flush=True,
            )
            write_json(args, res)
    return res
