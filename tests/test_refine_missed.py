"""refine(centres_at="missed"): Wendland centres at the reference samples the flow misses (issue #14).

References: the flow's own forward log-density (the weights of missed_weights), the forward RK4
map (the pulled-back trajectories), exact inverse-CDF samples of the target from quadrature.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pikflow as pf
from pikflow.flow._integrate import rk4_step
from pikflow.refine import CorrectedKernel, missed_points, missed_weights


@pytest.fixture(scope="module")
def coarse_flow():
    # a quartic well with a two-sine basis: an under-resolved flow (ESS/N 0.83, target side 0.84)
    action = pf.Action("m2/2*phi**2 + lam/4*phi**4", fields=["phi"])
    path = pf.Path.linear(action, start={"m2": 1.0, "lam": 0.0}, end={"m2": -2.0, "lam": 0.5})
    return pf.solve(path, steps=8, basis=pf.Sine(n=2, max_frequency=1.0), progress=False)


def test_missed_weights_are_the_flows_own_weights(coarse_flow):
    s = coarse_flow.sample(500, seed=3, method="rk4", keep_layers=False, progress=False)
    # -S_1 - log q from the flow run backwards equals the forward weights of its own samples
    np.testing.assert_allclose(missed_weights(coarse_flow, s.final), s.log_w[-1], atol=1e-7)


def test_missed_points_are_the_largest_weights_carried_back(coarse_flow):
    pts = missed_points(coarse_flow, n_missed=32, n_reference=5000, seed=0)
    assert len(pts) == 2 * coarse_flow.steps + 1 and pts[-1].shape == (32, 1)
    ref = pf.exact.reference_for(coarse_flow.path).sample(1.0, 5000, seed=7)[:, None]
    lw = missed_weights(coarse_flow, ref)
    # the kept samples are the 32 of largest p/q
    assert np.min(missed_weights(coarse_flow, pts[-1])) >= np.sort(lw)[-32] - 1e-9
    # pushed forward through the RK4 map from layer 0, the trajectories end at the samples
    # (backward RK4 is the inverse up to O(dt^5) per step: 8 steps of a smooth flow, 1e-3)
    x = jnp.asarray(pts[0])
    for i in range(coarse_flow.steps):
        x = jax.vmap(lambda p, i=i: rk4_step(coarse_flow.kernels, i, p, 1.0 / coarse_flow.steps))(x)
    np.testing.assert_allclose(np.asarray(x), pts[-1], atol=1e-3)


def test_missed_refinement_puts_its_centres_at_the_missed_samples(coarse_flow):
    pts = missed_points(coarse_flow, n_missed=64, seed=0)
    r = pf.refine(coarse_flow, centres_at="missed", n_missed=64, max_rounds=1, n_ess=0, progress=False)
    k = r.flow.kernels
    assert isinstance(k, CorrectedKernel) and r.settings["centres_at"] == "missed"
    accepted = [lay.index for lay in r.rounds[0].layers if lay.status == "accepted"]
    assert accepted
    for i in accepted:
        c = np.asarray(k.centres[i])[np.any(np.asarray(k.weights[i]) != 0, axis=1)]
        # every centre is one of the layer's pulled-back missed samples
        d = np.min(np.abs(c[:, None, 0] - pts[i][None, :, 0]), axis=1)
        assert np.all(d < 1e-12)
    # no layer got worse (the refinement's guard), measured on its own points
    for before, after in zip(r.initial, r.final, strict=True):
        assert after.rms <= before.rms + 1e-15 and after.max <= before.max + 1e-15
    with pytest.raises(pf.PikflowError, match="centres_at"):
        pf.refine(coarse_flow, centres_at="worst", progress=False)
