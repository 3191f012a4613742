"""The ``pikflow`` command-line interface and its TOML configuration."""

from ._config import SCHEMA as SCHEMA
from ._config import build as build
from ._config import load_config as load_config
from ._main import main as main

__all__ = ["SCHEMA", "build", "load_config", "main"]
