r"""The reports of a refinement: per layer and round (:class:`LayerRound`), per round, and the whole run."""

from __future__ import annotations

import dataclasses

from ..flow import Flow
from ._residual import (
    LayerResidual,
)

#: statuses of a layer in one round
STATUSES = ("accepted", "rejected", "converged", "stalled", "skipped")


# ---------------------------------------------------------------------------------- reports
@dataclasses.dataclass(frozen=True)
class LayerRound:
    """What one round did to one layer.

    ``status`` is ``"accepted"`` (correction kept), ``"rejected"`` (it would have raised
    the residual: discarded), ``"converged"`` (already under tolerance), ``"stalled"``
    (given up after repeated rejections) or ``"skipped"`` (not selected for refinement).
    ``before`` and ``after`` summarise the residual on the same points; ``after`` is the
    residual of the correction that was tried (also when rejected).
    """

    index: int
    t: float
    status: str
    before: LayerResidual
    after: LayerResidual | None = None
    n_centres: int = 0
    sigma: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict of this report."""
        return {
            "index": self.index,
            "t": self.t,
            "status": self.status,
            "before": _brief(self.before),
            "after": None if self.after is None else _brief(self.after),
            "n_centres": self.n_centres,
            "sigma": self.sigma,
        }


def _brief(r: LayerResidual) -> dict:
    return {"rms": r.rms, "max": r.max, "tail_max": r.tail_max, "worst_phi": list(r.worst_phi)}


@dataclasses.dataclass(frozen=True)
class RefinementRound:
    """One round over all layers: per-layer results and the ESS/N before and after."""

    round: int
    layers: list[LayerRound]
    ess_before: float | None
    ess_after: float | None
    seconds: float

    def count(self, status: str) -> int:
        """Number of layers with this status."""
        return sum(lr.status == status for lr in self.layers)

    @property
    def max_before(self) -> float:
        """Largest layer residual (max over points) before the round."""
        return max(lr.before.max for lr in self.layers)

    @property
    def max_after(self) -> float:
        """Largest layer residual after the round (rejected corrections do not count)."""
        return max(lr.after.max if lr.status == "accepted" else lr.before.max for lr in self.layers)

    def to_dict(self) -> dict:
        """JSON-ready dict of this report."""
        return {
            "round": self.round,
            "ess_before": self.ess_before,
            "ess_after": self.ess_after,
            "max_residual_before": self.max_before,
            "max_residual_after": self.max_after,
            **{f"n_{s}": self.count(s) for s in STATUSES},
            "seconds": self.seconds,
            "layers": [lr.to_dict() for lr in self.layers if lr.status != "skipped"],
        }


@dataclasses.dataclass
class Refinement:
    """The result of :func:`refine`: the refined flow and every round's report.

    Attributes
    ----------
    flow
        The refined :class:`~pikflow.Flow` (kernels :class:`CorrectedKernel`; the input
        flow if nothing was accepted).
    rounds
        One :class:`RefinementRound` per round run.
    initial, final
        Per-layer residual summaries (:class:`LayerResidual`) before the first and after
        the last round, on the same points.
    tol
        The tolerance on each layer's maximal residual.
    """

    flow: Flow
    rounds: list[RefinementRound]
    initial: list[LayerResidual]
    final: list[LayerResidual]
    tol: float
    settings: dict

    @property
    def converged(self) -> bool:
        """Whether every refined layer ended under the tolerance."""
        return all(r.max <= self.tol for r in self.final)

    @property
    def ess_before(self) -> float | None:
        """ESS/N before the first round (None if not measured)."""
        return self.rounds[0].ess_before if self.rounds else None

    @property
    def ess_after(self) -> float | None:
        """ESS/N after the last round (None if not measured)."""
        return self.rounds[-1].ess_after if self.rounds else None

    def to_dict(self) -> dict:
        """JSON-ready summary with every round's residuals and ESS (the ``refinement`` entry of results.json)."""
        return {
            "tol": self.tol,
            "settings": self.settings,
            "converged": self.converged,
            "ess_before": self.ess_before,
            "ess_after": self.ess_after,
            "max_residual_before": max(r.max for r in self.initial),
            "max_residual_after": max(r.max for r in self.final),
            "rounds": [r.to_dict() for r in self.rounds],
            "initial": [r.to_dict() for r in self.initial],
            "final": [r.to_dict() for r in self.final],
        }

    def __repr__(self) -> str:
        acc = sum(r.count("accepted") for r in self.rounds)
        rej = sum(r.count("rejected") for r in self.rounds)
        return (
            f"Refinement(rounds={len(self.rounds)}, accepted={acc}, rejected={rej}, "
            f"max residual {max(r.max for r in self.initial):.2e} -> {max(r.max for r in self.final):.2e}, "
            f"converged={self.converged})"
        )
