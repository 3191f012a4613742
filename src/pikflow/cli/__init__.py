"""The ``pikflow`` command-line interface and its TOML configuration."""

from ._config import SCHEMA as SCHEMA
from ._config import build as build
from ._config import config_source as config_source
from ._config import hmc_options as hmc_options
from ._config import load_config as load_config
from ._lattice_report import reliability_warnings as lattice_reliability_warnings
from ._main import main as main

__all__ = ["SCHEMA", "build", "config_source", "hmc_options", "lattice_reliability_warnings", "load_config", "main"]
