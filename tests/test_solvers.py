"""The solvers (direct, Adam-trained, Levenberg-Marquardt) and the layer-parallel mode, on known answers.

Known answers: the free path m2: 1 -> 4 (lam = 0), whose exact kernel is linear,
v = -(1/2)(dm2/dt)/m2(t) phi = -3/(2(1 + 3t)) phi; and the paper's 0-D phi^4 path against
the exact quadrature kernel (``pikflow.exact``). Sizes are reduced (few steps, few epochs);
each tolerance is justified next to its assertion.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pikflow as pf
from pikflow.cli._config import build
from pikflow.solvers import AdamSolver, LevenbergMarquardtSolver, MLPKernel, SineKernel


@pytest.fixture(scope="module")
def free_path():
    return pf.Path(pf.Action("m2/2*phi**2", fields=["phi"]), {"m2": [1.0, 4.0]})


@pytest.fixture(scope="module")
def paper_path():
    return pf.Path(pf.Action("m2/2*phi**2 + lam/4*phi**4", fields=["phi"]), {"m2": [1.0, -2.0], "lam": [0.0, 0.5]})


def free_v(t, x):
    return -3.0 / (2.0 * (1.0 + 3.0 * t)) * x


def kernel_error(flow, t=1.0):
    ref = pf.exact.reference_for(flow.path)
    x = np.linspace(-3, 3, 301)
    exact = ref.kernel(t, x)
    return np.max(np.abs(flow.velocity(x, t) - exact)) / np.max(np.abs(exact))


SMALL = pf.Collocation(n_samples=300, n_tail=100)


# ---------------------------------------------------------------- kernel models
def test_model_divergences_are_exact(getkey):
    """Analytic (sine) and jacfwd-trace (MLP) divergences against an independent central difference."""
    phi = jnp.array([0.7, -1.3])
    sine = SineKernel.init(2, 5, odd=False, key=getkey())
    sine = SineKernel(
        sine.linear + 0.3, sine.sin_coeffs, sine.frequencies, sine.sin_coeffs[::-1], sine.constant + 1, odd=False
    )
    mlp = MLPKernel.init(2, 8, 2, odd=True, key=getkey())
    mlp = jax.tree.map(lambda a: a + 0.1, mlp)  # non-zero output layer
    h = 1e-5
    for k in (sine, mlp):
        fd = sum((k(phi + h * e)[a] - k(phi - h * e)[a]) / (2 * h) for a, e in enumerate(jnp.eye(2)))
        # central differences are accurate to O(h^2 v''') ~ 1e-10 for these O(1) smooth functions
        assert abs(float(k.divergence(phi)) - float(fd)) < 1e-8
    # odd by construction
    np.testing.assert_allclose(mlp(-phi), -mlp(phi), atol=1e-15)


# ---------------------------------------------------------------- free Gaussian path: v exactly linear
def test_levenberg_marquardt_free_path_exact(free_path):
    """The sine model contains the linear term, so the exact kernel is representable: error ~ ridge/rounding."""
    flow = pf.solve(
        free_path, steps=2, solver=LevenbergMarquardtSolver(n_frequencies=3), collocation=SMALL, progress=False
    )
    x = np.linspace(-4, 4, 17)
    for t in flow.times:
        # the relative ridge 1e-14 on unit-norm columns biases coefficients by ~1e-14 relative: 1e-9 is loose
        np.testing.assert_allclose(flow.velocity(x, t), free_v(t, x), atol=1e-9)


def test_adam_free_path(free_path):
    """Adam gets the linear kernel to the accuracy its step sizes allow (3 layers, 300 epochs each)."""
    solver = AdamSolver(n_frequencies=3, epochs=300, warm_epochs=300, batch_size=256)
    flow = pf.solve(
        free_path, steps=1, solver=solver, collocation=pf.Collocation(n_samples=512, n_tail=0), progress=False
    )
    x = np.linspace(-2, 2, 9)  # where the samples are (|phi| <= 2 sigma)
    for t in flow.times:
        exact = free_v(t, x)
        # measured relative errors 0.01-0.07 (600 epochs: 0.005-0.03); a wrong sign, factor or
        # parity would give O(1)
        assert np.max(np.abs(flow.velocity(x, t) - exact)) < 0.15 * np.max(np.abs(exact))
    # the loss (eq. 20, chi = 0) is the squared residual: measured <= 2e-3, against (dS/dt)^2 ~ 2
    assert max(r.residual_rms**2 for r in flow.reports) < 1e-2
    assert flow.settings["solver"]["kind"] == "adam"
    assert len(flow.settings["layers"]) == 3


def test_direct_parallel_free_path(free_path):
    """Layer-parallel mode (points from p_t itself) reproduces the exact linear kernel at every layer."""
    flow = pf.solve(free_path, steps=3, basis=pf.Polynomial(3), collocation=SMALL, mode="parallel", progress=False)
    x = np.linspace(-4, 4, 9)
    for t in flow.times:
        np.testing.assert_allclose(flow.velocity(x, t), free_v(t, x), atol=1e-11)  # exact in the basis: rounding


# ---------------------------------------------------------------- 0-D phi^4 against the exact kernel
def test_levenberg_marquardt_phi4_beats_direct_with_same_size(paper_path):
    """Fitting 8 frequencies (variable projection) beats 8 fixed ones by far, against the exact kernel."""
    lm = pf.solve(
        paper_path, steps=3, solver=LevenbergMarquardtSolver(n_frequencies=8), collocation=SMALL, progress=False
    )
    direct = pf.solve(paper_path, steps=3, basis=pf.Sine(n=8), collocation=SMALL, progress=False)
    e_lm, e_direct = kernel_error(lm), kernel_error(direct)
    # measured: LM 8 frequencies ~1e-5 (1e-6..1e-4 by layer), fixed 8 frequencies ~1e-3
    assert e_lm < 1e-4
    assert e_lm < 0.1 * e_direct
    assert max(r.residual_rms for r in lm.reports) < max(r.residual_rms for r in direct.reports)


def test_adam_phi4_reduced_epochs(paper_path):
    """The paper's training, reduced (3 steps, 150 epochs): close to the exact kernel, ESS/N near 1."""
    solver = AdamSolver(n_frequencies=10, epochs=150, warm_epochs=150)
    flow = pf.solve(paper_path, steps=3, solver=solver, progress=False)
    # measured ~1e-2 at these reduced sizes (600 epochs and 25 steps: 1.4e-3)
    assert kernel_error(flow) < 5e-2
    s = flow.sample(20_000, seed=2, progress=False)
    # with a 5 % kernel error the density is off by a few percent at most: ESS/N well above 0.9 (measured > 0.99)
    assert s.ess > 0.95 and s.n_nonfinite == 0


def test_parallel_agrees_with_sequential(paper_path):
    """Layer-parallel and sequential direct solves: same kernel accuracy, ESS/N and <phi^2> within errors."""
    ref = pf.exact.reference_for(paper_path)
    seq = pf.solve(paper_path, steps=10, collocation=SMALL, progress=False)
    par = pf.solve(paper_path, steps=10, collocation=SMALL, mode="parallel", progress=False)
    assert par.settings["mode"] == "parallel"
    for flow in (seq, par):
        assert kernel_error(flow) < 1e-4  # measured ~1e-6 for both (25 sine frequencies)
    s_seq = seq.sample(20_000, seed=5, progress=False)
    s_par = par.sample(20_000, seed=5, progress=False)
    # both flows are near exact: 1 - ESS/N is O(1e-6), far below its statistical error at N = 2e4
    assert abs(s_seq.ess - s_par.ess) < 1e-3
    exact = ref.expectation(1.0, lambda x: x**2)
    for s in (s_seq, s_par):
        assert abs(s.observable("phi**2").deviation(exact)) < 4  # 4 sigma: fails by chance with p < 1e-4


# ---------------------------------------------------------------- save/load, config, errors
@pytest.mark.parametrize("model", ["sine", "mlp"])
def test_trained_flow_saves_and_loads(free_path, tmp_path, model):
    solver = AdamSolver(model=model, n_frequencies=3, width=4, epochs=5, warm_epochs=5)
    flow = pf.solve(
        free_path, steps=1, solver=solver, collocation=pf.Collocation(n_samples=64, n_tail=0), progress=False
    )
    again = pf.load(flow.save(tmp_path / model))
    x = np.linspace(-2, 2, 7)
    for t in flow.times:
        np.testing.assert_array_equal(again.velocity(x, t), flow.velocity(x, t))
        k1, k2 = flow.kernel(t), again.kernel(t)
        assert float(k1.divergence(jnp.array([0.3]))) == float(k2.divergence(jnp.array([0.3])))
    assert type(again.kernels) is type(flow.kernels)


def test_config_picks_solver():
    base = {"action": {"density": "m2/2*phi**2"}, "path": {"m2": [1.0, 2.0]}}
    _, opts, _, _ = build({**base, "solver": {"kind": "adam", "epochs": 7, "mode": "parallel"}})
    assert isinstance(opts["solver"], AdamSolver) and opts["solver"].epochs == 7 and opts["mode"] == "parallel"
    _, opts, _, _ = build({**base, "solver": {"kind": "levenberg-marquardt", "n_frequencies": 4}})
    assert opts["solver"].n_frequencies == 4
    with pytest.raises(pf.ConfigError, match="do not apply"):
        build({**base, "solver": {"kind": "direct", "epochs": 3}})
    with pytest.raises(pf.ConfigError, match="kind must be one of"):
        build({**base, "solver": {"kind": "sgd"}})
    with pytest.raises(pf.ConfigError, match="learning_rate"):
        build({**base, "solver": {"kind": "adam", "learning_rate": -1.0}})


def test_bad_solver_input(free_path):
    with pytest.raises(pf.SolveError, match="solver must be"):
        pf.solve(free_path, steps=1, solver="adam", progress=False)
    with pytest.raises(pf.SolveError, match="form"):
        pf.solve(free_path, steps=1, solver=AdamSolver(), form="constant", progress=False)
    with pytest.raises(pf.SolveError, match="mode"):
        pf.solve(free_path, steps=1, mode="vmap", progress=False)
    with pytest.raises(pf.SolveError, match="model"):
        AdamSolver(model="resnet")
    with pytest.raises(pf.SolveError, match="n_frequencies"):
        LevenbergMarquardtSolver(n_frequencies=0)
