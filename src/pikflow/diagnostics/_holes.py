r"""The hole check (ESS/N seen from the target) and the reliability warnings of every run.

For importance weights :math:`w = e^{-\hat S_1}/q` with :math:`Z = E_q[w]`,

.. math::  \frac{E_q[w]^2}{E_q[w^2]} = \frac{E_q[w]}{E_p[w]},

so ESS/N can be estimated from either side. The usual estimate (flow samples) never sees
a region the flow misses: :math:`w` is huge there but no flow sample lands in it, and the
ESS, the IMH acceptance and the error bars all look excellent while the estimates are
biased. Reference samples of the target (exact, or HMC) pulled back through the flow
(:meth:`pikflow.Flow.log_density`) do land there: :func:`target_ess` is then far below
the flow-side ESS/N. A configuration where :math:`q = 0` gives ``target_ess = 0``.
"""

from __future__ import annotations

import numpy as np

from .._errors import SamplingError
from ._pareto import khat_warning

__all__ = ["FIX", "HOLE_ESS", "UNRELIABLE_ESS", "reliability_warnings", "target_ess"]

#: Below this ESS/N (flow side) or 100 effective samples, the estimates and errors are not trusted.
UNRELIABLE_ESS = 0.01
#: Below this target-side ESS/N, or this much below the flow-side ESS/N, the flow has a hole.
HOLE_ESS = 0.5
HOLE_GAP = 0.2
#: Deviations from exact values beyond this many standard errors are reported.
MAX_SIGMA = 4.0
#: The default suggestion of the hole and deviation warnings: the levers measured to work on the
#: double-well ladder of ``pikflow bench wells`` (docs/guide/sampling.md, "Measured limit").
#: Measured not to help there: a wider or p_t-scaled basis (``frequency_range="auto"``), residual
#: or missed-sample refinement, and SMC with PIK transport (biased by mode imbalance).
FIX = (
    "more RK4 steps help most: steps=100 ([flow] steps = 100) took the barrier-6 and -8 double wells from "
    "target ESS/N 0.18-0.28 to 0.97-0.99, and steps=200 the strongly tilted barrier-8 well from a folded map "
    "to 0.92; layers dense where the flow moves fast help too: schedule=2 (tau = t**2; [flow] schedule), "
    "which closed the hole of the reported barrier-4 well"
)


def target_ess(log_w_flow, log_w_reference) -> float:
    r"""ESS/N seen from the target: :math:`\bar w_q / \bar w_p` (module docstring), at most 1.

    ``log_w_flow``: :math:`-\hat S_1 - \log q` of the flow's own samples;
    ``log_w_reference``: the same of samples of the target, with :math:`\log q` from the
    flow run backwards. ``+inf`` in ``log_w_reference`` (:math:`q = 0` at a target
    sample: a hole) gives 0; ``nan`` (the flow could not be inverted there) is left out of
    the average. Non-finite flow weights count as zero weight.
    """
    lq = np.asarray(log_w_flow, dtype=float).ravel()
    lp = np.asarray(log_w_reference, dtype=float).ravel()
    lq = np.where(np.isfinite(lq), lq, -np.inf)
    if np.any(lp == np.inf):
        return 0.0
    lp = lp[~np.isnan(lp)]
    if lp.size == 0 or not np.any(np.isfinite(lq)):
        raise SamplingError("target_ess needs finite weights on both sides: the flow or its samples blew up")
    mean_p = np.logaddexp.reduce(lp) - np.log(lp.size)
    mean_q = np.logaddexp.reduce(lq) - np.log(lq.size)
    return float(min(1.0, np.exp(mean_q - mean_p)))


def reliability_warnings(
    ess: float,
    n: int,
    *,
    target_ess: float | None = None,
    deviations: dict[str, float] | None = None,
    fix: str | None = None,
    khat: float | None = None,
    largest: float | None = None,
) -> list[str]:
    r"""Warnings for estimates that are not to be trusted, each with what to change.

    - ESS/N below :data:`UNRELIABLE_ESS` or fewer than 100 effective samples: the IMH
      chain hardly moves and the errors understate the real error;
    - ``target_ess`` below :data:`HOLE_ESS`, or :data:`HOLE_GAP` below ``ess``: a hole, the
      estimates are biased whatever their error bars say;
    - ``deviations`` (name -> signed deviation from an exact value in units of the
      estimate's error) beyond :data:`MAX_SIGMA`;
    - ``khat`` (:func:`~pikflow.diagnostics.pareto_khat` of the weights) above
      :func:`~pikflow.diagnostics.khat_threshold`, with the largest weight over the mean (``largest``,
      :func:`~pikflow.diagnostics.largest_weight`) above :data:`~pikflow.diagnostics.LARGEST_WEIGHT`: a tail too
      heavy for the errors.

    ``fix`` is the suggestion appended to the hole and deviation warnings (default
    :data:`FIX`: more steps, which closed the measured deep wells, and a denser schedule
    early, which closed the reported one).
    """
    fix = fix or FIX
    out = []
    if not np.isfinite(ess) or ess < UNRELIABLE_ESS or ess * n < 100:
        out.append(
            f"ESS/N = {ess:.3g} ({ess * n:.0f} effective samples): the IMH chain hardly moves and its errors are "
            "not to be trusted; use more samples, or a better flow (steps, collocation, basis)"
        )
    if target_ess is not None and target_ess < ess - HOLE_GAP:
        out.append(
            f"the ESS/N seen from samples of the target is {target_ess:.3g} (from the flow's own samples "
            f"{ess:.3g}): the flow misses part of the target (a hole), so its estimates are biased; {fix}"
        )
    elif target_ess is not None and target_ess < HOLE_ESS:
        out.append(
            f"the ESS/N seen from samples of the target is {target_ess:.3g} (from the flow's own samples "
            f"{ess:.3g}): the flow covers the target poorly (a hole or heavy-tailed weights), so estimates and "
            f"errors may be off; {fix}"
        )
    bad = {k: v for k, v in (deviations or {}).items() if np.isfinite(v) and abs(v) > MAX_SIGMA}
    if bad:
        listed = ", ".join(f"{k} {v:+.1f} sigma" for k, v in bad.items())
        out.append(f"estimates disagree with the exact values beyond {MAX_SIGMA:g} sigma ({listed}); {fix}")
    return out + khat_warning(khat, n, largest)
