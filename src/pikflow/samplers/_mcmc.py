r"""MCMC moves that leave :math:`p_t \propto e^{-\hat S_t}` invariant, for SMC rejuvenation (BlackJAX kernels).

Each move is a BlackJAX kernel (:func:`blackjax.mcmc.mala.build_kernel`,
:func:`blackjax.mcmc.hmc.build_kernel`) applied to one particle, vmapped over particles
by the sampler. The step size is a per-replica number adapted between annealing steps
from the measured acceptance (:func:`adapt_step`): a kernel with a step size fixed for
the whole sweep leaves :math:`p_t` invariant whatever the size, so the adaptation never
biases the weights.

``"fhmc"`` is HMC with a Fourier-accelerated mass on a lattice (Davies et al., Phys. Rev. D 32,
2736 (1985)): the mass matrix is the circulant operator with eigenvalues
:math:`M(k) = \hat k^2 + \mu^2`, :math:`\hat k^2 = \sum_\mu 4\sin^2(k_\mu/2)`, the inverse
propagator of a free field of mass :math:`\mu`. For a free field of that mass every Fourier mode
then oscillates with the same frequency, so the long-wavelength modes (the magnetisation, domain
walls) move as far per trajectory as the short ones instead of :math:`O(1/L)` slower. Any positive
:math:`M` leaves :math:`p_t` invariant, so :math:`\mu` only changes the efficiency.

``fourier_mass="adaptive"`` measures the mass from the particles themselves before every sweep of
moves (:func:`measured_mass`): :math:`M(k) = V / \operatorname{Var}\tilde\phi(k)`, the inverse of the
current two-point function, so that for a Gaussian every mode has frequency 1 whatever its
correlation length, including the zero mode near a critical point, where :math:`\hat k^2 + \mu^2`
with a fixed :math:`\mu` leaves it :math:`O(\xi/\mu^{-1})` slower than the rest. The mass of a sweep
depends on the particles before it only, so each move still leaves :math:`p_t` invariant (an
adaptive SMC kernel, as the step size).
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from .. import _random
from .._errors import SamplingError
from ._cluster import swendsen_wang

#: ``mcmc`` choices and their target acceptance rates
TARGET_ACCEPTANCE = {"mala": 0.57, "hmc": 0.75, "fhmc": 0.75, "hmc+cluster": 0.75}

#: ``fourier_mass`` value for a mass measured from the particles (:func:`measured_mass`)
ADAPTIVE_MASS = "adaptive"
#: The smallest variance :func:`measured_mass` takes, relative to the free field's :math:`V/(\hat k^2 + 1)`
#: (so no mode's mass exceeds :math:`10^3(\hat k^2 + 1)`).
MASS_FLOOR = 1e-3


def check_fourier_mass(value):
    r"""``fourier_mass``: a positive real :math:`\mu^2` or :data:`ADAPTIVE_MASS`; anything else is refused."""
    if isinstance(value, str) and value == ADAPTIVE_MASS:
        return ADAPTIVE_MASS
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not 0 < value < float("inf"):
        raise SamplingError(f"fourier_mass must be a positive mu^2 or {ADAPTIVE_MASS!r}, got {value!r}")
    return float(value)


def fourier_mass(lattice_shape, mass2: float = 1.0):
    r"""The eigenvalues :math:`M(k) = \hat k^2 + \mu^2` of the Fourier-accelerated mass, on the
    half spectrum of :func:`jax.numpy.fft.rfftn` (shape ``lattice_shape`` with the last axis
    ``L // 2 + 1``)."""
    from ..action import Lattice

    if not mass2 > 0:
        raise SamplingError(f"fourier_mass (mu^2) must be positive, got {mass2!r}")
    lattice = Lattice(tuple(int(n) for n in lattice_shape))
    return jnp.asarray(mass2 + lattice.khat2()[..., : lattice.shape[-1] // 2 + 1])  # rfftn keeps k_d >= 0


def measured_mass(x, lattice_shape, log_weights=None):
    r"""The mass eigenvalues :math:`M(k) = V / \operatorname{Var}\tilde\phi(k)` measured from particles.

    ``x`` holds configurations on its first axis, then field components (if any), then the
    lattice; :math:`\tilde\phi = ` :func:`jax.numpy.fft.rfftn` over the lattice axes, so that
    :math:`\mathrm{E}|\tilde\phi(k)|^2 = V G(k)` and a free field of precision :math:`\hat k^2 + m^2` gives
    :math:`M(k) = \hat k^2 + m^2` (to the sampling error). The variance is taken about the particles'
    mean and averaged over the components; with ``log_weights`` (particles not resampled since their last
    reweighting) both are the weighted ones, of the current :math:`p_t`. The zero mode takes the variance of
    the norm :math:`|\Phi|` of its components, divided by what it is for a centred Gaussian (:math:`1 - 2/\pi` of
    :math:`\langle\Phi^2\rangle` for one component) and capped at :math:`\langle|\Phi|^2\rangle`: exact in the
    symmetric phase, and in the broken phase a few times the variance of one well (2.75 times where the wells
    sit one width from 0) rather than the square of the distance between the two, which would make its steps
    cross the barrier and fail. Every variance is at least :data:`MASS_FLOOR` times that of the free field of
    mass :math:`\hat k^2 + 1`: after a resampling that leaves one particle (or a few), the particles' own
    variances are rounding noise, whose mass (up to :math:`10^{40}`) would freeze the moves.
    """
    shape = tuple(int(n) for n in lattice_shape)
    d = len(shape)
    axes = tuple(range(-d, 0))
    volume = float(np.prod(shape))
    f = jnp.fft.rfftn(x, axes=axes)
    n = f.shape[0]
    w = jnp.full(n, 1.0 / n) if log_weights is None else jax.nn.softmax(log_weights)

    def mean(a):  # over the particles (the first axis)
        return jnp.tensordot(w, a, axes=1)

    comp_axes = tuple(range(f.ndim - d - 1))  # field components, once the particles are averaged
    var = jnp.mean(mean(jnp.abs(f - mean(f)) ** 2), axis=comp_axes)
    zero = f[(Ellipsis, *([0] * d))].real.reshape(n, -1)  # (particles, components)
    c = zero.shape[1]
    norm = jnp.sqrt(jnp.sum(zero**2, axis=1))
    # Var|Phi| / E|Phi|^2 of a centred Gaussian with c components: 1 - 2/pi for one
    gauss = 1.0 - 2.0 * np.exp(2.0 * (math.lgamma((c + 1) / 2) - math.lgamma(c / 2))) / c
    var0 = jnp.minimum(mean(norm**2), (mean(norm**2) - mean(norm) ** 2) / gauss) / c
    var = var.at[(0,) * d].set(var0)
    return volume / jnp.maximum(var, MASS_FLOOR * volume / fourier_mass(shape, 1.0))


def fourier_metric(lattice_shape, mass2: float = 1.0, *, eigen=None):
    r"""A BlackJAX :class:`~blackjax.mcmc.metrics.Metric` with the circulant mass :math:`M(k)` of
    :func:`fourier_mass` on the trailing ``len(lattice_shape)`` axes (leading axes, e.g. field
    components, are independent copies), or with the eigenvalues ``eigen`` on the half spectrum
    (e.g. :func:`measured_mass`).

    Momenta :math:`p = M^{1/2}\xi` with white noise :math:`\xi`; kinetic energy
    :math:`\tfrac12 p^T M^{-1} p`; both by one real FFT pair per call.
    """
    from blackjax.mcmc.metrics import Metric

    shape = tuple(int(n) for n in lattice_shape)
    axes = tuple(range(-len(shape), 0))
    M = fourier_mass(shape, mass2) if eigen is None else eigen
    sqrt_M = jnp.sqrt(M)

    def apply(eigen, x):
        return jnp.fft.irfftn(eigen * jnp.fft.rfftn(x, axes=axes), s=shape, axes=axes)

    def sample_momentum(key, position):
        return apply(sqrt_M, _random.normal(key, jnp.shape(position), jnp.result_type(position)))

    def kinetic_energy(momentum, position=None):
        return 0.5 * jnp.sum(momentum * apply(1.0 / M, momentum))

    def unsupported(*_args, **_kwargs):
        raise SamplingError("the Fourier-accelerated metric serves HMC only (no NUTS, no scaling)")

    return Metric(sample_momentum, kinetic_energy, unsupported, unsupported)


def make_move(
    kind: str,
    log_density_at,
    *,
    size: int,
    leapfrog_steps: int = 10,
    lattice_shape=(),
    mass2: float = 1.0,
    hopping: float | None = None,
):
    r"""A function ``(key, x, t, step_size, n_moves, mass=None, observe=None) -> (x', mean acceptance, v)`` for one
    configuration; ``v`` is the mean of ``observe(y, log_density_at(y, t))`` over the configurations ``y`` after
    each move (the value is the kernel's own; ``None`` without ``observe``).

    ``log_density_at(x, t)`` is :math:`\log\gamma_t(x)`; ``kind`` is ``"mala"``, ``"hmc"``
    (``leapfrog_steps`` steps per trajectory, unit mass; BlackJAX's kernel with the leapfrog of
    :func:`pikflow.baselines._leapfrog.trajectory_integrator`, which evaluates :math:`\log\gamma_t` once
    per trajectory instead of once per leapfrog step) or ``"fhmc"`` (HMC with the
    Fourier-accelerated mass :math:`\hat k^2 + \mu^2`, ``mu^2 = mass2``, on the trailing
    ``lattice_shape`` axes); ``size`` the number of real degrees of freedom of a configuration.
    With ``mass2 = "adaptive"`` the move takes the mass eigenvalues ``mass`` (:func:`measured_mass`)
    as its last argument. ``"hmc+cluster"``: each unit-mass HMC trajectory followed by a Swendsen-Wang sweep of
    the signs (:func:`pikflow.samplers._cluster.swendsen_wang`) with the action's hopping coupling ``hopping``
    (:func:`pikflow.action.hopping_coupling`), for one-component lattice configurations.
    """
    import blackjax  # here, not at import: importing blackjax computes arrays (starts the JAX backend)

    if kind not in TARGET_ACCEPTANCE:
        raise SamplingError(f"mcmc must be one of {tuple(TARGET_ACCEPTANCE)}, got {kind!r}")
    if kind == "mala":
        kernel, init = blackjax.mcmc.mala.build_kernel(), blackjax.mcmc.mala.init
    else:
        from ..baselines._leapfrog import trajectory_integrator

        # one integration step of ``leapfrog_steps`` leapfrogs, the value computed once (as pikflow's HMC)
        kernel = blackjax.mcmc.hmc.build_kernel(integrator=trajectory_integrator(int(leapfrog_steps)))
        init = blackjax.mcmc.hmc.init
        if kind == "hmc+cluster" and (hopping is None or not lattice_shape):
            raise SamplingError(
                "mcmc='hmc+cluster' needs a one-component lattice action whose only coupling between sites is "
                "-J phi_x phi_(x+mu) with J > 0 and whose site terms are even in phi (e.g. the phi^4 density)"
            )
        if kind == "fhmc":
            if not lattice_shape:
                raise SamplingError("mcmc='fhmc' (Fourier-accelerated HMC) needs a lattice problem")
            # ``mass2`` was checked by :func:`check_fourier_mass` (``smc``); a bad mu^2 is refused by fourier_mass
            fixed = None if mass2 == ADAPTIVE_MASS else fourier_metric(lattice_shape, mass2)
        else:
            fixed = jnp.ones(size)

    def move(key, x, t, step_size, n_moves: int, mass=None, observe=None):
        logdensity = lambda y: log_density_at(y, t)  # noqa: E731
        state = init(x, logdensity)
        if kind != "mala":
            if fixed is None and mass is None:
                raise SamplingError("an adaptive Fourier mass needs the mass measured from the particles")
            inverse_mass = fixed if fixed is not None else fourier_metric(lattice_shape, eigen=mass)

        seen = observe if observe is not None else (lambda y, _: jnp.zeros(0))

        def one(carry, k):
            state, acc, total = carry
            if kind == "hmc+cluster":
                k, k_sweep = jax.random.split(k)
            if kind == "mala":
                state, info = kernel(k, state, logdensity, step_size)
            else:
                state, info = kernel(k, state, logdensity, step_size, inverse_mass, 1)
            if kind == "hmc+cluster":  # the signs of whole clusters, then the state at the new position
                flipped = swendsen_wang(k_sweep, state.position.reshape(lattice_shape), hopping)
                state = init(flipped.reshape(state.position.shape), logdensity)
            return (state, acc + info.acceptance_rate, total + seen(state.position, state.logdensity)), None

        shape = jax.eval_shape(seen, x, state.logdensity)
        start = (state, 0.0, jnp.zeros(shape.shape, shape.dtype))
        (state, acc, total), _ = jax.lax.scan(one, start, jax.random.split(key, n_moves))
        return state.position, acc / n_moves, (total / n_moves if observe is not None else None)

    return move


def adapt_step(step_size, acceptance, kind: str):
    r"""The next step size: :math:`\epsilon\,\exp(2(a - a^*))`, clipped to a factor 2 per step."""
    factor = jnp.clip(jnp.exp(2.0 * (acceptance - TARGET_ACCEPTANCE[kind])), 0.5, 2.0)
    return jnp.where(jnp.isfinite(acceptance), step_size * factor, step_size * 0.5)


__all__ = [
    "ADAPTIVE_MASS", "TARGET_ACCEPTANCE", "adapt_step", "check_fourier_mass", "fourier_mass", "fourier_metric",
    "make_move", "measured_mass",
]  # fmt: skip
