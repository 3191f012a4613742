"""Check ``precondition.py`` against autodiff on a 6x6 lattice: M dOmega, tr(M d^2 Omega) and the solve's columns.

Builds a basis with every family the prototype preconditions (Fourier two-point, smoothed powers, products,
magnetisation with log cosh), random coefficients and fields, the dense circulant M of the multiplier
M(k) = 1/K_0(k), and prints the largest differences (expected: float64 rounding).
Usage: ``python check_against_autodiff.py``.
"""

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from precondition import preconditioned  # noqa: E402


def main():
    import jax
    import jax.numpy as jnp

    import pikflow.lattice as pl

    L = 6
    action = pl.LatticeAction(pl.PHI4_DENSITY, [L, L])
    path = pl.LatticePath(action, {"m2": -1.0, "lam": 1.0})
    K0 = np.asarray(action.lattice.khat2()) + 0.7
    basis = pl.lattice_basis(
        action.lattice, magnetisation=(4, 6), scales=(0.1, 0.5), powers=(4, 6), precision=K0, tame=5.0,
        local_range=None, symmetry=path.symmetry(),
    )  # fmt: skip
    basis = pl.LatticeBasis(
        [
            *basis.families,
            pl.SmoothedProducts(action.lattice, [0.1, 0.5, 1.0], precision=K0, tame=5.0),
            pl.Magnetisation(action.lattice, (), log_cosh=0.8),
        ]
    )
    M = 1.0 / K0
    pre = preconditioned(basis, M)
    rng = np.random.default_rng(0)
    phi, dS = (jnp.asarray(rng.normal(size=(L, L))) for _ in range(2))
    a = jnp.asarray(rng.normal(size=basis.n))
    dense = np.stack([np.real(np.fft.ifftn(M * np.fft.fftn(e))) for e in np.eye(L * L).reshape(-1, L, L)])
    dense = dense.reshape(L * L, L * L)

    def grad_hess(f):
        return np.asarray(jax.grad(f)(phi)).reshape(-1), np.asarray(jax.hessian(f)(phi)).reshape(L * L, L * L)

    g, H = grad_hess(lambda f: jnp.dot(a, basis.values(f)))
    grad, lap = pre.fused(a, phi)
    print("M dOmega:", float(np.max(np.abs(np.asarray(grad).reshape(-1) - dense @ g))))
    print("tr(M d2 Omega):", float(lap), float(np.trace(dense @ H)))
    ref = []
    for j in range(basis.n):
        gj, Hj = grad_hess(lambda f, j=j: basis.values(f)[j])
        ref.append(np.trace(dense @ Hj) - np.asarray(dS).reshape(-1) @ dense @ gj)
    cols = np.asarray(pre.fused.columns(phi, dS))
    print("columns:", float(np.max(np.abs(cols - np.array(ref)))), "of", float(np.max(np.abs(ref))))


if __name__ == "__main__":
    main()
