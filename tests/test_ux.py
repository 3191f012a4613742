"""What a new user stumbled on (issue #14 item 4, issue #19 item 3): each is fixed and checked here.

Every test states the stumbling point it covers. The CLI cases fail before any solve, so
the whole module runs in a few seconds (two tiny flows are solved for the file tests).
"""

import json
import math
import re

import numpy as np
import pytest

import pikflow as pf
from pikflow.cli import main

PHI4 = "m2/2*phi**2 + lam/4*phi**4"


def run_cli(tmp_path, capsys, text):
    """``pikflow run`` on a configuration text: (exit status, stdout, stderr)."""
    (tmp_path / "c.toml").write_text(text)
    rc = main(["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o"), "--quiet"])
    out, err = capsys.readouterr()
    return rc, out, err


def config(density, path="m2 = [1.0, -2.0]\nlam = [0.0, 0.5]\n", extra=""):
    return f'[action]\ndensity = "{density}"\n{extra}[path]\n{path}[sampling]\nn = 1000\n'


@pytest.fixture(scope="module")
def flow():
    small = dict(basis=pf.Sine(n=4, max_frequency=2.0), collocation=pf.Collocation(n_samples=100, n_tail=50))
    return pf.solve(pf.Path.from_expression("(1 + t)/2*phi**2", "phi"), steps=1, progress=False, **small)


@pytest.fixture(scope="module")
def saved(flow, tmp_path_factory):
    return flow.save(tmp_path_factory.mktemp("flow"))


# ------------------------------------------------------------------ fields and couplings


@pytest.mark.parametrize(
    "density, path, suspect, suggestion",
    [
        # a misspelt field: was "not normalisable ... direction [1, 0]"
        ("m2/2*phi**2 + lam/4*ph1**4", None, "ph1", '["phi"]'),
        # a coupling left out of [path]: silently became a field
        (PHI4, "m2 = [1.0, -2.0]\n", "lam", '["phi"]'),
        # a Unicode letter that looks like phi: was "direction [0, 1]"
        ("m2/2*phi**2 + lam/4*φ**4", None, "φ", '["phi"]'),
    ],
    ids=["misspelt-field", "coupling-not-in-path", "unicode-symbol"],
)
def test_inferred_fields_are_named(tmp_path, capsys, density, path, suspect, suggestion):
    text = config(density, **({"path": path} if path else {}))
    rc, out, err = run_cli(tmp_path, capsys, text)
    assert rc == 2 and "pikflow: error:" in err and "Traceback" not in err
    assert "direction [" not in err  # the field is named, not a direction vector
    assert f"does not grow for {suspect} -> +inf" in err
    assert "the fields were inferred as every symbol that is not a coupling" in err
    assert f"If {suspect!r} is a coupling, give it a value ([path] {suspect} = [start, end]" in err
    assert f"[action] fields = {suggestion}" in err
    assert "fields: [" in out  # the run states the inferred fields before it solves
    assert not (tmp_path / "o" / "results.json").exists()


def test_explicit_fields_name_the_stray_symbol(tmp_path, capsys):
    """With ``[action] fields`` given, a misspelt symbol is reported as such, with the likely intended name."""
    rc, _, err = run_cli(tmp_path, capsys, config("m2/2*phi**2 + lam/4*ph1**4", extra='fields = ["phi"]\n'))
    assert rc == 2
    assert "symbol(s) ['ph1'] in the action are neither fields ['phi'] nor couplings with a value" in err
    assert "'ph1' looks like 'phi'" in err


def test_explicit_fields_run(tmp_path, capsys):
    """``[action] fields`` names the fields: the solve then sees one field."""
    import tomllib

    from pikflow.cli._config import build, validate

    data = tomllib.loads(config(PHI4, extra='fields = ["phi"]\n'))
    validate(data)
    path, *_ = build(data)
    assert [str(f) for f in path.fields] == ["phi"] and not path.action.fields_inferred


def test_direction_names_fields_in_python():
    """Several explicit fields: the unbounded direction is named by the fields, not a vector."""
    a = pf.Action("m2/2*(x**2 + y**2) - x**4", fields=["x", "y"])
    path = pf.Path(a, {"m2": 1.0})
    with pytest.raises(pf.ActionError, match=r"does not grow for x -> [+-]inf \(the other fields at 0\)") as info:
        path.check_normalisable()
    assert "inferred" not in str(info.value)  # the fields were named: no hint about inference


# ------------------------------------------------------------------ expressions


@pytest.mark.parametrize(
    "text, message",
    [
        ("m2/2*phi**2 + lam/4*(phi**4", r"unclosed '\(' at character 21: 1 closing bracket\(s\) missing"),
        ("(phi**2))", r"unmatched '\)' at character 9"),
        ("sin(phi]", r"unmatched '\]' at character 8"),
    ],
)
def test_unbalanced_brackets(text, message):
    with pytest.raises(pf.ActionError, match=message) as info:
        pf.Action(text, fields=["phi"])
    assert "EOF in multi-line" not in str(info.value) and "(2, 0)" not in str(info.value)


def test_observable_with_unknown_symbol(flow, tmp_path, capsys):
    """Was a ``BasisError`` "... that are neither fields ['phi']", after the whole solve."""
    s = flow.sample(100, progress=False)
    with pytest.raises(pf.ActionError, match=re.escape("the observable psi**2 uses the unknown symbol(s) ['psi']")):
        s.observable("psi**2")
    with pytest.raises(pf.ActionError, match=re.escape("did you mean 'phi' for 'ph1'?): it may use only the field")):
        s.observable("ph1**2")
    # the CLI refuses it before solving
    rc, out, err = run_cli(tmp_path, capsys, config(PHI4) + '[observables]\nx = "psi**2"\n')
    assert rc == 2 and "[observables]: the observable x = psi**2 uses the unknown symbol(s) ['psi']" in err
    assert "solved" not in out


# ------------------------------------------------------------------ lattice size, version, help, examples


def test_one_minimum_lattice_size(tmp_path, capsys):
    import pikflow.lattice as pl
    from pikflow.action._geometry import MIN_SIZE

    pl.Lattice([MIN_SIZE, MIN_SIZE])
    with pytest.raises(pf.ActionError, match=f"at least {MIN_SIZE} sites per direction"):
        pl.Lattice([8, MIN_SIZE - 1])
    text = (
        f"[action]\nlattice = [8, {MIN_SIZE - 1}]\n"
        'density = "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"\n'
        "[path]\nm2 = -1.0\nlam = 1.0\n"
    )
    rc, _, err = run_cli(tmp_path, capsys, text)
    assert rc == 2 and f"at least {MIN_SIZE} sites per direction" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pikflow {pf.__version__}"


def test_bench_help_shows_its_own_options(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "lattice", "--help"])
    lattice_help = capsys.readouterr().out
    assert "--L" in lattice_help and "--example" not in lattice_help and "phi4-0d" not in lattice_help
    with pytest.raises(SystemExit):
        main(["bench", "speed", "--help"])
    speed_help = capsys.readouterr().out
    assert "--example" in speed_help and "--L" not in speed_help


def test_examples_have_descriptions(capsys):
    from pikflow.cli._config import EXAMPLE_DESCRIPTIONS, EXAMPLES, example_path

    assert main(["examples"]) == 0
    out = capsys.readouterr().out
    for name in EXAMPLES:
        desc = EXAMPLE_DESCRIPTIONS[name]
        assert 20 < len(desc) < 110 and f"{name:18s} {desc}" in out
        assert str(example_path(name)) in out


# ------------------------------------------------------------------ saved flows


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_truncated_kernels_file(saved, tmp_path, keep):
    """Was ``TreePathError: Error at leaf with path (GetAttrKey(name='coeffs'),)``."""
    (tmp_path / "flow.json").write_bytes((saved / "flow.json").read_bytes())
    raw = (saved / "arrays.npz").read_bytes()
    (tmp_path / "arrays.npz").write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(pf.FlowFileError) as info:
        pf.load(tmp_path)
    msg = str(info.value)
    assert "arrays.npz is corrupt or truncated, or was not written by pikflow" in msg
    assert "solve the flow again (pikflow run CONFIG" in msg and "GetAttrKey" not in msg


def test_corrupt_lattice_arrays(tmp_path):
    """A truncated ``arrays.npz`` next to a valid header: says corrupt, and what to do."""
    import pikflow.lattice as pl
    from pikflow.flow._format import FORMAT, VERSION

    header = {"format": FORMAT, "version": VERSION, "space": "lattice", "pikflow_version": "x"}
    (tmp_path / "flow.json").write_text(json.dumps(header))
    np.savez(tmp_path / "arrays.npz", coeffs=np.arange(1000.0))
    raw = (tmp_path / "arrays.npz").read_bytes()
    (tmp_path / "arrays.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(pf.FlowFileError, match="arrays.npz is corrupt or truncated") as info:
        pl.LatticeFlow.load(tmp_path)
    assert "solve the flow again" in str(info.value)


# ------------------------------------------------------------------ estimates


def test_deviation_keeps_its_sign():
    e = pf.Estimate(1.0, 0.5)
    assert e.deviation(0.0) == 2.0 and e.deviation(2.0) == -2.0
    assert pf.Estimate(1.0, 0.0).deviation(2.0) == -math.inf
    assert pf.Estimate(1.0, 0.0).deviation(0.0) == math.inf
    assert math.isnan(pf.Estimate(float("nan"), 1.0).deviation(0.0))
    assert json.dumps(e.to_dict()) and np.isfinite(e.deviation(1.0))


# ------------------------------------------------------------------ lattice progress


def test_lattice_progress_is_labelled(capsys):
    """The HMC run shows a labelled bar and gives the same chain with or without it; candidates are named."""
    import jax

    import pikflow.lattice as pl
    from pikflow.lattice._fit import _candidate_label

    assert _candidate_label(2, 4, "mixture", 5.0) == "candidate 2/4: mixture, width 5"
    assert _candidate_label(1, 1, "gaussian", None) == "candidate 1/1: gaussian"
    action = pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4", [3])
    path = pl.LatticePath(action, {"m2": -1.0, "lam": 1.0})
    key = jax.random.PRNGKey(3)
    kw = dict(n_chains=2, n_therm=40, n_leapfrog=3)  # 40 + 40 trajectories: one block length (2) with the bar
    quiet, acc_q = pl.hmc(path, key, 80, **kw)
    capsys.readouterr()
    shown, acc_s = pl.hmc(path, key, 80, progress=True, desc="HMC at the target", **kw)
    assert "HMC at the target" in capsys.readouterr().err
    np.testing.assert_allclose(shown, quiet, rtol=0, atol=1e-12)
    assert acc_q == acc_s


# ------------------------------------------------------------------ plots and the paper


def test_kernel_range_follows_the_target(flow):
    """The tilted well 4(phi^2-1)^2 + phi/2: the kernel's range comes from the target, and its error is finite.

    The fixed [-3, 3] range reached where the exact kernel is NaN (S - min S > 80), which
    printed "max relative error nan" and a y-axis up to 7e8.
    """
    from pikflow.cli._main import _kernel_error
    from pikflow.cli._plots import TAIL, target_range
    from pikflow.exact import reference_for

    a = pf.Action("(1 - s)/2*phi**2 + s*(4*(phi**2 - 1)**2 + 0.5*phi)", fields=["phi"])
    ref = reference_for(pf.Path(a, {"s": (0.0, 1.0)}))
    assert np.isnan(ref.kernel(1.0, np.array([-3.0, 3.0]))).all()  # what the fixed range hit
    lo, hi = target_range(reference=ref)
    assert -2.5 < lo < -1.0 and 1.0 < hi < 2.5
    outside = ref.expectation(1.0, lambda x: (x < lo) | (x > hi))
    assert outside < 2 * TAIL  # the padding keeps even less than the 2e-4 left out
    assert np.isfinite(ref.kernel(1.0, np.linspace(lo, hi, 101))).all()
    # the error over the range of a solved flow's own target is a number, not NaN
    err = _kernel_error(flow, reference_for(flow.path))
    assert np.isfinite(err["kernel_t1_max_rel_error"]) and err["kernel_t1_range"][0] < 0 < err["kernel_t1_range"][1]
    # without a reference (several fields) the range comes from the weighted samples: close to the exact one
    exact = np.array(err["kernel_t1_range"])
    from_samples = np.array(target_range(samples=flow.sample(20000, progress=False)))
    np.testing.assert_allclose(from_samples, exact, rtol=0.15)  # the 1e-4 quantile of 2e4 samples: ~2 extremes


def test_paper_is_named():
    text = pf.citation(print_it=False)
    assert "Generative sampling with physics-informed kernels" in text and "arXiv:2510.26678" in text
    from pikflow.cli._plots import PAPER

    assert "arXiv:2510.26678" in PAPER


def test_lattice_misspelt_field():
    """A lattice density's misspelt ``phi`` is a coupling without a value: the message says it looks like phi."""
    import pikflow.lattice as pl

    action = pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*ph1**4", [4])
    with pytest.raises(pf.ActionError, match=r"coupling\(s\) \['ph1'\] have no value.*'ph1' looks like 'phi'"):
        pl.LatticePath(action, {"m2": -1.0, "lam": 1.0})
