r"""Multilevel sampling: from a small lattice, by block upsampling plus noise, up to a large one.

The coarsest lattice is sampled by HMC (or exactly, for a Gaussian). Each next level maps a
coarse configuration :math:`\phi` on :math:`L^d` to a fine one on :math:`(2L)^d`,

.. math::  \Psi = U\phi + \zeta,

where :math:`U` copies every coarse site into its :math:`2^d` block and :math:`\zeta` is Gaussian
noise of width :math:`\sigma` with zero sum over every block (the super-resolving normalising
flows of Bauer, Kapust, Pawlowski and Temmen, eqs. 17-21 there). The block mean :math:`U^\dagger` gives the coarse
field back, :math:`U^\dagger\Psi = \phi`, so the base on the fine lattice has the analytic action

.. math::  \hat S_0(\Psi) = \hat S_{\rm coarse}(U^\dagger\Psi) + \frac{|\zeta|^2}{2\sigma^2},
           \qquad \zeta = \Psi - UU^\dagger\Psi,

and :math:`Z_0 = Z_{\rm coarse}\,2^{dV_c/2}\,(2\pi\sigma^2)^{(V_f - V_c)/2}`. The default lift
instead completes the (scaled) block means with the exact conditional of a Gaussian
(:class:`~pikflow.lattice.Lift`, module ``_levels``), with :math:`m_f^2` and the scale :math:`a`
tuned per level on :math:`\mathrm{Var}\log w`. Each level is
corrected before it feeds the next: sequential Monte Carlo (:func:`pikflow.samplers.smc`) along
:math:`\hat S_t = (1-t)\hat S_0 + t\hat S_1` to the fine target, with exact incremental weights,
resampling and HMC moves, then a final resampling by the weights. Replica :math:`r` of a level
draws its base from replica :math:`r`'s particles of the level below, so the replicas stay
independent and their spread is an honest error of every level's estimates.
"""

from __future__ import annotations

import dataclasses
import time as _time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import SamplingError
from .._estimate import Estimate
from ..action import LatticePath, check_bounded_below
from ..flow import GaussianLatticeBase
from ..samplers import AnnealingProblem, smc
from ._levels import NOISES, Lift, block_mean, log_weights, tune_lift, upsample, weight_diagnostics
from ._observables import chain_observables, hmc
from ._smc import magnetisation_moments, smc_observables


def noise_width(shape: Sequence[int], mass2: float = 1.0) -> float:
    r"""A default :math:`\sigma`: the block-fluctuation width of a free field :math:`K = \hat k^2 + m^2` on ``shape``.

    :math:`\sigma^2 = \mathrm{tr}[(1 - UU^\dagger)K^{-1}]/(V_f - V_c)`, with :math:`UU^\dagger` the
    projector on block-constant fields: per site
    :math:`G(0) - b^{-2}\sum_{n,m\in\text{block}}G(n-m)` over :math:`1 - 1/b`, :math:`b = 2^d`.
    """
    d = len(shape)
    k = [2 * np.pi * np.fft.fftfreq(n) for n in shape]
    grids = np.meshgrid(*k, indexing="ij")
    G = np.real(np.fft.ifftn(1.0 / (sum(4 * np.sin(g / 2) ** 2 for g in grids) + mass2)))  # G(r)
    offsets = np.array(np.meshgrid(*[[0, 1]] * d, indexing="ij")).reshape(d, -1).T
    b = len(offsets)
    within = sum(G[tuple((o - p) % np.array(shape))] for o in offsets for p in offsets) / b**2
    return float(np.sqrt((G.flat[0] - within) / (1 - 1 / b)))


@dataclasses.dataclass
class Level:
    """One level of a hierarchy: size, ESS/N, log Z ratio, observables and cost.

    ``ess`` is the SMC weights' ESS/N at ``t = 1`` before the final resampling (replica mean),
    ``min_ess`` its lowest over the steps, ``base_ess`` the ESS/N of the upsampled base alone as an
    importance sampler of the fine target (no SMC: the number a single-step flow would start from).
    ``imh_acceptance`` and ``target_ess`` check the level's proposal (the lift, or with ``transport="pik"``
    the lift pushed through the level's flow; :func:`~pikflow.lattice.level_checks`): the IMH acceptance of
    its importance weights, and the ESS/N seen from HMC configurations of that level's target (the hole
    check; ``None`` without ``hole_check``).
    """

    L: int
    ess: float
    min_ess: float
    base_ess: float | None
    log_z: Estimate | None
    observables: dict
    seconds: float
    sigma: float | None
    couplings: dict
    resamplings: int = 0
    base: dict | None = None
    lift: dict | None = None
    flow: dict | None = None
    imh_acceptance: float | None = None
    target_ess: float | None = None

    def summary(self) -> dict:
        """The level as a JSON-ready dict (an entry of ``levels`` in ``results.json``)."""
        est = lambda e: None if e is None else e.to_dict()  # noqa: E731
        return {
            "L": self.L, "ess": self.ess, "min_ess": self.min_ess, "base_ess": self.base_ess,
            "log_z_ratio": est(self.log_z),
            "observables": {k: v.to_dict() for k, v in self.observables.items()}, "seconds": self.seconds,
            "sigma": self.sigma, "couplings": self.couplings, "resamplings": self.resamplings,
            "base": self.base, "lift": self.lift, "flow": self.flow, "imh_acceptance": self.imh_acceptance,
            "target_ess": self.target_ess,
        }  # fmt: skip


def _level_problem(S_c, S_1, lift: Lift, pool, steps: int) -> AnnealingProblem:
    """SMC from the lifted coarse pool (base action ``S_c(P psi / a) + lift.extra``) to ``S_1``."""
    S_0 = lambda psi: S_c(lift.coarse(psi)) + lift.extra(psi)  # noqa: E731
    pool = jnp.asarray(pool)

    def base_sample(key, n, r):
        k1, k2 = jax.random.split(key)
        idx = jax.random.randint(k1, (n,), 0, pool.shape[1])
        psi = lift.lift(k2, pool[r][idx])
        return psi, -jax.vmap(S_0)(psi)  # unnormalised: log Z is then log(Z_fine / Z_0)

    return AnnealingProblem(
        times=np.arange(steps + 1) / steps,
        event_shape=tuple(lift.fine_shape),
        base_sample=base_sample,
        log_gamma=lambda x, t: -((1 - t) * S_0(x) + t * S_1(x)),
        replica_base=True,
        lattice_shape=tuple(lift.fine_shape),
    )


def _flow_problem(coarse, fine, lift: Lift, pool, steps: int, flow_options: dict):
    """The level's PIK flow (:func:`solve_level` on replica 0's pool) and its SMC problem with that transport."""
    from ._level_flow import LevelBase, LevelPath, solve_level
    from ._smc import lattice_problem

    path = LevelPath(coarse, fine, lift)
    opts = {"n_collocation": 1000, "progress": False, **flow_options, "steps": steps}
    t0 = _time.perf_counter()
    # log Z_c = -offset: log q_0 = -S_0, as the plain level (log Z is then log(Z_fine / Z_0))
    flow = solve_level(path, jnp.asarray(pool[0]), log_z_coarse=-lift.log_z0_offset(), **opts)
    seconds = _time.perf_counter() - t0
    base = LevelBase(path, jnp.asarray(pool), -lift.log_z0_offset())
    problem = dataclasses.replace(lattice_problem(flow), base_sample=base.sample, replica_base=True)
    info = {"seconds": seconds, "basis": flow.basis.n, "residual": [r.residual for r in flow.reports]}
    return flow, problem, info


def make_lift(
    noise: str,
    fine_shape,
    sigma: float | str = "free",
    mass2: float | str = 1.0,
    scale: float | str = 1.0,
    S_c=None,
    S_1=None,
    phi=None,
    key=None,
) -> tuple[Lift, list[dict]]:
    """The level's :class:`Lift`; ``"auto"`` values are tuned on the coarse fields ``phi`` (:func:`tune_lift`)."""
    if noise not in NOISES:
        raise SamplingError(f"noise must be one of {NOISES}, got {noise!r}")
    for name, v in (("mass2", mass2), ("scale", scale)):
        if v != "auto" and not (isinstance(v, int | float) and np.isfinite(v) and v > 0):
            raise SamplingError(f"{name} must be a positive number or 'auto', got {v!r}")
    if noise == "white":
        s = noise_width(fine_shape) if sigma == "free" else float(sigma)
        make = lambda m, a: Lift.white(fine_shape, s, a)  # noqa: E731
        mass2 = 1.0
    else:
        make = lambda m, a: getattr(Lift, noise)(fine_shape, m, a)  # noqa: E731
    if "auto" not in (mass2, scale):
        return make(mass2, scale), []
    return tune_lift(make, S_c, S_1, phi, key, mass2, scale)  # fmt: skip


def _resample(key, particles, log_w):
    """Per replica, ``P`` equally weighted configurations drawn by the weights (multinomial)."""
    out = []
    for r in range(particles.shape[0]):
        lw = np.where(np.isfinite(log_w[r]), log_w[r], -np.inf)
        idx = jax.random.categorical(jax.random.fold_in(key, r), jnp.asarray(lw), shape=(particles.shape[1],))
        out.append(particles[r][np.asarray(idx)])
    return np.stack(out)


def multilevel(
    target: Callable[[int], LatticePath],
    sizes: Sequence[int],
    *,
    particles: int = 1000,
    replicas: int = 4,
    steps: int = 20,
    sigma: float | str = "free",
    noise: str = "conditional",
    mass2: float | str = "auto",
    scale: float | str = "auto",
    mcmc: str = "hmc",
    mcmc_steps: int = 2,
    fourier_mass: float | str = 1.0,
    coarsest: str = "hmc",
    hmc_chains: int = 8,
    hmc_step: float | str = "auto",
    hmc_options: dict | None = None,
    transport: str = "none",
    flow_options: dict | None = None,
    hole_check: int = 0,
    seed: int = 0,
    progress: bool = True,
    on_level: Callable[[list[Level]], None] | None = None,
) -> list[Level]:
    r"""Sample the target on ``sizes[-1]`` through every size of ``sizes`` (each twice the one before).

    Parameters
    ----------
    target
        ``L -> LatticePath`` of the target on :math:`L^d` (numeric couplings; its value at
        ``t = 1`` is used). The coarser levels are auxiliary: ``target`` may give them other
        couplings than the finest (IR matching: couplings whose lifted samples match the next
        level better), and each level's base uses its own coarse action exactly.
    sizes
        Linear sizes, each twice the previous one, e.g. ``[4, 8, 16, 32]``.
    particles, replicas, steps, mcmc, mcmc_steps, fourier_mass
        SMC settings of every level (:func:`pikflow.samplers.smc`; ``mcmc="fhmc"``: Fourier-accelerated HMC
        moves with the mass :math:`\hat k^2 + \mu^2`, ``fourier_mass`` :math:`= \mu^2`, or ``"adaptive"``: measured
        from the particles).
    sigma
        The white noise's width, or ``"free"``: :func:`noise_width` of the fine lattice.
    noise
        ``"conditional"`` (default: the exact conditional of the Gaussian
        :math:`K = \hat k^2 + m_f^2` given the block means) or ``"white"`` (zero-block-sum white
        noise, the first version) or ``"fourier"`` (the conditional with the Fourier projector:
        low momenta from the coarse field, high momenta from :math:`G(k)`): :class:`Lift`. Measured:
        the conditional lift's base has a 15-50 times smaller :math:`\mathrm{Var}\log w` than the white
        one and the SMC a higher ESS/N at equal cost.
    mass2, scale
        :math:`m_f^2` of the conditional (or fourier) noise and the field scale :math:`a` (:math:`P\Psi = a\phi`),
        numbers or ``"auto"``: per level, the values minimising the base's
        :math:`\mathrm{Var}\log w` on 500 lifted samples of replica 0 (:func:`tune_lift`).
    coarsest
        ``"hmc"`` (``hmc_chains`` chains per replica) or ``"exact"`` (a Gaussian target).
    hmc_step, hmc_options
        The coarsest level's HMC: its step (``"auto"``: adapted) and further keywords of
        :func:`~pikflow.lattice.hmc` (``start="ordered"`` for the broken phase, ``n_leapfrog``,
        ``n_therm``, ``jitter``), as for :func:`~pikflow.lattice.fit_lattice`'s reference run.
    transport
        ``"none"`` (annealed SMC from the lift) or ``"pik"``: per level a PIK flow from the lift to
        the fine target (:func:`~pikflow.lattice.solve_level`, eq. 34 on the path
        :math:`(1-t)\hat S_0 + t\hat S_1`, ``steps`` RK4 steps, collocation on replica 0's lifted pool)
        is the SMC transport of every step; ``Level.flow`` gets the lift's and the flowed lift's weight
        diagnostics (ESS/N, :math:`\mathrm{Var}\log w` split), the solve's seconds and residuals.
    flow_options
        Keywords of :func:`~pikflow.flow.solve_lattice` for the level flows (default
        ``n_collocation=1000``, the default basis of the fine lattice).
    hole_check
        Per level, this many HMC configurations of the level's target (``hmc_chains`` chains, the coarsest
        level's ``hmc_step`` and ``hmc_options``; consecutive trajectories after the thermalisation, so near a
        critical point fewer of them are independent) for the hole check ``Level.target_ess`` of the level's
        proposal (0, the default: no HMC above the coarsest level, ``target_ess`` is ``None``).
        ``Level.imh_acceptance`` is always measured.
    on_level
        Called with the levels so far after every level (e.g. to write partial results).
    """
    sizes = [int(L) for L in sizes]
    if len(sizes) < 2 or any(b != 2 * a for a, b in zip(sizes, sizes[1:], strict=False)):
        raise SamplingError(f"sizes must double from level to level, e.g. [4, 8, 16], got {sizes}")
    if transport not in ("none", "pik"):
        raise SamplingError(f"transport must be 'none' or 'pik' (a PIK flow per level), got {transport!r}")
    if isinstance(hole_check, bool) or not isinstance(hole_check, int) or hole_check < 0:
        raise SamplingError(f"hole_check must be a number of HMC configurations (0: none), got {hole_check!r}")
    make_lift(noise, [2, 2], sigma if sigma == "free" else float(sigma), 1.0 if mass2 == "auto" else mass2,
              1.0 if scale == "auto" else scale)  # fmt: skip  # bad options fail before any sampling
    key = jax.random.PRNGKey(seed)
    coarse = target(sizes[0])
    check_bounded_below(coarse, [1.0])  # the target of every level: an unbounded one has no distribution
    volume = coarse.lattice.volume
    start = _time.perf_counter()
    if coarsest == "exact":
        base = GaussianLatticeBase.from_path(coarse, 1.0)
        x, _ = base.sample(jax.random.fold_in(key, 0), replicas * particles)
        pool = np.asarray(x).reshape(replicas, particles, *coarse.lattice.shape)
        M = pool.reshape(-1, volume).sum(1)
    else:
        per = max(particles // hmc_chains, 10)
        fields, _ = hmc(coarse, jax.random.fold_in(key, 0), replicas * hmc_chains * per, n_chains=replicas * hmc_chains,
                        step=hmc_step, progress=progress, **(hmc_options or {}))  # fmt: skip
        fields = np.asarray(fields).reshape(replicas, hmc_chains * per, *coarse.lattice.shape)
        pick = np.linspace(0, fields.shape[1] - 1, particles).astype(int)
        pool = fields[:, pick]
        M = fields.reshape(replicas, -1, volume).sum(-1).reshape(-1)
    chains = 1 if coarsest == "exact" else replicas * hmc_chains  # independent draws / the HMC chains as replica
    obs = chain_observables(M, volume, chains=chains) if M.size >= 10 else {}
    levels = [Level(sizes[0], 1.0, 1.0, None, None, obs, _time.perf_counter() - start, None, _couplings(coarse))]
    for i, L in enumerate(sizes[1:], start=1):
        fine = target(L)
        S_c = lambda p, path=coarse: path.value(p, 1.0)  # noqa: E731
        S_1 = lambda p, path=fine: path.value(p, 1.0)  # noqa: E731
        S_cb, S_1b = jax.jit(jax.vmap(S_c)), jax.jit(jax.vmap(S_1))
        t0 = _time.perf_counter()
        k_tune, k_base = jax.random.split(jax.random.fold_in(key, 1000 + i))
        lift, landscape = make_lift(noise, fine.lattice.shape, sigma, mass2, scale, S_cb, S_1b,
                                    jnp.asarray(pool[0][: min(250, pool.shape[1])]), k_tune)  # fmt: skip
        flow_info, flow = None, None
        if transport == "pik":
            flow, problem, flow_info = _flow_problem(coarse, fine, lift, pool, steps, flow_options or {})
        else:
            problem = _level_problem(S_c, S_1, lift, pool, steps)
        result = smc(
            problem, particles, seed=seed + i, transport=transport, mcmc=mcmc, mcmc_steps=mcmc_steps,
            fourier_mass=fourier_mass, replicas=replicas, observables=magnetisation_moments(), progress=progress,
        )  # fmt: skip
        m = min(particles, pool.shape[1])
        base = weight_diagnostics(log_weights(lift, S_cb, S_1b, jnp.asarray(pool[0][:m]), k_base))
        flowed = None  # the flowed lift's weights: pushed once, for the diagnostics and the checks
        if flow_info is not None:
            from ._level_flow import level_diagnostics, level_log_weights

            flowed = level_log_weights(flow.base, jnp.asarray(pool[0][:m]), k_base, flow=flow)
            flow_info.update(level_diagnostics(flow, jnp.asarray(pool[0][:m]), k_base, flowed=flowed))
        checks = _level_checks(coarse, fine, lift, pool[0][:m], flow, hole_check, jax.random.fold_in(key, 2000 + i),
                               hmc_chains, hmc_step, hmc_options, flowed)  # fmt: skip
        s = lift.sigma
        info = {"noise": lift.noise, "scale": lift.scale, "log_z0_offset": lift.log_z0_offset()}
        if lift.noise in ("conditional", "fourier"):
            info["mass2"] = float(np.asarray(lift.precision).flat[0])
        info["landscape"] = landscape
        pool = _resample(jax.random.fold_in(key, i), result.particles, result.log_w)
        levels.append(
            Level(
                L,
                float(result.ess[-1].mean()),
                float(result.ess.min()),
                base["ess"],
                result.log_z_estimate(),
                smc_observables(result, fine.lattice.volume),
                _time.perf_counter() - t0,
                s,
                _couplings(fine),
                result.n_resampled,
                base,
                info,
                flow_info,
                checks["imh_acceptance"],
                checks.get("target_ess"),
            )  # fmt: skip
        )
        if on_level is not None:
            on_level(levels)
        coarse = fine
    return levels


def _level_checks(coarse, fine, lift, phi, flow, hole_check, key, chains, step, options, flowed=None) -> dict:
    """:func:`level_checks` of the level's proposal on the coarse fields ``phi`` (``hole_check`` HMC configurations)."""
    from ._level_flow import LevelBase, LevelPath, level_checks

    base = flow.base if flow is not None else LevelBase(LevelPath(coarse, fine, lift), phi)
    reference = None
    if hole_check:
        k_hmc, key = jax.random.split(key)
        fields, _ = hmc(fine, k_hmc, hole_check, n_chains=chains, step=step, progress=False, **(options or {}))
        reference = np.asarray(fields).reshape(-1, *fine.lattice.shape)[:hole_check]
    return level_checks(base, jnp.asarray(phi), key, reference, flow, log_w=flowed)


def _couplings(path: LatticePath) -> dict:
    return {str(k): float(v) for k, v in path.coupling_exprs.items() if getattr(v, "is_number", False)}


__all__ = ["Level", "block_mean", "make_lift", "multilevel", "noise_width", "upsample"]
