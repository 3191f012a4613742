"""The one RK4 integrator of every field space (:func:`pikflow.flow.rk4`, :func:`pikflow.flow.rk4_scan`,
:func:`pikflow.flow.rk4_window`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pikflow.flow import exact_log_det, rk4, rk4_scan, rk4_window


def test_rk4_is_the_fourth_order_taylor_map_of_a_linear_flow():
    """For dx/dt = a x, one RK4 step multiplies by 1 + h + h²/2 + h³/6 + h⁴/24 (h = a dt), exactly."""
    a, dt = -0.7, 0.3
    x = jnp.arange(6.0).reshape(2, 3) - 1.5  # any state shape: a small "lattice batch"
    stage = lambda y: (a * y, jnp.sum(y))  # noqa: E731
    new, rate = rk4(stage, stage, stage, x, dt)
    h = a * dt
    np.testing.assert_allclose(new, x * (1 + h + h**2 / 2 + h**3 / 6 + h**4 / 24), rtol=1e-15)
    # the rate is integrated with the same stages: sum(y) follows the same linear flow, so its
    # integral over the step is (Simpson-like RK4 weights) sum(x) dt (1 + h/2 + h²/6 + h³/24)
    np.testing.assert_allclose(rate, jnp.sum(x) * dt * (1 + h / 2 + h**2 / 6 + h**3 / 24), rtol=1e-14)
    back, _ = rk4(stage, stage, stage, new, -dt)  # a step backwards undoes it to O(h^5)
    np.testing.assert_allclose(back, x, atol=abs(h) ** 5)


def test_rk4_scan_uses_layers_2i_2i1_2i2_and_integrates_the_rate():
    """Layer k has velocity c_k (constant in x): after the steps x moved by Σ dt/6 (c_2i + 4 c_2i+1 + c_2i+2)."""
    steps = 3
    c = jnp.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    stage = lambda k, y: (jnp.full_like(y, c[k]), c[k])  # noqa: E731
    x, lq = rk4_scan(stage, jnp.zeros(4), jnp.zeros(()), steps=steps)
    expected = sum((c[2 * i] + 4 * c[2 * i + 1] + c[2 * i + 2]) / (6 * steps) for i in range(steps))
    np.testing.assert_allclose(x, expected, rtol=1e-15)
    np.testing.assert_allclose(lq, expected, rtol=1e-15)
    (_, _), (xs, lqs) = rk4_scan(stage, jnp.zeros(4), jnp.zeros(()), steps=steps, keep=True)
    assert xs.shape == (steps, 4) and lqs.shape == (steps,)
    np.testing.assert_allclose(xs[-1], x, rtol=0)


def _layered_stage(k, y):
    """A nonlinear velocity and rate that change from layer to layer (layer ``k`` scales them by ``1 + k/3``)."""
    f = 1.0 + k / 3.0
    return -f * jnp.tanh(y) + 0.1 * f * y**2, -f * jnp.sum(1.0 - jnp.tanh(y) ** 2, axis=-1)


def test_rk4_window_loops_over_stages_with_the_numbers_of_rk4():
    """The loop over the stages (one evaluation in its body) sums in rk4's order: rk4_scan's numbers (to the last
    bits: XLA compiles the loop differently), for the whole path and for windows; ``skip=1`` leaves the first stage
    unevaluated (a NaN there is never seen) and equals evaluating a zero layer."""
    steps = 3
    x0 = jnp.asarray(np.random.default_rng(3).standard_normal((5, 4)))
    lq0 = jnp.zeros(5)
    window = jax.jit(rk4_window, static_argnums=0)
    want = rk4_scan(_layered_stage, x0, lq0, steps=steps, dt=0.2)
    got = window(_layered_stage, x0, lq0, 0, steps, 0.2)
    assert float(jnp.max(jnp.abs(want[0] - x0))) > 0.1 and float(jnp.max(jnp.abs(want[1]))) > 0.1  # not trivial
    np.testing.assert_allclose(got[0], want[0], rtol=1e-14, atol=0)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-14, atol=0)
    first = window(_layered_stage, x0, lq0, 0, 1, 0.2)
    part = window(_layered_stage, *first, 1, 2, 0.2)
    np.testing.assert_allclose(part[0], want[0], rtol=1e-14, atol=0)
    np.testing.assert_allclose(part[1], want[1], rtol=1e-14, atol=0)

    def zero_first(k, y):  # layer 0 vanishes, as on a clock t**p (p > 1)
        v, r = _layered_stage(k, y)
        return jnp.where(k == 0, 0.0, v), jnp.where(k == 0, 0.0, r)

    def nan_first(k, y):  # layer 0 poisoned: evaluated, it would make everything NaN
        v, r = _layered_stage(k, y)
        return jnp.where(k == 0, jnp.nan, v), jnp.where(k == 0, jnp.nan, r)

    evaluated = window(zero_first, x0, lq0, 0, steps, 0.2)
    skipped = window(nan_first, x0, lq0, 0, steps, 0.2, 1)
    assert np.all(np.isfinite(skipped[0])) and float(jnp.max(jnp.abs(skipped[0] - x0))) > 0.1
    np.testing.assert_allclose(skipped[0], evaluated[0], rtol=1e-14, atol=0)
    np.testing.assert_allclose(skipped[1], evaluated[1], rtol=1e-14, atol=0)
    assert np.all(np.isnan(window(nan_first, x0, lq0, 0, steps, 0.2)[0]))  # skip = 0 evaluates it


@pytest.mark.parametrize("shape", [(2,), (3, 3), (5, 7)])  # (5, 7): 35 columns in blocks of 16, a remainder
def test_exact_log_det_of_a_linear_map_and_nan_where_it_folds(shape):
    n = int(np.prod(shape))
    m = np.eye(n) + 0.3 * np.random.default_rng(0).standard_normal((n, n))
    m = m if np.linalg.det(m) > 0 else m[::-1]  # a map with a positive determinant
    step = lambda x: (jnp.asarray(m) @ x.ravel()).reshape(shape)  # noqa: E731
    x = jnp.ones(shape)
    np.testing.assert_allclose(exact_log_det(step, x), np.log(np.linalg.det(m)), rtol=1e-11)  # LU rounding, n = 35
    flip = np.diag([-1.0] + [1.0] * (n - 1))  # a reflection: det < 0, the map folded
    folded = lambda x: (jnp.asarray(flip @ m) @ x.ravel()).reshape(shape)  # noqa: E731
    assert np.isnan(exact_log_det(folded, x))
    assert jax.jit(exact_log_det, static_argnums=0)(step, x) == pytest.approx(np.log(np.linalg.det(m)), rel=1e-11)


def test_exact_log_det_in_column_blocks_of_a_nonlinear_map():
    """x -> x + 0.2 tanh(A x) on 6x6 (36 numbers, past one block): the Jacobian is I + 0.2 diag(sech^2(Ax)) A."""
    a = np.random.default_rng(1).standard_normal((36, 36)) / 6
    step = lambda x: (x.ravel() + 0.2 * jnp.tanh(jnp.asarray(a) @ x.ravel())).reshape(6, 6)  # noqa: E731
    x = jnp.asarray(np.random.default_rng(2).standard_normal((6, 6)))
    jac = np.eye(36) + 0.2 * (1 / np.cosh(a @ np.asarray(x).ravel()) ** 2)[:, None] * a
    assert exact_log_det(step, x) == pytest.approx(np.linalg.slogdet(jac)[1], rel=1e-12)
