"""Embedded Swendsen-Wang cluster moves (smc(mcmc="hmc+cluster"), [scan] mcmc) against exact free-field answers.

A free field K(k) = m2 + khat^2 is sampled exactly in Fourier space; sweeps of the signs must leave its law
invariant: <m^2> = 1/(V m2) and <phi_x phi_(x+e0)> = G(e0) within 4 standard errors of the swept samples
(20 000 of them). A sweep with the wrong hopping coupling shifts <m^2> by many errors, so the check can fail.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pikflow as pf
import pikflow.lattice as pl
from pikflow.action import hopping_coupling
from pikflow.samplers._cluster import cluster_labels, swendsen_wang

L, M2, N = 4, 0.1, 20_000


def _free_samples():
    k = 2 * np.pi * np.fft.fftfreq(L)
    khat2 = (4 * np.sin(k / 2) ** 2)[:, None] + (4 * np.sin(k / 2) ** 2)[None, :]
    z = np.random.default_rng(0).normal(size=(N, L, L))
    x = np.real(np.fft.ifft2(np.fft.fft2(z) / np.sqrt(M2 + khat2)))
    g1 = np.sum(np.cos(k)[:, None] / (M2 + khat2)) / L**2
    return x, {"m2": 1 / (L * L * M2), "link": g1}


def _swept(x, coupling, sweeps=5):
    sweep = jax.jit(jax.vmap(lambda key, c: swendsen_wang(key, c, coupling)))
    y = jnp.asarray(x)
    for i in range(sweeps):
        y = sweep(jax.random.split(jax.random.PRNGKey(i), len(x)), y)
    return np.asarray(y)


def _pulls(y, exact):
    m2 = y.mean(axis=(1, 2)) ** 2
    link = (y * np.roll(y, -1, axis=1)).mean(axis=(1, 2))
    return {k: (v.mean() - exact[k]) / (v.std() / np.sqrt(len(v))) for k, v in (("m2", m2), ("link", link))}


def test_swendsen_wang_sweeps_leave_the_free_field_invariant():
    x, exact = _free_samples()
    y = _swept(x, 1.0)
    assert np.array_equal(np.abs(y), np.abs(x))  # only signs change
    assert 0.3 < np.mean(np.sign(y) != np.sign(x)) < 0.7  # and many do: whole clusters flip
    pulls = _pulls(y, exact)
    assert all(abs(p) < 4 for p in pulls.values()), pulls
    wrong = _pulls(_swept(x, 0.5), exact)  # bonds too weak: the clusters break up, <m^2> falls
    assert wrong["m2"] < -8, wrong


def test_cluster_labels_by_hand_and_the_two_labellings_agree():
    """Labels on a ring of 6 sites worked out by hand (each cluster carries its smallest site, the bond 5-0
    closes the ring); then Numba's union-find (host) and label propagation (device) give the same labels on
    random bonds in 1, 2 and 3 dimensions, under nested vmaps and one at a time."""
    ring = lambda bonds: np.asarray(cluster_labels(jnp.array([bonds], bool), "host")).tolist()  # noqa: E731
    assert ring([1, 0, 1, 1, 0, 0]) == [0, 0, 2, 2, 2, 5]
    assert ring([1, 0, 1, 1, 0, 1]) == [0, 0, 2, 2, 2, 0]
    assert ring([0, 0, 0, 0, 0, 0]) == [0, 1, 2, 3, 4, 5]
    assert ring([1, 1, 1, 1, 1, 0]) == [0] * 6
    rng = np.random.default_rng(0)
    for shape in [(7,), (5, 6), (3, 4, 5), (2, 2)]:
        for p in (0.3, 0.6, 0.9):
            bonds = jnp.asarray(rng.random((2, 3, len(shape), *shape)) < p)
            labels = {
                how: np.asarray(jax.jit(jax.vmap(jax.vmap(lambda b, how=how: cluster_labels(b, how))))(bonds))
                for how in ("host", "device")
            }
            assert np.array_equal(labels["host"], labels["device"]), (shape, p)
            assert np.array_equal(np.asarray(cluster_labels(bonds[1, 2], "host")), labels["device"][1, 2])
    with pytest.raises(ValueError, match="labelling must be one of"):
        cluster_labels(bonds[0, 0], "gpu")


@pytest.mark.parametrize(
    "density, couplings, expected",
    [(pl.PHI4_DENSITY, {"m2": [[0, 0.5], [0.25, -0.5], [1, -2.0]], "lam": [[0, 0.0], [0.25, 1.0], [1, 1.0]]}, 1.0),
     ("phi**2 - 0.5*sum_mu(phi*shift(phi, mu)) + phi**4", {}, 0.5),
     ("sum_mu((shift(phi, mu) - phi)**2)/2 + m2/2*phi**2 + phi**4", {"m2": -1.0}, 1.0),  # the gradient form
     ("sum_mu((shift(phi, mu) - phi)**2)/2 + shift(phi, 0)**3", {}, None),  # a neighbour's odd term
     ("sum_mu((shift(phi, mu) - phi)**2)/2 + (phi*shift(phi, 0))**2", {}, None),  # a quartic bond
     (pl.PHI4_DENSITY + " + h*phi", {"m2": -1.0, "lam": 1.0, "h": 0.1}, None),  # the site term is not even
     ("phi**2 - k*phi*shift(phi, 0) - phi*shift(phi, 1)", {"k": 2.0}, None),  # not the same J on both axes
     ("phi**2 + sum_mu(phi*shift(phi, mu)) + phi**4", {}, None),  # antiferromagnetic
     ("phi**2 - sum_mu(phi*shift(phi, mu)*phi**2) + phi**6", {}, None)],  # not bilinear
)  # fmt: skip
def test_hopping_coupling_only_for_the_embedded_ising_form(density, couplings, expected):
    assert hopping_coupling(pl.LatticePath(pl.LatticeAction(density, [4, 4]), couplings)) == expected


def test_cluster_moves_in_a_free_field_scan_and_refused_where_they_do_not_apply():
    """A scan of a free field with cluster moves: log Z(t) and chi at every point within 4 replica errors (t_7)
    of the exact values; an action with a linear term (not even) is refused before any sampling, but runs without
    moves."""
    path = pl.LatticePath(
        pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", (4, 4)),
        {"m2": [[0, 1.0], [1, 0.2]]},
    )
    scan = pl.scan_lattice(path, points=3, steps=6, particles=400, replicas=8, mcmc="hmc+cluster", seed=2,
                           progress=False)  # fmt: skip
    k = 2 * np.pi * np.fft.fftfreq(4)
    khat2 = (4 * np.sin(k / 2) ** 2)[:, None] + (4 * np.sin(k / 2) ** 2)[None, :]
    for row in scan.points["4x4"]:
        m2 = row["couplings"]["m2"]
        log_z = 8 * np.log(2 * np.pi) - 0.5 * np.sum(np.log(m2 + khat2))
        assert abs(row["log_z"].value - log_z) <= 4 * row["log_z"].error + 1e-9, (m2, row["log_z"])
        assert abs(row["chi"].value - (1 - 2 / np.pi) / m2) < 4 * row["chi"].error, (m2, row["chi"])
    tilted = pl.LatticePath(  # a field h switched on along the path: the site term is not even
        pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu)) + h*phi", (4, 4)),
        {"m2": 1.0, "h": [0.0, 0.1]},
    )
    with pytest.raises(pf.SamplingError, match="hmc\\+cluster.*even in phi"):
        pl.scan_lattice(tilted, points=2, particles=10, mcmc="hmc+cluster", progress=False)
    # without moves nothing is refused: annealing alone, log Z = free + V h^2 / (2 m2) (the zero mode)
    plain = pl.scan_lattice(tilted, points=2, steps=4, particles=400, replicas=8, mcmc="hmc+cluster", mcmc_steps=0,
                            seed=1, progress=False)  # fmt: skip
    end = plain.points["4x4"][-1]
    log_z = 8 * np.log(2 * np.pi) - 0.5 * np.sum(np.log(1.0 + khat2)) + 16 * 0.1**2 / 2
    assert abs(end["log_z"].value - log_z) <= 4 * end["log_z"].error + 1e-9, end["log_z"]


def test_cluster_moves_after_pik_transport_and_refused_in_0d(tmp_path):
    """PIK transport along a free path with cluster moves (the flow's problem carries the hopping coupling): chi
    within 4 replica errors of the exact value; [smc] mcmc = "hmc+cluster" in 0-D is refused before the solve."""
    from pikflow.cli._config import load_config

    path = pl.LatticePath(
        pl.LatticeAction("(m2 + 2*d)/2*phi**2 - sum_mu(phi*shift(phi, mu))", (4, 4)), {"m2": [[0, 1.0], [1, 0.4]]}
    )
    scan = pl.scan_lattice(
        path, points=2, t_range=(0.5, 1.0), steps=2, particles=300, replicas=8, mcmc="hmc+cluster", mcmc_steps=1,
        transport="pik", flow_basis={"scales": [], "magnetisation": [], "local_range": None}, flow_collocation=200,
        seed=4, progress=False,
    )  # fmt: skip
    for row in scan.points["4x4"]:
        m2 = row["couplings"]["m2"]
        assert abs(row["chi"].value - (1 - 2 / np.pi) / m2) < 4 * row["chi"].error, (m2, row["chi"])
    cfg = tmp_path / "c.toml"
    zero_d = '[action]\ndensity = "m2/2*phi**2 + lam/4*phi**4"\n[path]\nm2 = [1.0, -2.0]\nlam = [0.0, 0.5]\n'
    cfg.write_text(zero_d + '[sampling]\nmethod = "smc"\n[smc]\nmcmc = "hmc+cluster"\n')
    with pytest.raises(pf.ConfigError, match="hmc\\+cluster.*lattice runs"):
        load_config(cfg)
