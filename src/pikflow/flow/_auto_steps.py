r"""``solve(steps="auto")``: as many RK4 steps as the path needs, found by the map's own coverage.

Deep and tilted double wells fold the RK4 map when its steps are too long: mass that must
cross the barrier late along the path moves with a velocity so large near the barrier top
that one step of the map (eq. 11) is no longer monotone, and the folded part of the base
is lost (a hole). Measured on ``pikflow bench wells`` (:math:`a(\phi^2-1)^2 + h\phi` from
:math:`\tfrac12\phi^2`): 25 steps sample barriers up to 4 with ESS/N :math:`\ge 0.997`, but
barriers 6 and 8 only with 0.18-0.28 (the map is monotone on 0.68 of the base); 100 steps
give 0.99 and 0.97, and the strong tilt :math:`(a, h) = (8, 2)` needs 200 (0.92).

A criterion from the exact one-component velocity (the largest :math:`|\partial_\phi v_t|`
over the bulk of :math:`p_t`) did not predict this (it ranked a failing flow below a working
one), so ``"auto"`` asks the flow itself: for one field component it solves with
:data:`AUTO_STEPS` in turn and stops at the first whose tabulated RK4 map is finite and
monotone on at least :data:`COVERAGE_GOAL` of the base probability
(:attr:`pikflow.flow.TableInfo.coverage`). A path that needs no more than 25 steps (the
paper's, every shallow well) is solved once, as before, and its table is the one sampling
uses. Several components: :data:`AUTO_STEPS`\ ``[0]``.
"""

from __future__ import annotations

import warnings

from .._errors import SamplingError

#: The step counts ``steps="auto"`` tries, in order.
AUTO_STEPS = (25, 100, 200)
#: Fraction of the base probability on which the RK4 map must be finite and monotone.
COVERAGE_GOAL = 0.99


def coverage(flow) -> float:
    """Fraction of the base probability on which ``flow``'s RK4 map is finite and monotone (one component)."""
    try:
        return flow.table()[1].coverage
    except SamplingError:  # below one half: the table refuses it
        return 0.0


def solve_auto_steps(solve, path, progress: bool, **kwargs):
    """``solve(path, steps=s, ...)`` for ``s`` in :data:`AUTO_STEPS` until the coverage reaches the goal.

    Returns the first flow that reaches it, else the one with the largest coverage; its
    ``settings["auto_steps"]`` records every attempt ``{steps, coverage, solve_seconds}``.
    """
    if path.n_fields != 1:
        flow = solve(path, steps=AUTO_STEPS[0], progress=progress, **kwargs)
        flow.settings["auto_steps"] = {"tried": [{"steps": AUTO_STEPS[0]}], "reason": "several components"}
        return flow
    tried, best = [], None
    for i, steps in enumerate(AUTO_STEPS):
        with warnings.catch_warnings():
            if i:  # a retry overwrites the checkpoint of the shorter solve: expected, not worth a warning
                warnings.filterwarnings("ignore", message=".*checkpoint.*")
            flow = solve(path, steps=steps, progress=progress, **kwargs)
        cov = coverage(flow)
        tried.append({"steps": steps, "coverage": cov, "solve_seconds": flow.solve_seconds})
        if best is None or cov > best[0]:
            best = (cov, flow)
        if cov >= COVERAGE_GOAL:
            break
        if progress and i + 1 < len(AUTO_STEPS):
            print(
                f"  steps='auto': the RK4 map of {steps} steps is monotone on only {cov:.3g} of the base; "
                f"solving again with {AUTO_STEPS[i + 1]} steps"
            )
    flow = best[1]
    flow.settings["auto_steps"] = {"tried": tried, "goal": COVERAGE_GOAL}
    return flow


__all__ = ["AUTO_STEPS", "COVERAGE_GOAL", "coverage", "solve_auto_steps"]
