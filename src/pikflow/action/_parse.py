"""Parse action strings with SymPy, never with ``eval`` of user text.

Strings are read by :func:`sympy.parsing.sympy_parser.parse_expr` with an explicit,
restricted namespace: the elementary functions below, numbers, and symbols. Any other
name becomes a plain :class:`sympy.Symbol` (a field or a coupling).
"""

from __future__ import annotations

import keyword
import re
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


def parse_expression(text: str, *, what: str = "expression") -> sp.Expr:
    """Parse ``text`` (SymPy syntax, ``**`` or ``^`` for powers) into a SymPy expression.

    Raises
    ------
    ActionError
        If the text is not a valid expression, or is not a scalar expression.
    """
    if not isinstance(text, str):
        raise ActionError(f"the {what} must be a string or a SymPy expression, got {type(text).__name__}")
    if not text.strip():
        raise ActionError(f"the {what} is empty: write it in SymPy syntax, e.g. 'm2/2*phi**2 + lam/4*phi**4'")
    for word in re.findall(r"[A-Za-z_]\w*", text):
        if keyword.iskeyword(word):
            raise ActionError(
                f"the {what} {text!r} uses the Python keyword {word!r} as a name; rename it (e.g. 'lam' for 'lambda')"
            )
    _check_brackets(text, what)
    global_dict = {**_NUMBERS, **ALLOWED_FUNCTIONS}
    try:
        expr = parse_expr(text, local_dict={}, global_dict=global_dict, transformations=_TRANSFORMS, evaluate=True)
    except (SyntaxError, TypeError, ValueError, AttributeError, TokenError) as err:
        raise ActionError(
            f"cannot parse the {what} {text!r}: {_reason(err)}. Write it in SymPy syntax, e.g. 'm2/2*phi**2'"
        ) from None
    except Exception as err:  # parse_expr can raise anything SymPy raises while evaluating
        raise ActionError(f"cannot parse the {what} {text!r}: {type(err).__name__}: {err}") from None
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
