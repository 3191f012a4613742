"""Parse action strings with SymPy, never with ``eval`` of user text.

Strings are read by :func:`sympy.parsing.sympy_parser.parse_expr` with an explicit,
restricted namespace: the elementary functions below, numbers, and symbols. Any other
name becomes a plain :class:`sympy.Symbol` (a field or a coupling).
"""

from __future__ import annotations

import ast
import keyword
import math
import re
import warnings
from collections.abc import Iterable, Mapping
from tokenize import TokenError

import sympy as sp
from sympy.parsing.sympy_parser import (
    auto_number,
    auto_symbol,
    convert_xor,
    factorial_notation,
    parse_expr,
)

from .._errors import ActionError

#: The functions and constants an action string may use, by name.
ALLOWED_FUNCTIONS: dict[str, object] = {
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "tanh": sp.tanh,
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "Abs": sp.Abs,
    "abs": sp.Abs,
    "atan": sp.atan,
    "erf": sp.erf,
    "pi": sp.pi,
    "E": sp.E,
}

_NUMBERS = {
    "Integer": sp.Integer,
    "Float": sp.Float,
    "Rational": sp.Rational,
    "Symbol": sp.Symbol,
    "Function": sp.Function,
}
_TRANSFORMS = (auto_symbol, auto_number, factorial_notation, convert_xor)


#: Largest number (in decimal digits) an expression may spell out: beyond float64 (1e308) and cheap to refuse.
MAX_DIGITS = 400
_NUMBER_CALLS = ("Integer", "Float", "Rational")
#: Largest digits of a constant inside a function (``sin(1e300)``: exact argument reduction would not end).
MAX_FUNCTION_ARGUMENT = 15
#: Largest constant power of a compound expression (``(phi + 1)**1000``): SymPy expands such powers.
MAX_EXPONENT = 100


def _digits(node) -> float | None:
    """Upper bound on log10 |value| of a constant AST subtree (``None`` if it holds a name)."""
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float, complex, str)):
            return None
        try:
            x = abs(complex(v)) if not isinstance(v, int) else abs(v)
        except ValueError:
            return None
        if not math.isfinite(x):
            return math.inf
        return math.log10(x) if x > 1 else 0.0
    if isinstance(node, ast.UnaryOp):
        return _digits(node.operand)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _NUMBER_CALLS:
        ds = [_digits(a) for a in node.args]
        return max(ds) if ds and all(d is not None for d in ds) else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1:
        d = _digits(node.args[0])  # an allowed function of a constant: SymPy evaluates it exactly
        if d is None:
            return None
        if node.func.id in ("exp", "cosh", "sinh"):
            return 0.4343 * 10**d if d < MAX_DIGITS else math.inf
        if node.func.id in ("log", "sqrt", "Abs", "abs"):
            return d
        return d if d <= MAX_FUNCTION_ARGUMENT else math.inf
    if isinstance(node, ast.BinOp):
        a, b = _digits(node.left), _digits(node.right)
        if a is None or b is None:
            return None
        if isinstance(node.op, ast.Pow):
            return a * 10**b if b < MAX_DIGITS else (math.inf if a > 0 else 0.0)
        return a + b + 1
    return None


def check_number_sizes(text: str, *, what: str = "expression") -> None:
    """Raise :class:`ActionError` for a number too large to evaluate (``9**9**9``, ``1e999999``) or a power too
    large to expand (``(phi + 1)**9**9``).

    SymPy evaluates constant powers exactly while parsing: ``9**9**9`` has 369 million digits
    and would run for minutes. The text is read as a Python AST (never executed) and every
    constant subexpression's size is bounded first.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning of odd literals: SymPy's parser reports those
            tree = ast.parse(text.replace("^", "**").strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return  # not plain Python syntax: SymPy's parser reports it
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and not isinstance(node.left, ast.Name):
            e = _digits(node.right)
            if e is not None and e > math.log10(MAX_EXPONENT) and _digits(node.left) is None:
                raise ActionError(
                    f"the {what} raises an expression to a power above {MAX_EXPONENT} ({ast.unparse(node)[:60]}): "
                    "expanding it would not end; use a smaller power"
                )
        d = _digits(node)
        if d is not None and d > MAX_DIGITS:
            size = f" (about {d:.3g} digits)" if math.isfinite(d) else ""
            raise ActionError(
                f"the {what} holds a constant too large to evaluate{size}: {ast.unparse(node)[:60]}. Numbers of "
                f"more than {MAX_DIGITS} digits, and trigonometric arguments beyond 1e{MAX_FUNCTION_ARGUMENT}, are "
                "refused (float64 ends at 1.8e308); write a smaller one"
            )


def parse_expression(
    text: str,
    *,
    what: str = "expression",
    names: Mapping[str, object] | None = None,
    example: str = "m2/2*phi**2 + lam/4*phi**4",
) -> sp.Expr:
    """Parse ``text`` (SymPy syntax, ``**`` or ``^`` for powers) into a SymPy expression.

    The one parser of every action string. ``names`` extends the namespace by a grammar's
    own names (the lattice density's ``phi``, ``mu``, ``d``, ``shift`` and ``sum_mu``,
    :func:`pikflow.action.parse_density`); the result is then returned unexpanded, with the
    grammar's functions still in it, for the grammar to resolve. ``example`` is shown in
    the messages.

    Raises
    ------
    ActionError
        If the text is not a valid expression, or is not a scalar expression.
    """
    if not isinstance(text, str):
        raise ActionError(f"the {what} must be a string or a SymPy expression, got {type(text).__name__}")
    if not text.strip():
        raise ActionError(f"the {what} is empty: write it in SymPy syntax, e.g. {example!r}")
    for word in re.findall(r"[A-Za-z_]\w*", text):
        if keyword.iskeyword(word):
            raise ActionError(
                f"the {what} {text!r} uses the Python keyword {word!r} as a name; rename it (e.g. 'lam' for 'lambda')"
            )
    _check_brackets(text, what)
    check_number_sizes(text, what=what)
    global_dict = {**_NUMBERS, **ALLOWED_FUNCTIONS}
    try:
        expr = parse_expr(
            text, local_dict=dict(names or {}), global_dict=global_dict, transformations=_TRANSFORMS, evaluate=True
        )
    except (SyntaxError, TypeError, ValueError, AttributeError, TokenError) as err:
        raise ActionError(
            f"cannot parse the {what} {text!r}: {_reason(err)}. Write it in SymPy syntax, e.g. {example!r}"
        ) from None
    except Exception as err:  # parse_expr can raise anything SymPy raises while evaluating
        raise ActionError(f"cannot parse the {what} {text!r}: {type(err).__name__}: {err}") from None
    if names:
        if not isinstance(expr, sp.Expr) or isinstance(expr, sp.logic.boolalg.Boolean):
            raise ActionError(f"the {what} must be a scalar expression, got {type(expr).__name__}: {expr!r}")
        return expr
    return as_expression(expr, what=what)


_CLOSE = {")": "(", "]": "[", "}": "{"}


def _check_brackets(text: str, what: str) -> None:
    """Raise :class:`ActionError` naming the first unbalanced bracket of ``text`` and its position."""
    stack: list[tuple[str, int]] = []
    for i, ch in enumerate(text):
        if ch in "([{":
            stack.append((ch, i))
        elif ch in _CLOSE:
            if not stack or stack[-1][0] != _CLOSE[ch]:
                raise ActionError(
                    f"the {what} {text!r} has an unmatched {ch!r} at character {i + 1}: check its parentheses"
                )
            stack.pop()
    if stack:
        ch, i = stack[-1]
        raise ActionError(
            f"the {what} {text!r} has an unclosed {ch!r} at character {i + 1}: {len(stack)} closing bracket(s) missing"
        )


def _reason(err: Exception) -> str:
    """A tokenizer or syntax error as a sentence, not a tuple (``TokenError`` carries ``(msg, (line, col))``)."""
    if isinstance(err, TokenError) and err.args:
        return str(err.args[0])
    if isinstance(err, SyntaxError) and err.msg:
        return err.msg  # its offset counts in SymPy's rewritten code, not in the user's text
    return str(err) or type(err).__name__


def as_expression(expr: object, *, what: str = "expression") -> sp.Expr:
    """Return ``expr`` as a real scalar SymPy expression, or raise :class:`ActionError`."""
    if isinstance(expr, str):
        return parse_expression(expr, what=what)
    if isinstance(expr, (int, float)):
        return sp.Float(expr) if isinstance(expr, float) else sp.Integer(expr)
    boolean = isinstance(expr, sp.logic.boolalg.Boolean) and not isinstance(expr, sp.Symbol)
    if not isinstance(expr, sp.Expr) or boolean:
        raise ActionError(f"the {what} must be a scalar SymPy expression, got {type(expr).__name__}: {expr!r}")
    if expr.has(sp.I) or expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise ActionError(f"the {what} {expr} is not a finite real expression")
    bad = [f for f in expr.atoms(sp.Function) if isinstance(f, sp.core.function.AppliedUndef)]
    if bad:
        raise ActionError(
            f"the {what} {expr} uses unknown function(s) {sorted(map(str, bad))}; "
            f"allowed: {sorted(k for k in ALLOWED_FUNCTIONS if k not in ('pi', 'E'))}"
        )
    return expr


def as_symbol(name: object, *, what: str = "symbol") -> sp.Symbol:
    """Return ``name`` (a string or Symbol) as a :class:`sympy.Symbol`."""
    if isinstance(name, sp.Symbol):
        return name
    if isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name):
        return sp.Symbol(name)
    raise ActionError(f"the {what} {name!r} must be a SymPy Symbol or a valid Python identifier")


def as_names(value: object, *, what: str) -> list:
    """``value`` (a list or tuple of names) as a list; raise :class:`ActionError` for anything else."""
    if isinstance(value, (str, sp.Symbol)):
        return [value]
    if not isinstance(value, Iterable) or isinstance(value, (bytes, bytearray)):
        raise ActionError(f"{what} must be a list of names like ['phi'], got {type(value).__name__}: {value!r}")
    return list(value)


def as_mapping(value: object, *, what: str) -> dict:
    """``value`` (a mapping, or ``None``) as a dict; raise :class:`ActionError` for anything else."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ActionError(f"{what} must be a mapping like {{'lam': [0, 1]}}, got {type(value).__name__}: {value!r}")
    return dict(value)
