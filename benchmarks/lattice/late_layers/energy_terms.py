r"""Energy-energy terms for the late layers at 32x32 (-2, 2): does a richer basis lower the residual? (issue #15)

:class:`SmoothedEnergies` holds :math:`T_{s,b} = \frac12\sum_x (B_b\,q(\psi_s))(x)^2`, :math:`\psi_s = F_s\phi`
(the smoothing of :class:`~pikflow.lattice.SmoothedPowers`), :math:`q` its tamed square and
:math:`B_b = e^{-b(K-K_{\min})}`: couplings of the local energy at two points a distance of about
:math:`\sqrt b` apart, which the lean basis (powers and products at one point) lacks. With
:math:`C_b = B_b^2`,

.. math:: \partial T = F_s[q'(\psi_s)\,(C_bq)], \qquad
          \Delta T = h_s\sum_x q''(\psi_s)(C_bq) + \frac1V\sum_k \hat H_{sb}(k)\,|\widehat{q'}(k)|^2,

with :math:`\hat H_{sb}` the transform of the real-space product :math:`C_b(r)\,(F_sF_s)(r)`
(checked against autodiff: ``python energy_terms.py check``). ``python energy_terms.py L OUT.json
'[{"b": [0.5, 2, 8, 32]}, {"b": [], "nc": 3000}]'`` fits the lean flow plus these terms (energy
scales ``b`` in units of 1/(K_max - K_min), none: the lean basis alone; ``nc`` collocation
configurations) and reports the ESS/N of 4000 samples (seeds 1 and 2).
"""

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from pikflow.lattice._basis_smoothed import SmoothedPowers, _tamed_square
from pikflow.lattice._basis_spectral import site_sum


class SmoothedEnergies(SmoothedPowers):
    """The energy-energy terms of the module docstring, one per (smoothing scale, energy scale)."""

    kind = "smoothed_energies"

    def __init__(self, lattice, scales, energy_scales, *, precision=None, tame=None):
        super().__init__(lattice, scales, (4,), precision=precision, tame=tame)
        K = np.asarray(self.precision if self.precision is not None else lattice.khat2())
        Kr = K - K.min()
        self.energy_scales = tuple(float(b) for b in energy_scales)
        C = np.stack([np.exp(-2 * b * Kr) for b in self.energy_scales])
        self.C = jnp.asarray(C)
        axes = tuple(range(1, lattice.d + 1))
        c_real = np.real(np.fft.ifftn(C, axes=axes))
        ff_real = np.real(np.fft.ifftn(np.asarray(self.filters) ** 2, axes=axes))
        prod = c_real[None] * ff_real[:, None]
        self.H = jnp.asarray(np.real(np.fft.fftn(prod, axes=tuple(range(2, lattice.d + 2)))))
        self.pairs = [(s, b) for s in range(len(self.scales)) for b in range(len(self.energy_scales))]
        self.n = len(self.pairs)
        self.names = [f"E(psi_{self.scales[s]}, b={self.energy_scales[b]})" for s, b in self.pairs]

    def spec(self):
        return {"kind": self.kind}

    def _parts(self, field):
        psi = self._psi(field)
        q, q1, q2 = _tamed_square(psi, self._w(field.ndim))
        axes = tuple(range(1, field.ndim + 1))
        qf = jnp.fft.fftn(q, axes=axes)
        Cq = jnp.real(jnp.fft.ifftn(self.C[None] * qf[:, None], axes=tuple(a + 1 for a in axes)))
        return q, q1, q2, Cq

    def values(self, field):
        q, _, _, Cq = self._parts(field)
        return jnp.stack([0.5 * site_sum(q[s] * Cq[s, b], self.lattice.d) for s, b in self.pairs])

    def laplacians(self, field):
        _, q1, q2, Cq = self._parts(field)
        volume = float(np.prod(self.lattice.shape))
        power = jnp.abs(jnp.fft.fftn(q1, axes=tuple(range(1, field.ndim + 1)))) ** 2
        return jnp.stack(
            [
                self.h[s] * site_sum(q2[s] * Cq[s, b], self.lattice.d)
                + site_sum(self.H[s, b] * power[s], self.lattice.d) / volume
                for s, b in self.pairs
            ]
        )

    def columns(self, field, dS):
        _, q1, _, Cq = self._parts(field)
        sdS = self._psi(dS)
        drift = jnp.stack([site_sum(sdS[s] * q1[s] * Cq[s, b], self.lattice.d) for s, b in self.pairs])
        return self.laplacians(field) - drift

    def gradient(self, a, field):
        _, q1, _, Cq = self._parts(field)
        inner = [
            sum(a[j] * q1[s] * Cq[s, b] for j, (s2, b) in enumerate(self.pairs) if s2 == s)
            for s in range(len(self.scales))
        ]
        ft = jnp.fft.fftn(jnp.stack(inner), axes=tuple(range(1, field.ndim + 1)))
        return jnp.real(jnp.fft.ifftn(jnp.sum(self.filters * ft, axis=0)))


def check():
    """Gradient, Laplacians and columns against autodiff on a 6x6 lattice."""
    jax.config.update("jax_enable_x64", True)
    from pikflow.action._geometry import Lattice

    fam = SmoothedEnergies(Lattice((6, 6)), [0.05, 0.3], [0.0, 0.2, 1.0], tame=3.0)
    fam.widths = (1.5, 0.8)
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 6))
    a = jax.random.normal(jax.random.PRNGKey(1), (fam.n,))
    g = jax.grad(lambda y: jnp.dot(a, fam.values(y)))(x)
    print("gradient, max error", float(jnp.max(jnp.abs(g - fam.gradient(a, x)))))
    lap = [float(jnp.trace(jax.hessian(lambda y, j=j: fam.values(y)[j])(x).reshape(36, 36))) for j in range(fam.n)]
    print("Laplacians, max relative error", float(np.max(np.abs(np.asarray(fam.laplacians(x)) - lap) / np.abs(lap))))


def main(argv):
    import pikflow.lattice as pl
    from pikflow.lattice._basis import LatticeBasis
    from pikflow.lattice._fit_basis import LEAN_SCALE_LADDER, default_scales, preset_basis

    L, out, variants = int(argv[0]), argv[1], json.loads(argv[2])
    target = pl.LatticePath(pl.LatticeAction(pl.PHI4_DENSITY, [L, L]), {"m2": -2.0, "lam": 2.0})
    res = []
    for v in variants:

        def basis(path, base, v=v):
            lean = preset_basis("lean", path, base, tame=5.0)
            if not v["b"]:
                return lean
            K0 = np.asarray(base.precision)
            span = float(K0.max() - K0.min())
            scales = default_scales(K0, LEAN_SCALE_LADDER)
            fam = SmoothedEnergies(path.lattice, scales, [b / span for b in v["b"]], precision=K0, tame=5.0)
            return LatticeBasis([*lean.families, fam])

        t0 = time.perf_counter()
        extra = {"n_collocation": v["nc"]} if "nc" in v else {}
        flow = pl.fit_lattice(target, basis=basis, steps=3, seed=0, progress=False, **extra)
        setup = time.perf_counter() - t0
        ess = [float(flow.sample(4000, seed=s, keep_fields=False).ess) for s in (1, 2)]
        res.append({**v, "n_basis": flow.basis.n, "ess": ess, "setup": setup})
        print(json.dumps(res[-1]), flush=True)
        with open(out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    check() if sys.argv[1:] == ["check"] else main(sys.argv[1:])
