"""``solve(steps="auto")``: the step count is raised until the RK4 map covers the base (pikflow.flow._auto_steps)."""

import dataclasses

import pytest

import pikflow as pf
from pikflow.flow import _auto_steps
from pikflow.flow._auto_steps import AUTO_STEPS, COVERAGE_GOAL, solve_auto_steps


@dataclasses.dataclass
class _FakeFlow:
    steps: int
    cover: float
    solve_seconds: float = 0.0
    settings: dict = dataclasses.field(default_factory=dict)


@pytest.fixture
def fake(monkeypatch):
    """A solve whose flows have the given coverage per step count (the control flow alone)."""
    monkeypatch.setattr(_auto_steps, "coverage", lambda flow: flow.cover)
    calls = []

    def make(table):
        def solve(path, steps, progress, **kw):
            calls.append(steps)
            return _FakeFlow(steps, table[steps])

        return solve

    return make, calls


class _OnePath:
    n_fields = 1


@pytest.mark.parametrize(
    "table, used, solved",
    [
        ({25: 1.0, 100: 1.0, 200: 1.0}, 25, [25]),  # a shallow path: solved once
        ({25: 0.68, 100: 0.995, 200: 1.0}, 100, [25, 100]),  # barrier 6: 100 steps reach the goal
        ({25: 0.3, 100: 0.9, 200: 0.97}, 200, [25, 100, 200]),  # none reaches it: the best is kept
        ({25: 0.3, 100: 0.98, 200: 0.95}, 100, [25, 100, 200]),
    ],
)
def test_auto_steps_stops_at_the_first_covering_flow(fake, table, used, solved):
    make, calls = fake
    flow = solve_auto_steps(make(table), _OnePath(), False)
    assert flow.steps == used and calls == solved
    assert [a["steps"] for a in flow.settings["auto_steps"]["tried"]] == solved
    assert flow.settings["auto_steps"]["goal"] == COVERAGE_GOAL and AUTO_STEPS == (25, 100, 200)


def test_paper_path_keeps_25_steps():
    """The paper's path is covered by 25 steps: one solve, the table sampling uses is the one checked."""
    action = pf.Action("m2/2*phi**2 + lam/4*phi**4", fields=["phi"])
    path = pf.Path.linear(action, start={"m2": 1.0, "lam": 0.0}, end={"m2": -2.0, "lam": 0.5})
    flow = pf.solve(path, progress=False)
    assert flow.steps == 25 and len(flow.settings["auto_steps"]["tried"]) == 1
    assert flow.settings["auto_steps"]["tried"][0]["coverage"] > COVERAGE_GOAL
    with pytest.raises(pf.PikflowError, match="positive integer or 'auto'"):
        pf.solve(path, steps="many", progress=False)
