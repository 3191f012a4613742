"""What every benchmark shares: reading the configuration, writing the JSON."""

from __future__ import annotations

import json
import pathlib


def flow_inputs(args):
    """``(source, path, solve options, sampling options, observables)`` from ``CONFIG``/``--example``."""
    from ..cli import build, config_source

    data, source = config_source(args.config, args.example)
    return (source, *build(data))


def write_json(args, result: dict) -> None:
    """Write ``result`` to ``--json FILE`` if given, with the ``device`` it ran on (kind, count, processes)."""
    if getattr(args, "json_file", None):
        from .._devices import device_info

        result = {**result, "device": device_info()}
        p = pathlib.Path(args.json_file)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(result, indent=2))
        print(f"wrote {p}")
