"""Shared by the experiment scripts of ``late_layers/`` and ``cheap_bases/``: one flow's record, one JSON line."""

import json

import numpy as np


def flow_record(flow, n: int = 4000, seeds=(1, 2), n_logq: int = 8) -> dict:
    """ESS/N of ``n`` flow samples per seed, the continuous log q error on ``n_logq`` samples, the layers' residuals."""
    import jax

    err = flow.log_density_error(jax.random.PRNGKey(3), n_logq)
    return {
        "ess": [float(flow.sample(n, seed=s, keep_fields=False).ess) for s in seeds],
        "log_q_error_rms": float(np.sqrt(np.mean(np.square(err)))),
        "layer_t": [float(x.t) for x in flow.reports],
        "residuals": [float(x.residual) for x in flow.reports],
    }


def append_line(out: str, record: dict) -> None:
    """Print ``record`` and append it to the JSON-lines file ``out``."""
    print(json.dumps(record), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(record) + "\n")
