"""The package's import structure, read from the source with :mod:`ast` (every import, function-level ones too).

* ``cli/`` and ``bench/`` are leaves: they use only the public API of the other packages
  (``pikflow.<package>`` exports, and ``pikflow.cli``'s for the benchmarks), never a private
  module (``pikflow.lattice._fit``) or a private name (``from pikflow.bench import _x``) of
  another package. The root's own infrastructure modules (``pikflow._errors``,
  ``pikflow._devices``, ``pikflow._atomic``, ...) are shared by every layer and allowed.
* No stage imports a later stage, in the pipeline's order below, nor a space or the CLI.
  The order is the data flow: the symbolic layer and its lowering; the bases, then the
  equations written on a basis (eqs. 14, 20, 34); the per-layer solvers; the statistics
  (diagnostics) and reference samplers (baselines) that a flow's samples are checked with;
  the flow; the refinement of a solved flow; the samplers built on flows. Any import that
  breaks it would be listed in :data:`KNOWN_LATER` (empty today): a new one fails, and so
  does an entry that no longer occurs.
"""

import ast
import pathlib

import pikflow

ROOT = pathlib.Path(pikflow.__file__).parent
STAGES = "action lowering bases equations solvers diagnostics baselines flow refine samplers".split()
NOT_FOR_STAGES = ("lattice", "cli", "bench")

#: (importing module, imported stage) pairs that break the stage order (issue #13, item 10): none left.
KNOWN_LATER: set[tuple[str, str]] = set()


def _imports():
    """``(module, target module, imported names, line)`` for every ``pikflow`` import in the package."""
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = ["pikflow", *path.relative_to(ROOT).with_suffix("").parts]
        package = parts[:-1]  # the package a relative import starts from (also for an __init__)
        module = ".".join(parts if parts[-1] != "__init__" else parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    target = base + (node.module.split(".") if node.module else [])
                else:
                    target = (node.module or "").split(".")
                names = [a.name for a in node.names]
                out.append((module, target, names, node.lineno))
            elif isinstance(node, ast.Import):
                out.extend((module, a.name.split("."), [], node.lineno) for a in node.names)
    return [(m, t, n, line) for m, t, n, line in out if t[0] == "pikflow"]


IMPORTS = _imports()


def test_the_walk_sees_relative_and_function_level_imports():
    """The resolver itself: known imports of the package come out with their absolute targets."""
    found = {(m, ".".join(t)) for m, t, _, _ in IMPORTS}
    assert ("pikflow.cli._main", "pikflow.bench") in found  # from ..bench import ...
    assert ("pikflow.lattice._fit", "pikflow.lattice._observables") in found  # a function-level import
    assert ("pikflow.cli", "pikflow.cli._main") in found  # from ._main import main, in an __init__
    assert len(IMPORTS) > 300


def test_cli_and_bench_use_only_public_api():
    bad = []
    for module, target, names, line in IMPORTS:
        own = (module.split(".") + [""])[1]
        if own not in ("cli", "bench") or len(target) < 2 or target[1] == own or target[1].startswith("_"):
            continue
        private_module = any(p.startswith("_") for p in target[2:])
        private_name = [n for n in names if n.startswith("_")]
        if private_module or private_name:
            bad.append(f"{module}:{line} imports {'.'.join(target)} {private_name or names}")
    assert not bad, "cli/ and bench/ must import only the public API; export what they need:\n" + "\n".join(bad)


def test_no_stage_imports_a_later_stage():
    found, bad = set(), []
    for module, target, names, line in IMPORTS:
        own, dst = (module.split(".") + [""])[1], (target + [""])[1]
        if own not in STAGES:
            continue
        if dst in NOT_FOR_STAGES:
            bad.append(f"{module}:{line} imports {'.'.join(target)} {names} (a space or the CLI)")
        elif dst in STAGES and STAGES.index(dst) > STAGES.index(own):
            found.add((module, dst))
            if (module, dst) not in KNOWN_LATER:
                bad.append(f"{module}:{line} imports the later stage {'.'.join(target)} {names}")
    assert not bad, "stages import only earlier stages:\n" + "\n".join(bad)
    assert not KNOWN_LATER - found, f"fixed, remove from KNOWN_LATER: {sorted(KNOWN_LATER - found)}"
