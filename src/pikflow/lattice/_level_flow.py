r"""A PIK flow per multilevel level: from the lifted coarse base to the fine target (paper eq. 34).

One level of :func:`~pikflow.lattice.multilevel` has an exactly sampled base on the fine lattice,
the lifted coarse field (:class:`~pikflow.lattice.Lift`), with the analytic action

.. math::  \hat S_0(\Psi) = \hat S_{\rm c}(P\Psi/a) + \hat S_{\rm lift}(\Psi),

(:meth:`Lift.extra`: the conditional Gaussian's quadratic form, or the white noise's) and
:math:`\log Z_0 = \log Z_{\rm c} +` :meth:`Lift.log_z0_offset`. :class:`LevelPath` is the path
:math:`\hat S_t = (1-t)\hat S_0 + t\hat S_1` to the fine target :math:`\hat S_1`, with what the
layer solve of eq. 34 needs (:math:`\hat S_t`, :math:`\partial\hat S_t`, :math:`d\hat S_t/dt =
\hat S_1 - \hat S_0`); :class:`LevelBase` samples the lift (coarse fields drawn from a pool) with its
log-density. :func:`solve_level` solves the layers with :func:`~pikflow.flow.solve_lattice`, the
collocation configurations drawn from the lift and pushed along as for any lattice flow. The flow's
log-density :math:`\log q_1 = \log q_0 + \int\Delta\Omega_t\,dt` keeps the weights
:math:`\log w = -\hat S_1 - \log q_1` exact whatever the basis: a poor basis costs ESS, never bias.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import SamplingError
from ..action import LatticePath
from ..flow import register_solve_path, solve_lattice
from ._levels import Lift, weight_diagnostics


class LevelPath:
    r""":math:`\hat S_t = (1-t)\hat S_0 + t\hat S_1`: lifted coarse base to fine target, with the pieces eq. 34 needs.

    ``coarse`` and ``fine`` are :class:`LatticePath` objects whose value at ``t = 1`` is the coarse
    and the fine target; ``lift`` maps :math:`L^d` to :math:`(2L)^d`. The lattice, field shape,
    action and symmetry are the fine path's (the basis is that of the fine lattice).
    """

    def __init__(self, coarse: LatticePath, fine: LatticePath, lift: Lift):
        if tuple(fine.lattice.shape) != tuple(lift.fine_shape) or tuple(2 * s for s in coarse.lattice.shape) != tuple(
            fine.lattice.shape
        ):
            raise SamplingError(
                f"a level maps L^d to (2L)^d: coarse {tuple(coarse.lattice.shape)}, fine "
                f"{tuple(fine.lattice.shape)}, lift {tuple(lift.fine_shape)}"
            )
        self.coarse, self.fine, self.lift = coarse, fine, lift

    @property
    def lattice(self):
        """The fine lattice."""
        return self.fine.lattice

    @property
    def field_shape(self):
        """The shape of one fine configuration."""
        return self.fine.field_shape

    @property
    def action(self):
        """The fine target's :class:`LatticeAction`."""
        return self.fine.action

    @property
    def d(self) -> int:
        """The number of lattice dimensions."""
        return self.fine.d

    def symmetry(self):
        """The fine target's symmetry (the basis is translation invariant; the lift base only under 2-shifts)."""
        return self.fine.symmetry()

    def base_action(self, psi):
        r""":math:`\hat S_0(\Psi)` of one configuration: the coarse action at :math:`P\Psi/a` plus the lift's term."""
        return self.coarse.value(self.lift.coarse(psi), 1.0) + self.lift.extra(psi)

    def value(self, field, time):
        r""":math:`\hat S_t` of one configuration."""
        return (1 - time) * self.base_action(field) + time * self.fine.value(field, 1.0)

    def dsdt(self, field, time):
        r""":math:`d\hat S_t/dt = \hat S_1 - \hat S_0`."""
        return self.fine.value(field, 1.0) - self.base_action(field)

    def gradient(self, field, time):
        r""":math:`\partial\hat S_t`: the fine stencil plus the autodiff gradient of :math:`\hat S_0`."""
        return (1 - time) * jax.grad(self.base_action)(field) + time * self.fine.gradient(field, 1.0)

    def traced_parameters(self):
        """``(params, key)`` as :meth:`LatticePath.traced_parameters` (the lift's arrays are parameters)."""
        pf, kf = self.fine.traced_parameters()
        pc, kc = self.coarse.traced_parameters()
        lift = self.lift
        arrays = {"scale": jnp.asarray(lift.scale), "sigma": None if lift.sigma is None else jnp.asarray(lift.sigma)}
        arrays["precision"], arrays["symbol"] = lift.precision, lift.symbol
        return {"fine": pf, "coarse": pc, "lift": arrays}, ("level", kf, kc, lift.noise, tuple(lift.fine_shape))

    def with_parameters(self, params) -> LevelPath:
        """A copy with the numbers of :meth:`traced_parameters` replaced (traceable)."""
        a = params["lift"]
        lift = Lift(self.lift.noise, self.lift.fine_shape, a["scale"], a["sigma"], a["precision"], a["symbol"])
        clone = object.__new__(LevelPath)
        clone.coarse = self.coarse.with_parameters(params["coarse"])
        clone.fine = self.fine.with_parameters(params["fine"])
        clone.lift = lift
        return clone

    def __repr__(self) -> str:
        return f"LevelPath({self.coarse.lattice.shape} -> {self.fine.lattice.shape}, {self.lift.noise} lift)"


class LevelBase:
    r"""The lift of coarse fields drawn from ``pool`` as a base: ``sample(key, n)`` and ``log_prob``.

    ``pool`` has shape ``(m, *coarse)`` or ``(replicas, m, *coarse)`` (``sample(key, n, r)`` then draws
    from replica ``r``). The pool is taken to follow :math:`e^{-\hat S_{\rm c}}/Z_{\rm c}` with
    ``log_z_coarse`` :math:`= \log Z_{\rm c}` (0: unnormalised, then :math:`\log w` is shifted by a
    constant and every ratio it gives is :math:`Z_1/Z_0`).
    """

    def __init__(self, path: LevelPath, pool, log_z_coarse: float = 0.0):
        pool = jnp.asarray(pool)
        coarse = tuple(path.coarse.lattice.shape)
        if pool.shape[-len(coarse) :] != coarse or pool.ndim not in (len(coarse) + 1, len(coarse) + 2):
            raise SamplingError(f"the coarse pool must have shape (m, {coarse}) or (replicas, m, {coarse})")
        self.path, self.pool = path, pool
        self.log_z0 = float(log_z_coarse) + path.lift.log_z0_offset()

    def log_prob(self, psi):
        """Log-density of configurations ``(..., *fine)``."""
        flat = psi.reshape((-1, *self.path.field_shape))
        return (-jax.vmap(self.path.base_action)(flat) - self.log_z0).reshape(psi.shape[: psi.ndim - self.path.d])

    def draw(self, key, phi):
        """Lifted samples of the coarse fields ``phi`` and their log-density."""
        psi = self.path.lift.lift(key, phi)
        return psi, -jax.vmap(self.path.base_action)(psi) - self.log_z0

    def sample(self, key, n: int, r=None):
        """``n`` lifted samples (coarse fields drawn uniformly from the pool, of replica ``r``) and log-densities."""
        pool = self.pool if r is None or self.pool.ndim == self.path.d + 1 else self.pool[r]
        if pool.ndim == self.path.d + 2:
            pool = pool.reshape((-1, *pool.shape[2:]))
        k1, k2 = jax.random.split(key)
        idx = jax.random.randint(k1, (n,), 0, pool.shape[0])
        return self.draw(k2, pool[idx])


def solve_level(path: LevelPath, pool, basis=None, *, log_z_coarse: float = 0.0, basis_options=None, **options):
    """The :class:`LatticeFlow` of the level (:func:`solve_lattice` with the :class:`LevelBase` of ``pool``).

    ``basis`` default: :func:`~pikflow.lattice._basis_block.level_basis`, the default lattice basis of the
    fine lattice plus the block-mean and block-fluctuation terms (:class:`BlockTerms`); ``basis_options`` its
    keywords (e.g. ``{"coarse": {"fourier": False}}`` adds the coarse lattice's basis on the block means).
    """
    from ._basis_block import level_basis

    if basis is None:
        basis = level_basis(path.lattice, symmetry=path.symmetry(), **(basis_options or {}))
    options.setdefault("desc", "solving level layers")
    return solve_lattice(path, basis, base=LevelBase(path, pool, log_z_coarse), **options)


def level_log_weights(base: LevelBase, phi, key, per: int = 2, flow=None, batch: int = 500):
    r""":math:`\log w = -\hat S_1(x) - \log q(x)` of ``per`` lift samples per coarse field, shape ``(m, per)``.

    ``flow=None``: the lift alone; else the lift pushed through the :func:`solve_level` flow (the same
    draws for the same ``key``). ``phi`` has shape ``(m, *coarse)``; :func:`weight_diagnostics` splits
    the variance into the noise (within) and coarse (between) parts.
    """
    phi = jnp.repeat(jnp.asarray(phi), per, axis=0)
    S1 = jax.jit(jax.vmap(lambda x: base.path.fine.value(x, 1.0)))
    draw = jax.jit(base.draw)
    out = []
    for i in range(0, phi.shape[0], batch):
        x, lq = draw(jax.random.fold_in(key, i), phi[i : i + batch])
        if flow is not None:
            x, lq = flow.push(x, lq)
        out.append(np.asarray(-S1(x) - lq))
    return np.concatenate(out).reshape(-1, per)


def level_checks(base: LevelBase, phi, key, reference=None, flow=None, per: int = 2, log_w=None) -> dict:
    r"""IMH acceptance and hole check of a level's proposal: the lift, or the lift pushed through ``flow``.

    The proposal's weights :math:`\log w = -\hat S_1 - \log q` on ``per`` draws per coarse field of ``phi``
    (:func:`level_log_weights`) give ``imh_acceptance`` (:func:`pikflow.diagnostics.imh_chain` over them). With
    ``reference`` configurations of the fine target (e.g. HMC on that level), :math:`\log q` at them (the
    lift's density :meth:`LevelBase.log_prob`, or the flow run backwards, :meth:`LatticeFlow.log_density`) gives
    ``target_ess`` (:func:`pikflow.diagnostics.target_ess`, ESS/N seen from the target: far below ``ess``, the
    proposal has a hole). Both take the coarse marginal as :math:`e^{-\hat S_{\rm c}}/Z_{\rm c}`, so they check
    the level, not the levels below it; the constants of :math:`\log q` cancel. ``log_w``: those weights if
    already drawn (:func:`level_log_weights` of ``phi``, shape ``(m, per)``), so a flow is not pushed twice.
    """
    from ..diagnostics import imh_chain, target_ess

    k_draw, k_imh = jax.random.split(key)
    lw = (level_log_weights(base, phi, k_draw, per, flow) if log_w is None else np.asarray(log_w)).ravel()
    finite = np.where(np.isfinite(lw), lw, -np.inf)
    out = {"ess": weight_diagnostics(lw.reshape(-1, per))["ess"], "imh_acceptance": imh_chain(k_imh, finite).acceptance}
    if reference is not None:
        x = jnp.asarray(reference, dtype=float).reshape((-1, *base.path.field_shape))
        S1 = jax.jit(jax.vmap(lambda y: base.path.fine.value(y, 1.0)))
        lq = flow.log_density(x) if flow is not None else np.asarray(base.log_prob(x))
        out["target_ess"] = float(target_ess(finite, -np.asarray(S1(x)) - lq))
    return out


def level_diagnostics(flow, phi, key, per: int = 2, flowed=None) -> dict:
    """ESS/N and the split ``Var log w = within + between`` of the lift alone and of the flowed lift (same draws;
    ``flowed``: the flowed lift's :func:`level_log_weights` for ``key`` if already computed)."""
    if flowed is None:
        flowed = level_log_weights(flow.base, phi, key, per, flow)
    return {"lift": weight_diagnostics(level_log_weights(flow.base, phi, key, per)), "flow": weight_diagnostics(flowed)}


register_solve_path(
    LevelPath, "multilevel LevelPath", lambda path: path.fine, "a LevelPath needs its LevelBase (solve_level passes it)"
)

__all__ = ["LevelBase", "LevelPath", "level_checks", "level_diagnostics", "level_log_weights", "solve_level"]
