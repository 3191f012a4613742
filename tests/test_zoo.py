"""The zoo (tests/helpers.py) across spaces x solvers x forms: every flow agrees with its reference,
and save -> load -> sample gives identical numbers.

Tolerance: |estimate - reference| < 4 combined standard errors (probability of a false alarm
6e-5 per number for a correct sampler; the reference errors are exact zeros or HMC's Gamma-method
errors).
"""

import numpy as np
import pytest
from helpers import ZOO

import pikflow as pf

#: (case, solver, form): every case with the direct solver and the chi form; the constant form
#: (eq. 14 with c_t) and Levenberg-Marquardt on the one-component 0-D paths.
COMBINATIONS = [(name, "direct", "chi") for name in ZOO] + [
    ("phi4-0d", "direct", "constant"),
    ("free-0d", "levenberg-marquardt", "chi"),
]


@pytest.fixture(scope="module")
def paths():
    return {name: case.build() for name, case in ZOO.items()}


@pytest.fixture(scope="module")
def flows(paths):
    """Flows solved once per (case, solver, form), shared by the tests of this module."""
    cache = {}

    def get(name, solver="direct", form="chi"):
        if (name, solver, form) not in cache:
            cache[name, solver, form] = ZOO[name].solve(paths[name], solver=solver, form=form)
        return cache[name, solver, form]

    return get


@pytest.mark.parametrize("name,solver,form", COMBINATIONS)
def test_zoo_agrees_with_reference(name, solver, form, paths, flows):
    case = ZOO[name]
    path = paths[name]
    flow = flows(name, solver, form)
    samples = case.sample(flow, 4000 if case.lattice else 20000, seed=1)
    est = case.measure(samples)
    ref, ref_err = case.reference(path)
    sigma = np.hypot(est.error, ref_err)
    assert sigma > 0 and abs(est.value - ref) < 4 * sigma, (name, solver, form, est, ref, ref_err)
    ess = samples.ess() if case.lattice else samples.ess
    # measured: >= 0.99 for every 0-D case, 0.99 (free 4x4), 0.9 (phi4 8x8) and 0.998 (O(2) 8x8) on lattices
    assert ess >= (0.8 if case.lattice else 0.99), ess
    if name == "o2-0d":
        assert flow.settings["basis"]["kind"] == "radial"  # the O(N)-equivariant default


@pytest.mark.parametrize("name", ["phi4-0d", "o2-0d", "free-4x4", "o2-8x8"])
def test_zoo_save_load_sample_identical(name, flows, tmp_path):
    case = ZOO[name]
    flow = flows(name)
    saved = flow.save(tmp_path / "flow")
    loaded = pf.load(saved)  # one reader for every space: flow.json's format picks the class
    assert type(loaded) is type(flow)
    a, b = case.sample(flow, 500, seed=3), case.sample(loaded, 500, seed=3)
    fa = a.fields if case.lattice else a.final
    fb = b.fields if case.lattice else b.final
    np.testing.assert_array_equal(np.asarray(fa), np.asarray(fb))
    np.testing.assert_array_equal(np.asarray(a.log_w), np.asarray(b.log_w))


def test_lattice_sample_takes_the_zero_d_signature(flows):
    """LatticeFlow.sample(n, seed=s) is LatticeFlow.sample(PRNGKey(s), n), bit for bit; wrong calls are refused."""
    import jax

    flow = flows("free-4x4")
    a, b = flow.sample(300, seed=5), flow.sample(jax.random.PRNGKey(5), 300)
    np.testing.assert_array_equal(a.fields, b.fields)
    np.testing.assert_array_equal(a.log_w, b.log_w)
    assert not np.array_equal(a.fields, flow.sample(300, seed=6).fields)
    with pytest.raises(pf.SamplingError, match="not both"):
        flow.sample(jax.random.PRNGKey(5), 300, seed=5)
    with pytest.raises(pf.SamplingError, match="call sample"):
        flow.sample()
