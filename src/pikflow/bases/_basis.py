r"""Bases for the kernel :math:`v_t(\phi) = \sum_j k_j K_j(\phi)` (paper eq. 18).

A basis is a recipe that, given the field symbols and a parity, produces SymPy
expressions. Scalar functions :math:`f_j` become vector basis functions
:math:`K_{j,a} = f_j\, e_a` (one per field component); a :class:`Custom` basis may
instead give vector functions directly. Parity ``"auto"`` means odd functions when the
path is :math:`Z_2` symmetric (so :math:`v(-\phi) = -v(\phi)` and the flow keeps the
symmetry, paper sec. IV A 1) and all functions otherwise.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Sequence

import numpy as np
import sympy as sp

from .._errors import BasisError

PARITIES = ("auto", "odd", "even", "all")


class AbstractBasis:
    """A recipe for basis functions; subclasses implement :meth:`scalar_functions`."""

    kind: str = "abstract"
    parity: str = "auto"

    def scalar_functions(self, fields: Sequence[sp.Symbol], parity: str) -> list[sp.Expr]:
        """Scalar functions :math:`f_j` of the fields with the given (resolved) parity."""
        raise NotImplementedError

    def vector_functions(self, fields: Sequence[sp.Symbol], symmetric: bool) -> list[tuple[sp.Expr, ...]]:
        r"""Vector basis functions :math:`K_j` (tuples of one expression per field component)."""
        parity = resolve_parity(self.parity, symmetric)
        out = []
        n = len(fields)
        for f in self.scalar_functions(fields, parity):
            for a in range(n):
                out.append(tuple(f if b == a else sp.Integer(0) for b in range(n)))
        if not out:
            raise BasisError(f"the {self.kind} basis {self.spec()} is empty for parity {parity!r}")
        return out

    def spec(self) -> dict:
        """A JSON-serialisable description, rebuilt by :func:`basis_from_spec`."""
        raise NotImplementedError

    def fast_numeric(self, n_fields: int, symmetric: bool):
        """Optional hand-written JAX ``(values, divergences)`` equal to the lowered SymPy ones, or None."""
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "kind")
        return f"{type(self).__name__}({args})"


def resolve_parity(parity: str, symmetric: bool) -> str:
    """``"auto"`` becomes ``"odd"`` for a symmetric path and ``"all"`` otherwise."""
    if parity not in PARITIES:
        raise BasisError(f"parity must be one of {PARITIES}, got {parity!r}")
    if parity == "auto":
        return "odd" if symmetric else "all"
    return parity


def _keep(degree: int, parity: str) -> bool:
    return parity == "all" or (degree % 2 == 1) == (parity == "odd")


def _monomial_exponents(n: int, degree: int):
    for total in range(degree + 1):
        for exps in itertools.product(range(total + 1), repeat=n):
            if sum(exps) == total:
                yield total, exps


#: Most functions (or degree) a basis may have: the collocation matrix needs more points than functions.
MAX_FUNCTIONS = 100_000


def _check_count(value, what: str) -> None:
    """Raise :class:`BasisError` unless ``value`` is an integer in ``[1, MAX_FUNCTIONS]``."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (ok and 1 <= value <= MAX_FUNCTIONS and int(value) == value):
        raise BasisError(f"{what} must be an integer >= 1 (and <= {MAX_FUNCTIONS}), got {value!r}")


def _check_positive(value, what: str) -> None:
    """Raise :class:`BasisError` unless ``value`` is a finite positive number."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (ok and 0 < value < np.inf and float(value) < np.inf):
        raise BasisError(f"{what} must be positive (and finite), got {value!r}")


class Polynomial(AbstractBasis):
    r"""Monomials :math:`\prod_a \phi_a^{n_a}` of total degree up to ``degree``.

    With odd parity only odd total degrees are kept (:math:`\phi, \phi^3, \dots`), with
    even parity only even ones (including the constant).
    """

    kind = "polynomial"

    def __init__(self, degree: int = 9, *, parity: str = "auto"):
        _check_count(degree, "polynomial degree")
        self.degree, self.parity = int(degree), resolve_parity(parity, True) if parity != "auto" else "auto"

    def scalar_functions(self, fields, parity):
        return [
            sp.Mul(*(f**e for f, e in zip(fields, exps, strict=True)))
            for total, exps in _monomial_exponents(len(fields), self.degree)
            if _keep(total, parity)
        ]

    def spec(self):
        return {"kind": self.kind, "degree": self.degree, "parity": self.parity}


class Sine(AbstractBasis):
    r"""The paper's basis (eq. 25): :math:`K_1 = \phi`, :math:`K_j = \sin(\omega_j \phi)`.

    For parity ``"even"``/``"all"`` the constant and :math:`\cos(\omega_j \phi)` are added.
    With several field components the functions act on each component separately.

    Parameters
    ----------
    frequencies
        The :math:`\omega_j`. Default: ``n`` equally spaced frequencies
        :math:`\omega_j = j\, \omega_{\max} / n`.
    n, max_frequency
        Used when ``frequencies`` is not given.
    """

    kind = "sine"

    def __init__(
        self, frequencies: Sequence[float] | None = None, *, n: int = 25, max_frequency: float = 6.0, parity="auto"
    ):
        if frequencies is None:
            _check_count(n, "number of frequencies")
            _check_positive(max_frequency, "max_frequency")
            frequencies = (np.arange(1, int(n) + 1) * float(max_frequency) / int(n)).tolist()
        try:
            freqs = [float(w) for w in frequencies]
        except (TypeError, ValueError):
            raise BasisError(f"frequencies must be a list of positive numbers, got {frequencies!r}") from None
        if len(freqs) > MAX_FUNCTIONS:
            raise BasisError(f"{len(freqs)} frequencies: a basis takes at most {MAX_FUNCTIONS} functions")
        if not freqs or not all(np.isfinite(freqs)) or any(w <= 0 for w in freqs):
            raise BasisError(f"frequencies must be finite and positive, got {frequencies!r}")
        if len(set(freqs)) != len(freqs):
            raise BasisError("frequencies must be distinct (a repeated frequency makes the system singular)")
        self.frequencies, self.parity = freqs, parity
        resolve_parity(parity, True)

    def scalar_functions(self, fields, parity):
        out = []
        for f in fields:
            if parity in ("odd", "all"):
                out += [f] + [sp.sin(sp.Float(w) * f) for w in self.frequencies]
            if parity in ("even", "all"):
                out += [sp.cos(sp.Float(w) * f) for w in self.frequencies]
        if parity in ("even", "all"):
            out = [sp.Integer(1), *out]
        return out

    def spec(self):
        return {"kind": self.kind, "frequencies": self.frequencies, "parity": self.parity}

    def fast_numeric(self, n_fields, symmetric):
        r"""For one field and equally spaced :math:`\omega_j = j\omega_1`: the angle-addition recurrence.

        :math:`\sin((j+1)x) = \sin(jx)\cos x + \cos(jx)\sin x` (and the same for cos) costs
        one ``sin`` and one ``cos`` per sample instead of one per frequency, the dominant
        cost of sampling.
        """
        w = np.asarray(self.frequencies)
        if n_fields != 1 or not np.allclose(w, w[0] * np.arange(1, len(w) + 1), rtol=1e-13, atol=0):
            return None
        from ._fast_sine import sine_functions

        return sine_functions(float(w[0]), len(w), resolve_parity(self.parity, symmetric))


class Hermite(AbstractBasis):
    r"""Hermite functions :math:`H_n(\phi/s)\, e^{-\phi^2/(2 s^2)}` plus :math:`\phi` itself.

    The Hermite functions are the eigenfunctions of the harmonic oscillator (for several
    components, products of them up to total degree ``degree``); they decay, so the
    linear term :math:`\phi` carries the kernel's growth at large :math:`|\phi|`.
    """

    kind = "hermite"

    def __init__(self, degree: int = 20, *, scale: float = 1.5, parity: str = "auto"):
        _check_count(degree, "Hermite degree")
        _check_positive(scale, "Hermite scale")
        self.degree, self.scale, self.parity = int(degree), float(scale), parity
        resolve_parity(parity, True)

    def scalar_functions(self, fields, parity):
        s = sp.Float(self.scale)
        env = sp.exp(-sum(f**2 for f in fields) / (2 * s**2))
        out = [f for f in fields] if parity in ("odd", "all") else []
        for total, exps in _monomial_exponents(len(fields), self.degree):
            if _keep(total, parity):
                # normalised so every function is O(1): H_n(x) / sqrt(2^n n!)
                h = sp.Mul(
                    *(sp.hermite(e, f / s) / sp.sqrt(2**e * sp.factorial(e)) for f, e in zip(fields, exps, strict=True))
                )
                out.append(sp.expand(h) * env)
        return out

    def spec(self):
        return {"kind": self.kind, "degree": self.degree, "scale": self.scale, "parity": self.parity}


class Radial(AbstractBasis):
    r"""Equivariant radial basis for :math:`O(n)`-symmetric actions: :math:`K_j = \phi\, g_j(|\phi|^2)`.

    :math:`g_0 = 1` and :math:`g_{k+1}(u) = L_k(u/s^2)\, e^{-u/(2 s^2)}` (Laguerre
    polynomials, the radial harmonic-oscillator functions), :math:`k < \text{degree}`.
    The kernel of an :math:`O(n)`-invariant path is :math:`\phi\, g(|\phi|^2)` plus a
    divergence-free rotation that does not change the density; this basis spans the
    former only, with no null space, and is smooth at the origin (every function is
    analytic in :math:`u = |\phi|^2`).
    """

    kind = "radial"

    def __init__(self, degree: int = 12, *, scale: float = 1.5):
        _check_count(degree, "radial degree")
        _check_positive(scale, "radial scale")
        self.degree, self.scale, self.parity = int(degree), float(scale), "odd"

    def vector_functions(self, fields, symmetric):
        # L_k in Horner form in u, with u = |phi|^2 / s^2 kept as one sub-expression: expanding
        # the powers of u into monomials of the components gives thousands of terms for three
        # components (minutes of symbolic work, GBs to compile); lowered with CSE, u is computed once
        u = sum(f**2 for f in fields) / sp.Float(self.scale) ** 2
        x = sp.Dummy("u")
        env = sp.exp(-u / 2)
        gs = [sp.Integer(1)] + [
            sp.horner(sp.expand(sp.laguerre(k, x)), x).xreplace({x: u}) * env for k in range(self.degree)
        ]
        return [tuple(f * g for f in fields) for g in gs]

    def spec(self):
        return {"kind": self.kind, "degree": self.degree, "scale": self.scale}


class Custom(AbstractBasis):
    r"""A user-supplied basis: SymPy expressions (or strings) in the field symbols.

    Each entry is either a scalar function :math:`f_j` (used for every field component)
    or, for several components, a vector function given as a list with one expression
    per component. The basis is used as given: its parity is the user's business.
    """

    kind = "custom"

    def __init__(self, functions: Sequence):
        from ..action._parse import as_expression

        if not functions:
            raise BasisError("a custom basis needs at least one function")
        self.functions = []
        for f in functions:
            if isinstance(f, (list, tuple)):
                self.functions.append(tuple(as_expression(c, what="basis function") for c in f))
            else:
                self.functions.append(as_expression(f, what="basis function"))
        self.parity = "all"

    def vector_functions(self, fields, symmetric):
        from ..action._action import by_name

        n = len(fields)
        out = []
        names = {str(f) for f in fields}
        for f in self.functions:
            comps = f if isinstance(f, tuple) else None
            exprs = comps if comps is not None else (f,)
            bad = sorted({str(s) for e in exprs for s in e.free_symbols} - names)
            if bad:
                raise BasisError(f"basis function {f} uses symbol(s) {bad} that are not fields {sorted(names)}")
            if comps is not None:
                if len(comps) != n:
                    raise BasisError(f"vector basis function {f} has {len(comps)} components, the field has {n}")
                out.append(tuple(by_name(c, fields) for c in comps))
            else:
                e = by_name(f, fields)
                out += [tuple(e if b == a else sp.Integer(0) for b in range(n)) for a in range(n)]
        return out

    def spec(self):
        return {
            "kind": self.kind,
            "functions": [[str(c) for c in f] if isinstance(f, tuple) else str(f) for f in self.functions],
        }


_KINDS = {cls.kind: cls for cls in (Polynomial, Sine, Hermite, Radial, Custom)}


def basis_from_spec(spec: dict, *, lattice=None) -> AbstractBasis:
    """Build a basis from its :meth:`~AbstractBasis.spec` (the TOML ``[basis]`` table).

    A potential basis (:class:`~pikflow.bases.AbstractPotentialBasis`, e.g. a lattice family)
    is rebuilt on its geometry: ``basis_from_spec(spec, lattice=...)``.
    """
    from ._potential import _POTENTIAL_KINDS, potential_from_spec

    spec = dict(spec)
    if spec.get("kind") in _POTENTIAL_KINDS:
        return potential_from_spec(spec, lattice)
    kind = spec.pop("kind", None)
    if kind is None:
        raise BasisError(
            f"a basis spec needs its kind: one of {sorted(_KINDS)} (lattice families: {sorted(_POTENTIAL_KINDS)})"
        )
    if kind not in _KINDS:
        raise BasisError(
            f"unknown basis kind {kind!r}: choose one of {sorted(_KINDS)} "
            f"(lattice families: {sorted(_POTENTIAL_KINDS)})"
        )
    try:
        return _KINDS[kind](**spec)
    except TypeError as err:
        takes = [name for name in inspect.signature(_KINDS[kind]).parameters if name != "self"]
        raise BasisError(f"bad options for the {kind} basis ({err}); it takes {takes}") from None


def default_basis(n_fields: int, *, rotation_invariant: bool = False) -> AbstractBasis:
    """The basis used when none is given.

    Sines (eq. 25) for one component; the :class:`Radial` basis for several components
    when the path is :math:`O(n)` invariant; polynomials of degree 9 otherwise.
    """
    if n_fields == 1:
        return Sine()
    return Radial() if rotation_invariant else Polynomial(9)
