"""Property-based fuzzing of every input surface (Hypothesis, bounded in time).

The property everywhere: a generated input gives a :class:`pikflow.PikflowError` (whose
message is not empty) or a valid result; never another exception, a hang or a silently
wrong number. No test here runs a solve or a sampler: the surfaces are the parsing and
validation layers (density strings, TOML configurations, numeric settings at the edges),
the loaders of saved flows (mutated copies of one tiny solved flow) and the Python API
entry points, whose numerical stage is replaced by a sentinel (reaching it counts as a
valid run). Cases per surface (see ``N_*``): >= 1000 each. Inputs Hypothesis found
failing are kept as ``@example``\\ s.
"""

import json
import math
import pathlib
import random
import shutil

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import pikflow as pf
from pikflow._atomic import write_manifest
from pikflow.cli._config import SCHEMA, build, load_config, validate
from pikflow.cli._lattice_config import build_lattice, is_lattice
from pikflow.lattice import LatticeAction, LatticePath

#: Cases per surface (the README states these).
N_DENSITY = 1000
N_TOML = 1200
N_EDGES = 1000
N_FLOWDIR = 1000
N_API = 1000


def _check(fn, *args, **kwargs):
    """Run ``fn``; a PikflowError must have a message. Returns the result or the error."""
    try:
        return fn(*args, **kwargs)
    except pf.PikflowError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        return err


# ---------------------------------------------------------------- density strings
TOKENS = [
    "phi", "psi", "lam", "m2", "t", "x", "g", "d", "mu", "φ", "λ", "ϕ", "ℏ", "1", "0", "2", "9", "2.5", "1e300",
    "1e-300", "1e999", "inf", "nan", "oo", "zoo", "I", "pi", "E", "+", "-", "*", "/", "**", "^", "(", ")", ",", "[",
    "]", "{", "}", ".", "=", "==", "<", "lambda", "__import__", "__class__", "os", "sin", "exp", "log", "Abs", "sqrt",
    "cosh", "erf", "Integral", "Symbol", "Function", "Float", "Integer", "Rational", "eval", "'", '"', "\\", "\n",
    " ", "#", ";", ":", "@", "!", "%", "&", "|", "~", "\x00", "\u200b", "🙂", "shift(", "sum_mu(", "phi**4", "**2",
    "9**9**9", "(phi+1)**", "10**300",
]  # fmt: skip


def _expr_tree():
    leaf = st.sampled_from(["phi", "psi", "lam", "m2", "t", "1", "2", "0.5", "1e300", "0", "-1", "pi", "φ"])
    return st.recursive(
        leaf,
        lambda sub: st.one_of(
            st.tuples(sub, st.sampled_from(["+", "-", "*", "/", "**"]), sub).map(lambda x: f"({x[0]}{x[1]}{x[2]})"),
            st.tuples(st.sampled_from(["sin", "exp", "log", "Abs", "sqrt", "cosh", "foo"]), sub).map(
                lambda x: f"{x[0]}({x[1]})"
            ),
        ),
        max_leaves=40,
    )


DENSITIES = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=25).map("".join),
    st.text(max_size=40),
    _expr_tree(),
    st.tuples(st.integers(1, 400), st.sampled_from(["phi", "(phi", "phi**2+"])).map(lambda x: x[1] * x[0]),
    st.integers(1, 400).map(lambda n: "(" * n + "phi" + ")" * n + "**2"),
    st.integers(0, 10**6).map(lambda n: f"phi**2/2 + phi**{n}"),
)


def _density_case(text):
    action = _check(pf.Action, text, fields=["phi"])
    if isinstance(action, pf.Action):
        couplings = {str(c): [0.0, 1.0] for c in action.couplings}
        path = _check(pf.Path, action, couplings)
        assert isinstance(path, (pf.Path, pf.PikflowError))
    lat = _check(LatticeAction, text, [4])
    if isinstance(lat, LatticeAction):
        _check(LatticePath, lat, {str(c): 1.0 for c in lat.couplings})


@settings(max_examples=N_DENSITY)
@given(DENSITIES)
@example("9**9**9")  # found: SymPy evaluated the 369-million-digit power (hung)
@example("Integer(10)**Integer(10)**9*phi")
@example("Float('1e999999')")
@example("exp(1e300)*phi**2")  # found: SymPy evaluated e**(1e300) with mpmath (hung)
@example("(phi+1)**9**9")  # found: the expansion of the power did not end
@example("sin(1e300)")
@example("__import__('os').system('true')")
@example("phi.__class__")
def test_fuzz_density_strings(text):
    _density_case(text)


# ---------------------------------------------------------------- TOML configurations
VALID = {
    "action": {"density": "m2/2*phi**2 + lam/4*phi**4", "fields": ["phi"]},
    "path": {"m2": [1.0, -1.0], "lam": [0.0, 1.0]},
    "flow": {"steps": 2, "form": "chi", "seed": 0},
    "basis": {"kind": "sine", "n": 5},
    "collocation": {"n_samples": 100, "n_tail": 50},
    "sampling": {"n": 1000, "seed": 0},
    "observables": {"phi2": "phi**2"},
}
VALID_LATTICE = {
    "action": {"lattice": [4, 4], "density": "(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4"},
    "path": {"m2": [1.0, -1.0], "lam": [0.0, 1.0]},
    "lattice": {"base": "free", "steps": 2, "collocation": 50},
    "sampling": {"n": 100},
}
EDGE_NUMBERS = [0, -1, 1, 2, 3, -(2**63), 2**63 - 1, 10**20, 1e300, -1e300, 1e-300, math.inf, -math.inf, math.nan, 0.5]
ANY_VALUE = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.booleans(),
    st.text(max_size=8),
    st.sampled_from(["sine", "polynomial", "hermite", "radial", "custom", "qr", "svd", "adam", "parallel", "free"]),
    st.lists(st.sampled_from(EDGE_NUMBERS), max_size=4),
    st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
SECTIONS = [*SCHEMA, "Action", "paths", "", "sampling.x"]


def _keys(section):
    return [k for k in SCHEMA.get(section, {}) if k != "*"] + ["m2", "lam", "foo", "n ", "phi2"]


@st.composite
def configs(draw):
    base = draw(st.sampled_from([VALID, VALID_LATTICE]))
    data = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["set", "set", "set", "drop", "drop_key", "section"]))
        section = draw(st.sampled_from(SECTIONS))
        if op == "drop":
            data.pop(section, None)
        elif op == "section":
            data[section] = draw(st.one_of(ANY_VALUE, st.just({})))
        else:
            table = data.setdefault(section, {}) if isinstance(data.get(section, {}), dict) else {}
            key = draw(st.sampled_from(_keys(section)))
            if op == "drop_key":
                table.pop(key, None)
            else:
                table[key] = draw(ANY_VALUE)
    return data


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"


def to_toml(data) -> str:
    lines = []
    for section, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{json.dumps(section)}]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()]
        else:
            lines.insert(0, f"{json.dumps(section)} = {_toml_value(table)}")
    return "\n".join(lines) + "\n"


def _config_case(text, tmp):
    """load_config (TOML + validate + guards), then build the objects, no solve: PikflowError or objects."""
    p = tmp / "c.toml"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    data = _check(load_config, p)
    if isinstance(data, pf.PikflowError):
        return data
    out = _check(build_lattice if is_lattice(data) else build, data)
    assert isinstance(out, (tuple, pf.PikflowError))
    return out


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=N_TOML * 2 // 3)
@given(configs())
def test_fuzz_toml_configs(tmp, data):
    _config_case(to_toml(data), tmp)


@settings(max_examples=N_TOML // 3)
@given(st.sampled_from([VALID, VALID_LATTICE]), st.data())
def test_fuzz_toml_text_mutations(tmp, base, data):
    """Character-level damage of a valid file: characters replaced or inserted."""
    text = to_toml(base)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        replace = data.draw(st.booleans())
        c = data.draw(st.sampled_from(list("[]=\"'\n #.,{}09e-") + ["φ", "\x00", "inf", "nan", "1e999"]))
        text = text[:i] + c + text[i + 1 :] if replace else text[:i] + c + text[i:]
    _config_case(text, tmp)


# ---------------------------------------------------------------- numbers at the edges
EDGE = st.one_of(
    st.sampled_from(EDGE_NUMBERS + [2**70, -(2**70), 10**400, 1e308, 5e-324, -0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
)
NUMERIC = [
    (s, k)
    for s, keys in SCHEMA.items()
    for k, (types, _) in keys.items()
    if k != "*" and (int in types or float in types) and s not in ("observables",)
]


@settings(max_examples=N_EDGES * 3 // 5)
@given(st.sampled_from(NUMERIC), EDGE, st.booleans())
@example(("flow", "steps"), 10**10, False)  # the issue: numpy MemoryError after 149 GiB
@example(("sampling", "n"), 10**14, False)  # the issue: ran without end
@example(("action", "lattice"), 100000, True)
@example(("solver", "learning_rate"), 10**400, False)  # found: math.isfinite(int) overflowed in the range check
@example(("flow", "steps"), 10**400, False)  # found: the same in the resource estimate
def test_fuzz_numeric_settings(tmp, where, value, lattice):
    section, key = where
    data = json.loads(json.dumps(VALID_LATTICE if lattice else VALID))
    if (section, key) == ("action", "lattice"):
        value = [value, value]
    data.setdefault(section, {})[key] = value
    if isinstance(value, int) and abs(value) >= 2**63:  # TOML integers are 64-bit: validate() gets them in Python
        _check(validate, data)
        return
    _config_case(to_toml(data), tmp)


@settings(max_examples=N_EDGES * 2 // 5)
@given(st.lists(st.one_of(EDGE, st.text(max_size=6)), min_size=1, max_size=3), st.sampled_from(["m2", "lam"]))
@example([1.0, -1.0], "lam")
@example([math.nan, 1.0], "m2")
def test_fuzz_couplings(tmp, value, name):
    """Couplings at the edges, 0-D (up to the normalisability check) and lattice (up to the bounded check)."""
    for base in (VALID, VALID_LATTICE):
        data = json.loads(json.dumps(base))
        data["path"][name] = value if len(value) != 1 else value[0]
        if any(isinstance(v, int) and abs(v) >= 2**63 for v in value):
            _check(validate, data)
            continue
        out = _config_case(to_toml(data), tmp)
        if isinstance(out, tuple) and not is_lattice(data):
            _check(out[0].check_normalisable)


# ---------------------------------------------------------------- saved flows
@pytest.fixture(scope="module")
def saved_flows(tmp_path_factory):
    """One tiny 0-D flow and one tiny lattice flow, saved (solved once per module, ~seconds)."""
    from pikflow.lattice import solve_lattice

    root = tmp_path_factory.mktemp("saved")
    action = pf.Action("m2/2*phi**2 + lam/4*phi**4", fields=["phi"])
    path = pf.Path.linear(action, start={"m2": 1.0, "lam": 0.0}, end={"m2": 1.0, "lam": 0.5})
    colloc = pf.Collocation(n_samples=60, n_tail=20)
    flow = pf.solve(path, steps=1, basis=pf.Sine(n=3), collocation=colloc, progress=False)
    flow.save(root / "zero_d")
    lat = LatticePath(
        LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4", [3]),
        {"m2": [1.0, 1.0], "lam": [0.0, 0.2]},
    )
    lflow = solve_lattice(lat, steps=1, n_collocation=40, progress=False)
    lflow.save(root / "lattice")
    return {"zero_d": (root / "zero_d", pf.load), "lattice": (root / "lattice", pf.lattice.load_lattice_flow)}


def _mutate(d: pathlib.Path, rng: random.Random, kind: str):
    files = sorted(p for p in d.iterdir() if p.is_file())
    f = rng.choice(files)
    data = bytearray(f.read_bytes())
    if kind == "truncate":
        f.write_bytes(bytes(data[: rng.randrange(len(data) + 1)]))
    elif kind == "bitflip":
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        f.write_bytes(bytes(data))
    elif kind == "delete":
        f.unlink()
    elif kind == "garbage":
        f.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(64))))
    elif kind == "version":
        meta = json.loads((d / "flow.json").read_text())
        for k in ("format", "version", "space"):
            if k in meta:
                meta[k] = rng.choice([None, 0, 1, 2, 99, "x", -1, 1.5, [], "lattice", "zero-dim", meta[k]])
        (d / "flow.json").write_text(json.dumps(meta))
    elif kind == "json_value":  # a value inside flow.json replaced
        meta = json.loads((d / "flow.json").read_text())
        key = rng.choice(sorted(meta))
        meta[key] = rng.choice([None, 0, -1, 1e300, "x", [], {}, [1, 2], math.inf])
        (d / "flow.json").write_text(json.dumps(meta))
    elif kind == "extra":
        (d / rng.choice(["flow.json.bak", "junk"])).write_bytes(b"x")


@settings(max_examples=N_FLOWDIR)
@given(
    st.sampled_from(["zero_d", "lattice"]),
    st.sampled_from(["truncate", "bitflip", "delete", "garbage", "version", "json_value", "extra"]),
    st.integers(0, 2**32 - 1),
    st.sampled_from([False, False, False, True]),
)
@example("zero_d", "bitflip", 400, True)  # a bit flip with a rewritten manifest loads: the checksums cannot know
@example("zero_d", "json_value", 202, True)  # solve_seconds = {}: was a TypeError from Flow.__init__
def test_fuzz_saved_flow_directories(saved_flows, tmp, which, kind, seed, rewrite_manifest):
    """Damaged copies: the manifest catches changed bytes; with a rewritten manifest the parsers must cope."""
    src, load = saved_flows[which]
    d = tmp / "flowcopy"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(src, d)
    _mutate(d, random.Random(seed), kind)
    if rewrite_manifest and (d / "manifest.json").exists():
        (d / "manifest.json").unlink()
        write_manifest(d)
    out = _check(load, d)
    if rewrite_manifest:  # content and checksums changed together: a PikflowError or a flow, nothing else
        assert isinstance(out, (pf.PikflowError, pf.Flow, pf.lattice.LatticeFlow))
    elif not isinstance(out, pf.PikflowError):  # loaded with the manifest checked: the content must be intact
        ref = load(src)
        assert out.steps == ref.steps
        if which == "lattice":
            assert np.array_equal(np.asarray(out.coeffs), np.asarray(ref.coeffs))
        else:
            import equinox as eqx
            import jax

            leaves = lambda f: jax.tree.leaves(eqx.filter(f.kernels, eqx.is_array))  # noqa: E731
            pairs = zip(leaves(out), leaves(ref), strict=True)
            assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in pairs)


# ---------------------------------------------------------------- Python API
class _Reached(Exception):
    """Raised instead of the numerical work: the call got past every input check."""


WEIRD = st.sampled_from(
    [None, "", "abc", "phi", -1, 0, 1, 2, 1.5, math.nan, math.inf, -math.inf, 1e300, 2**70, -(2**70), True, False,
     [], [1], [1, 2], {}, {"a": 1}, (), b"x", object(), np.array([1.0, 2.0]), np.float64(2.0), np.int64(3), 1j]
)  # fmt: skip


@pytest.fixture(scope="module")
def api_objects(saved_flows):
    action = pf.Action("m2/2*phi**2 + lam/4*phi**4", fields=["phi"])
    path = pf.Path.linear(action, start={"m2": 1.0, "lam": 0.0}, end={"m2": 1.0, "lam": 0.5})
    lat = LatticePath(
        LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + lam/4*phi**4", [3]),
        {"m2": [1.0, 1.0], "lam": [0.0, 0.2]},
    )
    return {"action": action, "path": path, "lattice_path": lat, "flow": pf.load(saved_flows["zero_d"][0])}


def _api_calls(o, w):
    from pikflow.lattice import fit_lattice, solve_lattice

    return {
        "Action(expr)": lambda: pf.Action(w),
        "Action(fields)": lambda: pf.Action("phi**2", fields=w),
        "Action(couplings)": lambda: pf.Action("m*phi**2", fields=["phi"], couplings=w),
        "Path(action)": lambda: pf.Path(w, {}),
        "Path(couplings)": lambda: pf.Path(o["action"], w),
        "Path.linear(start)": lambda: pf.Path.linear(o["action"], start=w, end={"m2": 1.0, "lam": 1.0}),
        "Path.linear(coupling)": lambda: pf.Path.linear(
            o["action"], start={"m2": w, "lam": 0.0}, end={"m2": 1.0, "lam": 1.0}
        ),
        "solve(path)": lambda: pf.solve(w),
        "solve(steps)": lambda: pf.solve(o["path"], steps=w, progress=False),
        "solve(basis)": lambda: pf.solve(o["path"], basis=w, progress=False),
        "solve(solver)": lambda: pf.solve(o["path"], solver=w, progress=False),
        "solve(collocation)": lambda: pf.solve(o["path"], collocation=w, progress=False),
        "solve(form)": lambda: pf.solve(o["path"], form=w, progress=False),
        "solve(seed)": lambda: pf.solve(o["path"], seed=w, progress=False),
        "solve(mode)": lambda: pf.solve(o["path"], mode=w, progress=False),
        "Sine(n)": lambda: pf.Sine(n=w),
        "Sine(frequencies)": lambda: pf.Sine(w),
        "Polynomial(degree)": lambda: pf.Polynomial(w),
        "Collocation(n_samples)": lambda: pf.Collocation(n_samples=w),
        "Collocation(tail_gap)": lambda: pf.Collocation(tail_gap=w),
        "Flow.sample(n)": lambda: o["flow"].sample(w, progress=False),
        "Flow.sample(seed)": lambda: o["flow"].sample(10, seed=w, progress=False),
        "Flow.sample(method)": lambda: o["flow"].sample(10, method=w, progress=False),
        "Flow.sample(batch_size)": lambda: o["flow"].sample(10, batch_size=w, progress=False),
        "Flow.sample(table_nodes)": lambda: o["flow"].sample(10, table_nodes=w, progress=False),
        "load(dir)": lambda: pf.load(w),
        "LatticeAction(density)": lambda: LatticeAction(w, [4]),
        "LatticeAction(shape)": lambda: LatticeAction("phi**2", w),
        "LatticePath(couplings)": lambda: LatticePath(LatticeAction("m2*phi**2", [3]), w),
        "solve_lattice(path)": lambda: solve_lattice(w),
        "solve_lattice(steps)": lambda: solve_lattice(o["lattice_path"], steps=w, progress=False),
        "solve_lattice(n_collocation)": lambda: solve_lattice(o["lattice_path"], n_collocation=w, progress=False),
        "fit_lattice(base)": lambda: fit_lattice(o["lattice_path"], base=w, progress=False),
        "fit_lattice(steps)": lambda: fit_lattice(o["lattice_path"], base="free", steps=w, progress=False),
    }


CALLS = sorted(_api_calls({}, None))


@pytest.fixture
def no_numerics(monkeypatch):
    """Replace the numerical stages by :class:`_Reached` (sampling, solving, HMC)."""
    import pikflow.flow._build as build_mod
    import pikflow.lattice._basis as lflow_mod  # solve_lattice's default basis (path_basis) calls its lattice_basis
    import pikflow.lattice._fit as fit_mod
    import pikflow.lattice._observables as obs_mod

    def stop(*a, **k):
        raise _Reached

    monkeypatch.setattr(build_mod, "_sequential", stop)
    monkeypatch.setattr(build_mod, "_parallel", stop)
    monkeypatch.setattr(lflow_mod, "lattice_basis", stop)
    monkeypatch.setattr(fit_mod, "solve_lattice", stop)
    monkeypatch.setattr(obs_mod, "hmc", stop)
    monkeypatch.setattr(pf.Flow, "table", lambda *a, **k: stop())
    monkeypatch.setattr(pf.Flow, "_push_fn", lambda *a, **k: stop())


@settings(max_examples=N_API)
@given(st.sampled_from(CALLS), WEIRD)
def test_fuzz_api_wrong_types(api_objects, no_numerics, call, value):
    try:
        _check(_api_calls(api_objects, value)[call])
    except _Reached:
        pass
