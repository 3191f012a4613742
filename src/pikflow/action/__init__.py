"""Symbolic layer: actions, paths and string parsing (SymPy only, no JAX), for every field space.

A lattice action is an :class:`Action` with a geometry (:class:`Lattice`): ``Action(density,
lattice=[8, 8])`` is a :class:`LatticeAction`, its density in the grammar ``shift``, ``sum_mu``,
``d`` read by the one parser (:func:`parse_density`); :class:`Symmetry` is its symmetry group,
detected in SymPy. ``Path(action, ...)`` builds the path class of the action's space: a
:class:`LatticePath` for a lattice action (its JAX evaluation is registered by
:mod:`pikflow.lowering`, :func:`register_lattice_lowering`); :func:`check_bounded_below` checks
that its actions grow far out.
"""

from ._action import Action as Action
from ._bounded import check_bounded_below as check_bounded_below
from ._density import parse_density as parse_density
from ._geometry import Lattice as Lattice
from ._hopping import hopping_coupling as hopping_coupling
from ._lattice_action import LatticeAction as LatticeAction
from ._lattice_path import LatticePath as LatticePath
from ._lattice_path import register_lattice_lowering as register_lattice_lowering
from ._parse import as_expression as as_expression
from ._parse import parse_expression as parse_expression
from ._path import Path as Path
from ._path import register_path_class as register_path_class
from ._path import t as t
from ._symmetry import Symmetry as Symmetry

__all__ = [
    "Action",
    "Lattice",
    "LatticeAction",
    "LatticePath",
    "Path",
    "Symmetry",
    "as_expression",
    "check_bounded_below",
    "hopping_coupling",
    "parse_density",
    "parse_expression",
    "register_lattice_lowering",
    "register_path_class",
    "t",
]
