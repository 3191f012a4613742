"""Symbolic layer: actions, paths and string parsing (SymPy only, no JAX)."""

from ._action import Action as Action
from ._parse import as_expression as as_expression
from ._parse import parse_expression as parse_expression
from ._path import Path as Path
from ._path import t as t

__all__ = ["Action", "Path", "as_expression", "parse_expression", "t"]
