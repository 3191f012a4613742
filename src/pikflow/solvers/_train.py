r"""Kernels trained by gradient descent (Optax Adam), as in the paper (sec. IV A 1, Appendix A).

The loss is the mean squared residual of eq. 20 with :math:`\chi = 0`,

.. math::
    \mathcal L = \big\langle r_\chi(\phi)^2 \big\rangle_{\text{batch}},\qquad
    r_\chi = \frac{d\hat S_t}{dt}\Big|^{\phi}_{\chi} - \mathcal L_t v\Big|^{\phi}_{\chi}
    \quad(\text{eq. 27}),

minimised over every parameter of the kernel (coefficients *and* frequencies of eq. 25, or
the weights of an MLP). Appendix A: 25 frequencies, Adam with learning rate :math:`10^{-2}`
for 600 epochs on the first two layers, then a warm start from the previous layer with
learning rate :math:`10^{-3}`, at most 600 epochs and early stopping; batches of 512.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._errors import SolveError
from ._direct import AbstractKernelSolver
from ._models import MLPKernel, SineKernel

MODELS = ("sine", "mlp")


def _mse_fn(equation, static, t):
    def loss(params, pts):
        model = eqx.combine(params, static)
        r = equation.residual(model, model.divergence, pts, t)
        return jnp.mean(r**2)

    return loss


class AdamSolver(AbstractKernelSolver):
    r"""Train each layer's kernel with Adam (Optax) on the squared residual of eq. 20 (:math:`\chi = 0`).

    Parameters
    ----------
    model
        ``"sine"``: the paper's :class:`SineKernel` (eq. 25, learnable frequencies);
        ``"mlp"``: :class:`MLPKernel`. Both are odd by construction when the path is
        :math:`Z_2` symmetric.
    n_frequencies, max_frequency
        Sine model: number of frequencies (Appendix A: 25) and the largest initial one
        (initial :math:`\omega_j = j\,\omega_{\max}/n`).
    width, depth
        MLP model: hidden width and number of hidden layers.
    learning_rate, epochs
        The first ``first_layers`` layers: Adam learning rate and epochs (Appendix A: 1e-2, 600).
    warm_learning_rate, warm_epochs, patience
        Later layers start from the previous layer's kernel: learning rate (1e-3), at most
        ``warm_epochs`` epochs (600), stopped early when the loss over all collocation
        points has not improved for ``patience`` epochs. The best epoch is kept.
    batch_size
        Minibatch size (512); one epoch is one pass over the shuffled collocation points.
    first_layers
        Layers trained with ``learning_rate`` for ``epochs`` (Appendix A: the first two);
        layer 0 starts from a fresh model, every later layer from its predecessor.
    seed
        Seed of the model initialisation.
    """

    kind: ClassVar[str] = "adam"
    model: str = "sine"
    n_frequencies: int = 25
    max_frequency: float = 6.0
    width: int = 16
    depth: int = 2
    learning_rate: float = 1e-2
    epochs: int = 600
    warm_learning_rate: float = 1e-3
    warm_epochs: int = 600
    patience: int = 50
    batch_size: int = 512
    first_layers: int = 2
    seed: int = 0

    def __check_init__(self):
        if self.model not in MODELS:
            raise SolveError(f"adam model must be one of {MODELS}, got {self.model!r}")
        for name in ("n_frequencies", "width", "depth", "epochs", "warm_epochs", "patience", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise SolveError(f"adam {name} must be a positive integer, got {v!r}")
        for name in ("learning_rate", "warm_learning_rate", "max_frequency"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise SolveError(f"adam {name} must be a positive number, got {v!r}")
        if isinstance(self.first_layers, bool) or not isinstance(self.first_layers, (int, np.integer)):
            raise SolveError(f"adam first_layers must be an integer >= 1, got {self.first_layers!r}")
        if self.first_layers < 1:
            raise SolveError(f"adam first_layers must be an integer >= 1, got {self.first_layers!r}")

    def initial(self, equation, key=None):
        n_fields, odd = equation.path.n_fields, bool(equation.symmetric)
        k = jax.random.PRNGKey(self.seed)
        if self.model == "sine":
            return SineKernel.init(n_fields, self.n_frequencies, max_frequency=self.max_frequency, odd=odd, key=k)
        return MLPKernel.init(n_fields, self.width, self.depth, odd=odd, key=k)

    def fit(self, equation, points, t, init, first, key):
        lr, max_epochs = (self.learning_rate, self.epochs) if first else (self.warm_learning_rate, self.warm_epochs)
        patience = max_epochs if first else self.patience
        params, static = eqx.partition(init, eqx.is_inexact_array)
        loss_fn = _mse_fn(equation, static, t)
        grad_fn = jax.value_and_grad(loss_fn)
        opt = optax.adam(lr)
        m = points.shape[0]
        bs = min(self.batch_size, m)
        nb = max(1, m // bs)

        def epoch(params, opt_state, key):
            idx = jax.random.permutation(key, m)[: nb * bs].reshape(nb, bs)

            def step(carry, i):
                p, s = carry
                _, g = grad_fn(p, points[i])
                upd, s = opt.update(g, s, p)
                return (optax.apply_updates(p, upd), s), None

            (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), idx)
            return params, opt_state

        def cond(c):
            n, since = c[4], c[5]
            return (n < max_epochs) & (since < patience)

        def body(c):
            p, s, best_p, best_l, n, since, k = c
            k, sub = jax.random.split(k)
            p, s = epoch(p, s, sub)
            loss = loss_fn(p, points)
            better = loss < best_l
            best_p = jax.tree.map(lambda a, b: jnp.where(better, a, b), p, best_p)
            return p, s, best_p, jnp.where(better, loss, best_l), n + 1, jnp.where(better, 0, since + 1), k

        l0 = loss_fn(params, points)
        init_c = (params, opt.init(params), params, l0, jnp.asarray(0), jnp.asarray(0), key)
        _, _, best, best_loss, n, _, _ = jax.lax.while_loop(cond, body, init_c)
        model = eqx.combine(best, static)
        r = equation.residual(model, model.divergence, points, t)
        return model, r, dict(loss=best_loss, epochs=n)

    def default_collocation(self):
        """Appendix A: the loss is over samples of :math:`p_t` only: 1024 pushed samples, no tail points."""
        from ._collocation import Collocation

        return Collocation(n_samples=1024, n_tail=0)

    def spec(self):
        keep = ["model", "learning_rate", "epochs", "warm_learning_rate", "warm_epochs", "patience", "batch_size"]
        keep += ["first_layers", "seed"] + (["n_frequencies", "max_frequency"] if self.model == "sine" else [])
        keep += ["width", "depth"] if self.model == "mlp" else []
        return {"kind": self.kind, **{k: getattr(self, k) for k in keep}}


__all__ = ["MODELS", "AdamSolver"]
