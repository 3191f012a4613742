"""Tests for the exact 0-D quadrature references (pikflow.exact)."""

import numpy as np
import pytest

from pikflow.exact import QuadratureReference

TIMES = [0.0, 0.3, 0.7, 1.0]


def free_field():
    """S_t = m^2(t)/2 phi^2 with m^2 = 1 + t."""
    return QuadratureReference.phi4(m2_start=1.0, m2_end=2.0, lam_start=0.0, lam_end=0.0)


@pytest.mark.parametrize("t", TIMES)
def test_gaussian_log_z_and_second_moment(t):
    ref = free_field()
    m2 = 1.0 + t
    assert abs(ref.log_z(t) - 0.5 * np.log(2 * np.pi / m2)) < 1e-10
    assert abs(ref.expectation(t, np.square) - 1.0 / m2) < 1e-10 / m2
    assert abs(ref.expectation(t, lambda x: np.ones_like(x)) - 1.0) < 1e-12
    phi = np.linspace(-3, 3, 7)
    dens = np.exp(-0.5 * m2 * phi**2) * np.sqrt(m2 / (2 * np.pi))
    np.testing.assert_allclose(ref.density(t, phi), dens, rtol=1e-10)


@pytest.mark.parametrize("t", TIMES)
def test_free_field_kernel(t):
    ref = free_field()
    m2 = 1.0 + t
    phi = np.linspace(-6.0, 6.0, 241)
    exact = -1.0 / (2.0 * m2) * phi
    np.testing.assert_allclose(ref.kernel(t, phi), exact, rtol=0, atol=1e-8)
    # deep tails, where S_t - min S_t = 40
    tail = np.sqrt(80.0 / m2) * np.array([-1.0, 1.0])
    np.testing.assert_allclose(ref.kernel(t, tail), -tail / (2 * m2), rtol=0, atol=1e-8)


def test_phi4_moments_at_t1():
    ref = QuadratureReference.phi4()
    assert abs(ref.expectation(1.0, np.abs) - 1.73618) < 1e-5
    assert abs(ref.expectation(1.0, np.square) - 3.40854) < 1e-5


@pytest.mark.parametrize("t", TIMES)
def test_phi4_kernel_solves_wegner_equation(t):
    ref = QuadratureReference.phi4()
    m2, lam = 1.0 - 3.0 * t, 0.5 * t
    phi = np.linspace(-3.0, 3.0, 61)
    h = 1e-4
    v = ref.kernel(t, phi)
    dv = (ref.kernel(t, phi + h) - ref.kernel(t, phi - h)) / (2 * h)
    ds = m2 * phi + lam * phi**3
    dsdt = -1.5 * phi**2 + 0.125 * phi**4
    mean = ref.expectation(t, lambda x: -1.5 * x**2 + 0.125 * x**4)
    residual = dv - v * ds - (dsdt - mean)
    assert np.max(np.abs(residual)) < 1e-5
    # odd kernel for a Z2-symmetric path, and continuous left/right tail switch
    np.testing.assert_allclose(v, -v[::-1], rtol=0, atol=1e-10)


def test_explicit_range_and_shapes():
    ref = QuadratureReference.phi4(lower=-8.0, upper=8.0)
    auto = QuadratureReference.phi4()
    phi = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    assert ref.kernel(0.5, phi).shape == (3, 4)
    np.testing.assert_allclose(ref.kernel(0.5, phi), auto.kernel(0.5, phi), atol=1e-10)
    assert abs(ref.log_z(0.5) - auto.log_z(0.5)) < 1e-10


def test_non_normalisable_raises():
    ref = QuadratureReference(lambda t, x: -(x**4), lambda t, x: np.zeros_like(x))
    with pytest.raises(ValueError, match="not normalisable"):
        ref.log_z(0.0)
