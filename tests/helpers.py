"""A zoo of paths with known answers, across field spaces, shared by the tests.

Every :class:`Case` builds a path, solves it with small settings (a few seconds), samples it, and
knows an independent reference for one observable:

- ``free-0d``: a Gaussian path, m² from 1 to 3: ⟨φ²⟩ = 1/3 exactly;
- ``phi4-0d``: the paper's φ⁴ path (m², λ) = (1, 0) -> (−2, 0.5): quadrature;
- ``o2-0d``: the O(2) model on the same path: radial quadrature of ⟨|φ|²⟩;
- ``free-4x4``: a free lattice field, m² from 1 to 0.5: ⟨m²⟩ = 1/(V m²) exactly;
- ``phi4-8x8``: lattice φ⁴ to (m², λ) = (−0.5, 1): HMC with Gamma-method errors;
- ``o2-8x8``: the lattice O(2) model to (m², λ) = (−0.5, 1), the default O(2)-invariant basis:
  ⟨|m|²⟩ of the vector magnetisation against HMC with Gamma-method errors.

The estimate and its reference are compared in units of their combined error; a correct
sampler exceeds 4σ with probability 6e-5 per number.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import numpy as np

import pikflow as pf
import pikflow.lattice as pl
from pikflow.diagnostics import gamma_method, reweight

#: The φ⁴ density on one site (0-D); the paper's path runs it from (1, 0) to (−2, 0.5).
PHI4 = "m2/2*phi**2 + lam/4*phi**4"
#: The O(2) model in 0-D.
O2 = "m2/2*(phi1**2 + phi2**2) + lam/4*(phi1**2 + phi2**2)**2"
#: The O(2) model on a lattice (two real components per site).
O2_LATTICE = (
    "(m2 + 2*d)/2*(phi1**2 + phi2**2) - sum_mu(phi1*shift(phi1, mu) + phi2*shift(phi2, mu))"
    " + lam/4*(phi1**2 + phi2**2)**2"
)


@dataclasses.dataclass(frozen=True)
class Case:
    """One path of the zoo: how to build and solve it, what to measure, and its reference."""

    name: str
    space: str  # "0-D" or "lattice"
    build: Callable[[], object]  # the path
    observable: str  # what `measure` returns
    reference: Callable[[object], tuple[float, float]]  # path -> (value, error)

    @property
    def lattice(self) -> bool:
        return self.space == "lattice"

    def solve(self, path, *, solver: str = "direct", form: str = "chi", seed: int = 0):
        """Solve with the zoo's small settings; ``solver`` is a name of ``pikflow.solvers``' kinds."""
        if self.lattice:
            if solver != "direct" or form != "chi":
                raise ValueError("lattice layers are solved by the direct solver in the gradient form")
            basis = None
            if path.action.n > 1:  # the O(n)-invariant basis (the generic default is one-component)
                basis = pl.default_basis(path, pl.GaussianLatticeBase.from_path(path))
            return pl.solve_lattice(path, basis, steps=4, n_collocation=400, seed=seed, progress=False)
        if solver == "levenberg-marquardt":
            lm = pf.solvers.LevenbergMarquardtSolver(n_frequencies=3)
            return pf.solve(path, steps=2, solver=lm, form=form, seed=seed, progress=False)
        return pf.solve(path, steps=8, form=form, seed=seed, progress=False)

    def sample(self, flow, n: int, seed: int):
        return flow.sample(n, seed=seed, progress=False)  # one signature for every space

    def measure(self, samples) -> pf.Estimate:
        """The reweighted observable with its (delta-method) error."""
        if not self.lattice:
            return samples.observable(self.observable)
        lattice = samples.fields.shape[1 if samples.components == 1 else 2 :]
        m = samples.magnetisation() / int(np.prod(lattice))  # |m| of the vector m for n > 1
        v, e = reweight(np.asarray(samples.log_w, dtype=float), (m**2)[:, None])
        return pf.Estimate(float(v[0]), float(e[0]))


def _free_0d():
    action = pf.Action("m2/2*phi**2", fields=["phi"])
    return pf.Path.linear(action, start={"m2": 1.0}, end={"m2": 3.0})


def _phi4_0d():
    return pf.Path.linear(pf.Action(PHI4, fields=["phi"]), start={"m2": 1.0, "lam": 0.0}, end={"m2": -2.0, "lam": 0.5})


def _o2_0d():
    action = pf.Action(O2, fields=["phi1", "phi2"])
    return pf.Path.linear(action, start={"m2": 1.0, "lam": 0.0}, end={"m2": -2.0, "lam": 0.5})


def _free_lattice():
    return pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (4, 4)), {"m2": (1.0, 0.5), "lam": 0.0})


def _phi4_lattice():
    return pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, (8, 8)), {"m2": (1.0, -0.5), "lam": (0.0, 1.0)})


def _o2_lattice():
    action = pl.LatticeAction(O2_LATTICE, (8, 8), fields=["phi1", "phi2"])
    return pl.LatticePath(action, {"m2": (1.0, -0.5), "lam": (0.0, 1.0)})


def _radial_r2(path) -> tuple[float, float]:
    r = np.linspace(0, 8, 200_001)
    p = r * np.exp(-(-1.0 * r**2 + 0.125 * r**4))
    return float(np.trapezoid(r**2 * p, r) / np.trapezoid(p, r)), 0.0


@functools.lru_cache(maxsize=4)
def _hmc_m2(path) -> tuple[float, float]:
    """⟨|m|²⟩ at t = 1 from 8 HMC chains (Gamma method, chains as replica); m summed per component."""
    fields, _ = pl.hmc(path, jax.random.PRNGKey(11), 8000, n_chains=8, step="auto")
    n = path.action.n
    m = fields.reshape(*fields.shape[:2], n, -1).mean(axis=-1)  # (chains, samples, components)
    m2 = np.sum(m**2, axis=-1)
    g = gamma_method(m2)
    return float(g.mean), float(g.error)


ZOO = {
    c.name: c
    for c in (
        Case("free-0d", "0-D", _free_0d, "phi**2", lambda p: (1 / 3, 0.0)),
        Case(
            "phi4-0d",
            "0-D",
            _phi4_0d,
            "phi**2",
            lambda p: (pf.exact.QuadratureReference.phi4().expectation(1.0, lambda x: x**2), 0.0),
        ),
        Case("o2-0d", "0-D", _o2_0d, "phi1**2 + phi2**2", _radial_r2),
        Case("free-4x4", "lattice", _free_lattice, "m**2", lambda p: (1 / (16 * 0.5), 0.0)),
        Case("phi4-8x8", "lattice", _phi4_lattice, "m**2", _hmc_m2),
        Case("o2-8x8", "lattice", _o2_lattice, "|m|**2", _hmc_m2),
    )
}
