"""Exceptions raised by pikflow.

Every error a user can cause is a subclass of :class:`PikflowError`, itself a
:class:`ValueError`, and its message says what to change.
"""

from __future__ import annotations


class PikflowError(ValueError):
    """Base class of all errors pikflow raises on bad input or a failed step."""


class ActionError(PikflowError):
    """A malformed action or path: bad expression, unknown symbol, not normalisable."""


class BasisError(PikflowError):
    """A basis that cannot represent a kernel (wrong fields, empty, unlowerable)."""


class SolveError(PikflowError):
    """A per-layer solve failed (non-finite solution, degenerate system)."""


class SamplingError(PikflowError):
    """Sampling produced no usable samples, or was asked for something impossible."""


class ConfigError(PikflowError):
    """A TOML configuration with an unknown key, a wrong type or a missing entry."""


class FlowFileError(PikflowError):
    """A saved flow that cannot be read (missing, corrupt, or from another version)."""


class OutputError(PikflowError):
    """An output that cannot be written (unwritable ``--out``, a full disk)."""
