"""The ``pikflow`` command: ``pikflow run`` (solve, sample, report) and ``pikflow bench``."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import warnings

import numpy as np

from .._atomic import describe_os_error
from .._devices import run_info
from .._errors import ConfigError, PikflowError
from ..bench import BENCHMARKS, DEFAULT
from ..bench import load_all as _load_benchmarks
from ._config import EXAMPLE_DESCRIPTIONS, EXAMPLES, build, config_source, example_path, refine_options
from ._guards import check_resources
from ._lattice import run_lattice
from ._lattice_config import is_lattice
from ._levers import checkpoint_dir, drop_checkpoint
from ._output import RunOutput, discard_pending
from ._smc import smc_settings

_load_benchmarks()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pikflow`` command."""
    parser = argparse.ArgumentParser(
        prog="pikflow", description="Exact sampling with physics-informed kernels.", epilog=_paper_note()
    )
    _version_arg(parser)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="solve every layer, sample, write results.json and plots")
    _source_args(run)
    run.add_argument("--out", default="pikflow-out", help="output directory (default: pikflow-out)")
    run.add_argument("--n", type=int, help="override [sampling] n")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument(
        "--cache",
        metavar="DIR",
        help="keep XLA compilations here, so that the next run skips most of its compiling (default: "
        "$PIKFLOW_CACHE_DIR, else ~/.cache/pikflow/jax; 'off': no cache)",
    )
    run.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="per-layer checkpoints of the solve: a killed run resumes from them bit for bit "
        "(default: OUT/.pikflow-checkpoint, removed when the run completes)",
    )
    _distributed_args(run)
    bench = sub.add_parser("bench", help="benchmarks, reported as ratios (not tests); `pikflow bench KIND -h`")
    kinds = bench.add_subparsers(dest="bench_kind")
    for name, b in BENCHMARKS.items():
        p = kinds.add_parser(name, help=b.help, description=b.help)
        if b.config:
            _source_args(p)
        p.add_argument("--json", dest="json_file", help="also write the numbers to this JSON file")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        b.add_arguments(p)
    sub.add_parser("examples", help="list the built-in example configurations")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"] and (len(argv) == 1 or argv[1] not in BENCHMARKS and argv[1] not in ("-h", "--help")):
        argv.insert(1, DEFAULT if DEFAULT in BENCHMARKS else "speed")  # `pikflow bench [CONFIG] [--json F]`
    args = parser.parse_args(argv)
    try:
        if args.command in (None, "run"):
            if args.command is None:
                args = parser.parse_args(["run", *argv])
            _join(args)
            _cache(args.cache)
            return _run(args)
        if args.command == "bench":
            BENCHMARKS[args.bench_kind].run(args)
            return 0
        if args.command == "examples":
            _list_examples()
            return 0
    except PikflowError as err:
        print(f"pikflow: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a write that failed past the checks (disk full, permissions changed)
        print(f"pikflow: error: cannot write the output: {describe_os_error(err)}", file=sys.stderr)
        return 2
    finally:
        discard_pending()
    return 0


def _paper_note() -> str:
    from .._citation import PAPER_ARXIV, PAPER_AUTHORS, PAPER_TITLE

    return f"Equation and figure numbers refer to {PAPER_AUTHORS}, '{PAPER_TITLE}', {PAPER_ARXIV}."


def _version_arg(parser) -> None:
    from .._version import __version__

    parser.add_argument("--version", action="version", version=f"pikflow {__version__}")


def _list_examples() -> None:
    """``pikflow examples``: each built-in example's name, one-line description and path."""
    for name in EXAMPLES:
        print(f"{name:18s} {EXAMPLE_DESCRIPTIONS[name]}")
        print(f"{'':18s} {example_path(name)}")


def _distributed_args(p) -> None:
    g = p.add_argument_group("several processes (hosts)", "every process runs the same command; process 0 writes")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0 (jax.distributed.initialize)")
    g.add_argument("--num-processes", type=int, metavar="N", help="number of processes")
    g.add_argument("--process-id", type=int, metavar="I", help="this process, 0 to N-1")


#: environment variables that start a multi-process run without the command-line flags (JAX's own names)
DISTRIBUTED_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def _join(args) -> None:
    """Join a multi-process run (``--coordinator`` ... or JAX's environment variables); silence processes > 0."""
    import os

    flags = (args.coordinator, args.num_processes, args.process_id)
    if all(f is None for f in flags) and not any(os.environ.get(v) for v in DISTRIBUTED_ENV):
        return
    if any(f is None for f in flags) and any(f is not None for f in flags):
        raise ConfigError("--coordinator, --num-processes and --process-id go together: give all three (or none)")
    from .._devices import initialize, is_main_process

    initialize(*flags)
    if not is_main_process():  # process 0 alone prints and writes; the others compute their share
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (for the rest of the process)
        args.quiet = True


def _source_args(p):
    p.add_argument("config", nargs="?", help="TOML configuration (default: the built-in phi4-0d example)")
    p.add_argument("--example", choices=EXAMPLES, help="run a built-in example")


def _config(args) -> tuple[dict, str]:
    return config_source(args.config, args.example)


def _cache(given: str | None) -> None:
    """``--cache``: the persistent compilation cache of a run (:func:`pikflow.compilation_cache`)."""
    from .._cache import compilation_cache

    if given is not None and given.strip().lower() == "off":
        return
    compilation_cache(given)


def _run(args) -> int:
    from .. import solve
    from .._version import __version__

    data, source = _config(args)
    if is_lattice(data):
        return run_lattice(args, data, source)
    path, opts, sampling, observables = build(data)
    if args.n is not None:
        if args.n < 1:
            raise ConfigError(f"--n must be >= 1, got {args.n}")
        check_resources(data, "--n", n=args.n)
        sampling["n"] = args.n
    output = RunOutput(args.out)  # writes go to output.stage, moved into --out by commit()
    out = output.stage
    progress = not args.quiet
    print(f"pikflow {__version__}: {source}")
    print(f"  S_t = {path.expr}")
    _print_fields(path)
    ckpt, default_ckpt = checkpoint_dir(args, output.out)
    flow = solve(path, progress=progress, checkpoint=ckpt if opts.get("mode") != "parallel" else None, **opts)
    print(f"  solved {len(flow.reports)} layers in {flow.solve_seconds:.2f} s ({flow!r})")
    refine_opts = refine_options(data)
    refinement = None
    if refine_opts is not None and refine_opts["max_rounds"] > 0:
        n_ess = min(sampling["n"], 20000)
        flow, refinement = _refine(flow, refine_opts, opts.get("seed", 0), n_ess, progress)
    flow.save(out / "flow")
    if smc_settings(data) is not None:
        code = _run_smc(flow, data, source, observables, output, progress)
        drop_checkpoint(ckpt, default_ckpt)
        return code
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if refine_opts is not None and refine_opts["online"]:
            flow, samples, refinement = _refine_online(flow, refine_opts, sampling, refinement, progress)
            flow.save(out / "flow")
        else:
            samples = flow.sample(progress=progress, **sampling)
    for w in caught:
        print(f"  warning: {w.message}")
    results = _results(flow, samples, observables, data, source)
    results["residuals"] = _residuals(flow, samples, refine_opts)
    if refinement is not None:
        results["refinement"] = refinement
    reference = _reference(flow)
    if reference is not None:
        results["exact"] = _exact(flow, reference, results)
    _hole_check(flow, samples, results)
    from ._plots import plot_all

    results["plots"] = plot_all(flow, samples, out, reference)
    results.update(run_info())
    (out / "results.json").write_text(json.dumps(results, indent=2))
    output.commit()
    drop_checkpoint(ckpt, default_ckpt)
    _print_summary(results, output.out)
    return 0


def _run_smc(flow, data: dict, source: str, observables: dict, output, progress: bool) -> int:
    """``[sampling] method = "smc"``: SMC along the solved path; results.json with an ``smc`` block."""
    from .._version import __version__
    from . import _smc

    out = output.stage

    result = _smc.run_smc(flow, _smc.smc_settings(data), _smc.zero_d_observables(flow, observables), progress=progress)
    results = {"pikflow_version": __version__, "config_source": source, "config": data, "action": str(flow.path.expr)}
    results.update(_smc.results_block(result, list(observables)))
    results["warnings"] = _smc.warnings_of(result)
    reference = _reference(flow)
    if reference is not None:
        results["exact"] = _exact(flow, reference, results)
    results["plots"] = [_smc.plot(result, out)]
    results.update(run_info())
    (out / "results.json").write_text(json.dumps(results, indent=2))
    output.commit()
    out = output.out
    _smc.print_summary(result)
    ex = results.get("exact", {})
    if ex:
        print(f"  log Z exact {ex['log_z']:.8f} ({ex['log_z_deviation_sigma']:.1f} sigma)")
    for name, v in results["observables"].items():
        line = f"  <{name}> = {v['value']:.6f} +- {v['error']:.2g}"
        if name in ex:
            line += f"   (exact {ex[name]['value']:.6f}, {ex[name]['deviation_sigma']:.1f} sigma)"
        print(line)
    print(f"  wrote {out / 'results.json'}, plot {results['plots'][0]}, flow in {out / 'flow'}")
    return 0


def _print_fields(path) -> None:
    """Name the fields when they were inferred and are several, so a misspelt symbol is seen at once."""
    if path.action.fields_inferred and path.n_fields > 1:
        names = [str(f) for f in path.fields]
        print(f"  fields: {names} (every symbol not in [path]; [action] fields = [...] names them explicitly)")


def _refine(flow, o: dict, seed: int, n_ess: int, progress: bool):
    """The ``[refine]`` rounds (eqs. 27-29, App. B) after the solve; prints one line per round."""
    from ..refine import refine

    ref = refine(
        flow,
        tol=o["tol"],
        max_rounds=o["max_rounds"],
        centres=o["centres"],
        overlap=o["overlap"],
        n_points=o["n_points"],
        n_ess=n_ess,
        seed=seed,
        progress=progress,
        **{k: o[k] for k in ("centres_at", "n_missed") if k in o},
    )
    print(f"  refinement (tol {o['tol']:.2g}):")
    for rd in ref.rounds:
        print(
            f"    round {rd.round}: {rd.count('accepted')} accepted, {rd.count('rejected')} rejected, "
            f"{rd.count('converged')} under tol; max residual {rd.max_before:.2e} -> {rd.max_after:.2e}; "
            f"ESS/N {rd.ess_before:.6f} -> {rd.ess_after:.6f}"
        )
    return ref.flow, ref.to_dict()


def _refine_online(flow, o: dict, sampling: dict, refinement, progress: bool):
    """Sample, flag out-of-domain samples, refine their layers, resample (``[refine] online = true``)."""
    from ..refine import refine_online

    extra = {k: v for k, v in sampling.items() if k not in ("n", "seed", "keep_layers")}
    on = refine_online(
        flow,
        sampling["n"],
        tol=o["tol"],
        seed=sampling["seed"],
        max_rounds=max(o["max_rounds"], 1),
        centres=o["centres"],
        overlap=o["overlap"],
        n_points=o["n_points"],
        sample_options=extra,
        progress=progress,
    )
    print(
        f"  online OOD check (|r| > {o['tol']:.2g}): {on.affected_before} of {on.n_samples} samples affected "
        f"in {len(on.layers)} layers -> {on.affected_after} after refinement; "
        f"ESS/N {on.ess_before:.6f} -> {on.ess_after:.6f}"
    )
    refinement = dict(refinement or {"tol": o["tol"], "rounds": []})
    refinement["online"] = on.to_dict()
    return on.flow, on.samples, refinement


def _residuals(flow, samples, refine_opts) -> dict:
    """Per-layer residual summary (eq. 27) on the run's samples: RMS, max, worst point and region."""
    from ..refine import residual_summary

    layers = residual_summary(flow, samples=samples if samples.layers_kept else None, seed=samples.seed)
    out = {
        "layers": [r.to_dict() for r in layers],
        "max": max(r.max for r in layers),
        "worst_layer_t": max(layers, key=lambda r: r.max).t,
    }
    if refine_opts is not None:
        out["tol"] = refine_opts["tol"]
        out["layers_over_tol"] = sum(r.max > refine_opts["tol"] for r in layers)
    return out


def _results(flow, samples, observables: dict, data: dict, source: str) -> dict:
    from .._version import __version__

    obs = {name: samples.observable(expr).to_dict() for name, expr in observables.items()}
    path_obs = {}
    if samples.layers_kept:
        for t in samples.times:
            path_obs[f"{t:.6g}"] = {name: samples.observable(expr, t).to_dict() for name, expr in observables.items()}
    return {
        "pikflow_version": __version__,
        "config_source": source,
        "config": data,
        "action": str(flow.path.expr),
        "n_samples": samples.n_samples,
        "n_nonfinite": samples.n_nonfinite,
        "logdet": samples.logdet,
        "ess": samples.ess,
        "imh_acceptance": samples.imh_acceptance,
        "log_z": samples.log_z().to_dict(),
        "observables": obs,
        "path_observables": path_obs,
        "path_ess": {f"{t:.6g}": samples.ess_at(t) for t in samples.times} if samples.layers_kept else {},
        "layer_residuals": [
            {"t": r.t, "rms": r.residual_rms, "max": r.residual_max, "worst_phi": list(r.worst_phi), "scale": r.rhs_rms}
            for r in flow.reports
        ],
        "max_layer_residual": max(r.residual_rms for r in flow.reports),
        "n_basis": flow.equation.n_basis,
        "layers": len(flow.reports),
        "solve_seconds": flow.solve_seconds,
        "sample_seconds": samples.sample_seconds,
        "samples_per_second": samples.n_samples / samples.sample_seconds,
    }


def _hole_check(flow, samples, results: dict) -> None:
    """``target_ess`` (exact or HMC samples of the target pulled back through the flow) and ``warnings``."""
    from ..diagnostics import reliability_warnings

    samples.check(flow)
    exact = {k: v for k, v in results.get("exact", {}).items() if isinstance(v, dict) and "deviation_sigma" in v}
    deviations = dict(samples.deviations)
    if exact:  # the configured observables instead of <phi>, <phi**2>
        deviations = {"log_z": deviations["log_z"], **{f"<{k}>": v["deviation_sigma"] for k, v in exact.items()}}
    results["target_ess"] = samples.target_ess
    results["warnings"] = reliability_warnings(
        samples.ess, samples.n_samples, target_ess=samples.target_ess, deviations=deviations
    )


def _reference(flow):
    if flow.n_fields != 1:
        return None
    from ..exact import reference_for

    try:
        return reference_for(flow.path)
    except (ValueError, ArithmeticError):
        return None


def _exact(flow, ref, results) -> dict:
    """Exact values (quadrature) next to the estimates, with deviations in units of the error."""
    from ..lowering import lower_observable

    cfg_obs = results["config"].get("observables", {})
    out = {"log_z": ref.log_z(1.0)}
    out["log_z_deviation_sigma"] = abs(results["log_z"]["value"] - out["log_z"]) / results["log_z"]["error"]
    for name, text in cfg_obs.items():
        f = lower_observable(text, flow.path.fields)
        exact = ref.expectation(1.0, lambda x, f=f: np.asarray(f(x.reshape(-1, 1))).reshape(x.shape))
        est = results["observables"][name]
        out[name] = {"value": exact, "deviation_sigma": abs(est["value"] - exact) / est["error"]}
    out.update(_kernel_error(flow, ref))
    return out


def _kernel_error(flow, ref) -> dict:
    """Max |v - v_exact| / max |v_exact| at t = 1 over the target's range (all but 1e-4 of it on each side)."""
    from ._plots import target_range

    lo, hi = target_range(reference=ref)
    x = np.linspace(lo, hi, 601)
    ve = ref.kernel(1.0, x)
    ok = np.isfinite(ve)  # NaN only outside the quadrature's range, which target_range stays inside
    err = np.abs(np.asarray(flow.velocity(x[ok], 1.0)) - ve[ok])
    rel = float(np.max(err) / np.max(np.abs(ve[ok]))) if ok.any() and np.isfinite(err).all() else float("nan")
    return {"kernel_t1_max_rel_error": rel, "kernel_t1_range": [lo, hi]}


def _print_summary(r: dict, out: pathlib.Path) -> None:
    print(
        f"  samples: {r['n_samples']} ({r['n_nonfinite']} non-finite), {r['samples_per_second']:.3g} /s "
        f"(compilation included; `pikflow bench speed` times after it), log-density: {r['logdet']}"
    )
    print(
        f"  ESS/N = {r['ess']:.6f}   IMH acceptance = {r['imh_acceptance']:.4f}   "
        f"max layer residual = {r['max_layer_residual']:.2e}"
    )
    if r.get("target_ess") is not None:
        print(f"  ESS/N seen from samples of the target (hole check) = {r['target_ess']:.6f}")
    lz = r["log_z"]
    ex = r.get("exact", {})
    print(f"  log Z = {lz['value']:.8f} +- {lz['error']:.2g}" + (f"   (exact {ex['log_z']:.8f})" if ex else ""))
    for name, v in r["observables"].items():
        line = f"  <{name}> = {v['value']:.6f} +- {v['error']:.2g}"
        if name in ex:
            line += f"   (exact {ex[name]['value']:.6f}, {ex[name]['deviation_sigma']:.1f} sigma)"
        print(line)
    if ex:
        lo, hi = ex["kernel_t1_range"]
        print(
            f"  kernel at t=1 vs exact on [{lo:.3g}, {hi:.3g}] (the target's range): "
            f"max relative error {ex['kernel_t1_max_rel_error']:.2e}"
        )
    res = r.get("residuals")
    if res:
        layers = res["layers"]
        shown = layers if len(layers) <= 11 else sorted(layers, key=lambda x: -x["max"])[:5]
        head = "per layer" if len(layers) <= 11 else f"the {len(shown)} worst of {len(layers)} layers"
        print(f"  residuals (eq. 27) on the samples, {head}:")
        for x in shown:
            region = ", ".join(f"[{lo:.3g}, {hi:.3g}]" for lo, hi in x["worst_region"])
            print(
                f"    t = {x['t']:.4f}: rms {x['rms']:.2e}  max {x['max']:.2e} at phi = "
                f"({', '.join(f'{v:.3g}' for v in x['worst_phi'])}), worst region {region}"
            )
        if "layers_over_tol" in res:
            print(f"    {res['layers_over_tol']} of {len(layers)} layers over tol {res['tol']:.2g}")
    for w in r.get("warnings", []):
        print(f"  WARNING: {w}")
    print(f"  wrote {out / 'results.json'}, plots {', '.join(r['plots'])}, flow in {out / 'flow'}")
