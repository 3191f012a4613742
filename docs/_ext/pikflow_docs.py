"""A small Sphinx extension that writes the generated parts of the pikflow docs.

At ``builder-inited`` it writes, from the installed package itself:

- ``docs/api/generated/pikflow*.rst``: one API page per public subpackage or module of
  :mod:`pikflow` (every name in its ``__all__``), plus the top-level page. Each object is
  documented once, on the page of the subpackage that defines it; the other pages link
  to it. A new subpackage or a new public name appears without editing the docs.
- ``docs/generated/toml_reference.md``: every key of :data:`pikflow.cli.SCHEMA`, with its
  type and description, and the built-in example configurations.
- ``docs/generated/cli_help.md``: the ``--help`` text of every ``pikflow`` subcommand,
  benchmarks included.
- ``docs/generated/guide_toc.md``: the user guide's toctree over every
  ``docs/guide/*.md`` page, in pipeline order (unknown pages before the CLI page).

Files are rewritten only when their content changes, so incremental builds stay fast.
With ``pikflow_docs_require_docstrings = True`` (the default) a public class, function,
method or property without a docstring is a warning (an error under ``-W``).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import pathlib
import pkgutil
import re
import textwrap

from sphinx.util import logging
from sphinx_gallery.sorting import FileNameSortKey

logger = logging.getLogger(__name__)

#: The user guide pages in reading order (pipeline stages); others go before ``cli``.
GUIDE_ORDER = (
    "architecture", "actions", "equations", "bases", "solvers", "refinement", "sampling", "hmc", "lattice", "smc",
    "scans", "multilevel",
)  # fmt: skip
GUIDE_LAST = ("cli",)
#: The gallery in reading order; other examples follow alphabetically.
EXAMPLE_ORDER = (
    "plot_quickstart.py",
    "plot_own_action.py",
    "plot_o2_model.py",
    "plot_one_layer.py",
    "plot_refinement.py",
    "plot_solvers.py",
    "plot_path_observables.py",
    "plot_pik_vs_hmc.py",
)

_TYPE_NAMES = {"str": "string", "int": "integer", "float": "float", "bool": "boolean", "list": "array", "dict": "table"}


class ExampleOrder(FileNameSortKey):
    """Sort key for sphinx-gallery: the examples of :data:`EXAMPLE_ORDER` first, then by name."""

    def __call__(self, filename):
        name = os.path.basename(str(filename))
        rank = EXAMPLE_ORDER.index(name) if name in EXAMPLE_ORDER else len(EXAMPLE_ORDER)
        if rank == len(EXAMPLE_ORDER) and name.startswith("plot_lattice"):
            rank += 1  # lattice examples after the 0-D ones
        return f"{rank:03d}_{name}"


# ------------------------------------------------------------------------------ helpers
def _write(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _title(text: str, char: str = "=") -> str:
    return f"{text}\n{char * len(text)}\n"


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ") if doc else ""


def _public_modules(package) -> list[str]:
    """Dotted names of the public subpackages and modules of ``package`` (not starting with ``_``)."""
    return sorted(f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__) if m.name[0] != "_")


def _exports(module) -> list[str]:
    """The public names of a module: its ``__all__``, else what it defines without a leading underscore."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
        ]
    return [n for n in names if not (n.startswith("__") and n.endswith("__")) and hasattr(module, n)]


def _kind(obj) -> str:
    if inspect.ismodule(obj):
        return "module"
    if type(obj).__name__ == "UndefinedFunction":  # sympy.Function("name"): a symbol, documented as data
        return "data"
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isbuiltin(obj):
        return "function"
    return "data"


def _own_docstring(obj) -> bool:
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    if not doc or not doc.strip():
        return False
    # dataclasses (and equinox modules) get their signature as an automatic docstring
    return not (inspect.isclass(obj) and doc.startswith(obj.__name__ + "("))


def _missing_docstrings(qualname: str, obj) -> list[str]:
    """Public names (the object, and the methods and properties its class body defines) without a docstring."""
    kind = _kind(obj)
    if kind == "data":
        return []
    missing = [] if _own_docstring(obj) else [qualname]
    if inspect.isclass(obj):
        for name, member in vars(obj).items():
            if name.startswith("_"):
                continue
            target = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
            if isinstance(target, property):
                target = target.fget
            if not (inspect.isfunction(target) or callable(getattr(target, "__get__", None)) and callable(target)):
                continue
            if not inspect.getdoc(member if not isinstance(member, (classmethod, staticmethod)) else target):
                # inherited docstrings count (overrides of a documented abstract method)
                if not any(inspect.getdoc(getattr(base, name, None)) for base in obj.__mro__[1:] if name in vars(base)):
                    missing.append(f"{qualname}.{name}")
    return missing


def _attr_doc(module_name: str, name: str, obj) -> str:
    """The ``#:`` comment of a module-level constant, searched in the module and its submodules."""
    from sphinx.pycode import ModuleAnalyzer

    candidates = [module_name]
    module = importlib.import_module(module_name)
    if hasattr(module, "__path__"):
        candidates += [f"{module_name}.{m.name}" for m in pkgutil.iter_modules(module.__path__)]
    for cand in candidates:
        try:
            mod = importlib.import_module(cand)
            if getattr(mod, name, None) is not obj:
                continue
            docs = ModuleAnalyzer.for_module(cand).find_attr_docs()
        except Exception:  # noqa: BLE001 - a module without source: no comment
            continue
        if ("", name) in docs:
            return "\n".join(docs[("", name)]).strip()
    return ""


def _directive(qualname: str, obj, module_name: str) -> str:
    kind = _kind(obj)
    if kind in ("class", "exception"):
        opts = "   :members:\n"
        if kind == "class" and "__call__" in vars(obj) and inspect.getdoc(vars(obj)["__call__"]):
            opts += "   :special-members: __call__\n"
        return f".. auto{kind}:: {qualname}\n{opts}\n"
    if kind == "function":
        return f".. autofunction:: {qualname}\n\n"
    name = qualname.rsplit(".", 1)[1]
    doc = _attr_doc(module_name, name, obj)
    text = repr(obj)
    value = f"   :value: {text}\n" if len(text) <= 60 and "\n" not in text else ""
    body = textwrap.indent(doc, "   ") + "\n" if doc else ""
    return f".. py:data:: {qualname}\n{value}\n{body}\n"


# ------------------------------------------------------------------------------ API pages
def write_api(srcdir: pathlib.Path) -> list[str]:
    """Write the API pages; returns the docstring problems found."""
    import pikflow

    outdir = srcdir / "api" / "generated"
    written: set[str] = set()
    problems: list[str] = []
    modules = {}
    for name in _public_modules(pikflow):
        try:
            modules[name] = importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - reported as a build warning, naming the module
            logger.warning(f"pikflow_docs: cannot import {name} for the API reference: {type(err).__name__}: {err}")

    # where each object is documented: the module whose ``__all__`` lists it and that defines it
    home: dict = {}
    for modname, module in modules.items():
        for name in _exports(module):
            obj = getattr(module, name)
            if _kind(obj) in ("module", "data"):
                continue
            defined = getattr(obj, "__module__", "") or ""
            score = len(modname) if defined == modname or defined.startswith(modname + ".") else -1
            if id(obj) not in home or score > home[id(obj)][0]:
                home[id(obj)] = (score, f"{modname}.{name}")
    home = {k: v[1] for k, v in home.items()}

    for modname, module in modules.items():
        lines = [_title(f"``{modname}``"), f".. automodule:: {modname}\n   :no-members:\n"]
        own, elsewhere = [], []
        for name in _exports(module):
            obj = getattr(module, name)
            kind = _kind(obj)
            if kind == "module":
                continue
            qual = f"{modname}.{name}"
            where = home.get(id(obj), qual) if kind != "data" else qual
            (own if where == qual else elsewhere).append((name, obj, where))
        if own:
            lines.append(_summary_table(own, modname) + "\n")
        for _name, obj, qual in own:
            lines.append(_directive(qual, obj, modname))
            problems += _missing_docstrings(qual, obj)
        if elsewhere:
            lines.append("Also exported here\n------------------\n\n")
            for name, _obj, where in elsewhere:
                lines.append(f"- ``{modname}.{name}``: see :py:obj:`{where}`\n")
            lines.append("\n")
        page = outdir / f"{modname}.rst"
        _write(page, "\n".join(lines))
        written.add(page.name)

    # the top-level page: the package docstring, its names with links, and the names defined only there
    lines = [_title("``pikflow``"), ".. automodule:: pikflow\n   :no-members:\n"]
    linked, own = [], []
    for name in _exports(pikflow):
        obj = getattr(pikflow, name)
        kind = _kind(obj)
        if kind == "module":
            continue
        where = home.get(id(obj)) if kind != "data" else None
        if kind == "data":
            where = next(
                (f"{m}.{name}" for m, mod in modules.items() if name in _exports(mod) and getattr(mod, name) is obj),
                None,
            )
        (linked if where else own).append((name, obj, where or f"pikflow.{name}"))
    rows = [(f"``pikflow.{n}``", f":py:obj:`{w}`", _summary(o)) for n, o, w in linked if _kind(o) != "data"]
    rows += [(f"``pikflow.{n}``", f":py:obj:`{w}`", "") for n, o, w in linked if _kind(o) == "data"]
    if rows:
        lines.append("The names of the top-level namespace and where they are documented.\n")
        lines.append(_list_table(("name", "documented as", "summary"), rows))
    if own:
        lines.append("Defined at the top level\n------------------------\n")
        for name, obj, qual in own:
            if name == "load":
                alias = "Alias of :py:meth:`pikflow.flow.Flow.load`: read a flow written by ``Flow.save``."
                lines.append(f".. py:function:: pikflow.load(directory)\n\n   {alias}\n\n")
                continue
            lines.append(_directive(qual, obj, "pikflow"))
            problems += _missing_docstrings(qual, obj)
    _write(outdir / "pikflow.rst", "\n".join(lines))
    written.add("pikflow.rst")

    for stale in outdir.glob("*.rst"):
        if stale.name not in written:
            stale.unlink()
    return problems


def _summary_table(items, modname: str) -> str:
    rows = [(f":py:obj:`~{qual}`", _summary(obj) if _kind(obj) != "data" else "") for _n, obj, qual in items]
    return _list_table(("name", "summary"), rows)


def _list_table(header, rows) -> str:
    out = [".. list-table::", "   :header-rows: 1", f"   :widths: {' '.join(['1'] * (len(header) - 1) + ['3'])}", ""]
    for row in (header, *rows):
        first, *rest = row
        out.append(f"   * - {first}")
        out += [f"     - {cell.replace(chr(10), ' ') or ' '}" for cell in rest]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------ TOML reference
def _types(spec) -> str:
    types = spec if isinstance(spec, (tuple, list)) else (spec,)
    names = [_TYPE_NAMES.get(getattr(t, "__name__", str(t)), getattr(t, "__name__", str(t))) for t in types]
    return " or ".join(names)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _toml_section(name: str, table, out: list[str], level: int = 2) -> None:
    out.append(f"{'#' * level} `[{name}]`\n")
    nested = []
    out.append("| key | type | description |\n|---|---|---|")
    for key, spec in table.items():
        if isinstance(spec, dict):
            nested.append((key, spec))
            continue
        if isinstance(spec, (tuple, list)) and len(spec) == 2:
            types, desc = spec
            type_text = _types(types)
        else:
            type_text, desc = "", spec
        key_text = "*any name*" if key == "*" else f"`{key}`"
        out.append(f"| {key_text} | {type_text} | {_md_cell(desc)} |")
    out.append("")
    for key, spec in nested:
        _toml_section(f"{name}.{key}", spec, out, level + 1)


def toml_reference() -> str:
    """Markdown listing every key of :data:`pikflow.cli.SCHEMA` and the built-in example files."""
    from pikflow.cli import _config

    out = [
        "<!-- generated by docs/_ext/pikflow_docs.py from pikflow.cli.SCHEMA: do not edit -->\n",
        f"Every accepted key, section by section ({sum(len(v) for v in _config.SCHEMA.values())} entries "
        f"in {len(_config.SCHEMA)} sections). *any name* means the section takes keys of your choosing "
        "(couplings, observables). Any other key is an error that suggests the closest valid one.\n",
    ]
    for section, table in _config.SCHEMA.items():
        if isinstance(table, dict):
            _toml_section(section, table, out)
        else:
            out.append(f"## `[{section}]`\n\n{_md_cell(table)}\n")
    return "\n".join(out)


def toml_examples() -> str:
    """Markdown with the built-in example configurations, one heading each."""
    from pikflow.cli import _config

    out = ["<!-- generated by docs/_ext/pikflow_docs.py: do not edit -->\n"]
    for name in getattr(_config, "EXAMPLES", ()):
        try:
            text = _config.example_path(name).read_text()
        except Exception as err:  # noqa: BLE001
            logger.warning(f"pikflow_docs: cannot read the built-in example {name!r}: {err}")
            continue
        out.append(f"## `{name}`\n\n```toml\n{text.rstrip()}\n```\n")
    return "\n".join(out)


# ------------------------------------------------------------------------------ CLI help
def cli_help() -> str:
    """Markdown with the ``--help`` text of ``pikflow`` and each subcommand and benchmark."""
    from pikflow.bench import BENCHMARKS
    from pikflow.cli import main

    commands = [[], ["run"], ["bench"], *(["bench", k] for k in BENCHMARKS), ["examples"]]
    out = ["<!-- generated by docs/_ext/pikflow_docs.py from the argument parser: do not edit -->\n"]
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "90"
    try:
        for cmd in commands:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
                try:
                    main([*cmd, "--help"])
                except SystemExit:
                    pass
            text = buf.getvalue().rstrip()
            if not text:
                logger.warning(f"pikflow_docs: `pikflow {' '.join(cmd)} --help` printed nothing")
                continue
            out.append(f"## `pikflow {' '.join(cmd)}`\n\n```text\n{text}\n```\n".replace("`pikflow `", "`pikflow`"))
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(out)


# ------------------------------------------------------------------------------ guide toctree
def guide_toc(srcdir: pathlib.Path) -> str:
    pages = sorted(p.stem for p in (srcdir / "guide").glob("*.md") if p.stem != "index" and not p.stem.startswith("_"))
    known = [p for p in GUIDE_ORDER if p in pages]
    last = [p for p in GUIDE_LAST if p in pages]
    rest = [p for p in pages if p not in known and p not in last]
    entries = "\n".join(known + rest + last)
    return f"```{{toctree}}\n:maxdepth: 2\n\n{entries}\n```\n"


# ------------------------------------------------------------------------------ docstrings
_FIELD_SECTIONS = {"Attributes"}


def split_attribute_names(app, what, name, obj, options, lines) -> None:
    """Before napoleon: ``a, b : type`` in an ``Attributes`` section becomes one entry per name.

    napoleon splits such lines in ``Parameters`` but not in ``Attributes`` when
    ``napoleon_use_ivar`` is on (it would render ``b`` with the type ``a,``).
    """
    out: list[str] = []
    i, section, header_indent = 0, None, 0
    pattern = re.compile(r"(\s*)([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)+)(\s*:.*)?")
    while i < len(lines):
        line = lines[i]
        if line.strip() and i + 1 < len(lines) and re.fullmatch(r"\s*-{3,}\s*", lines[i + 1]):
            section, header_indent = line.strip(), len(line) - len(line.lstrip())
            out += [line, lines[i + 1]]
            i += 2
            continue
        m = pattern.fullmatch(line) if section in _FIELD_SECTIONS else None
        if m and len(m.group(1)) == header_indent:
            indent, names, typ = m.group(1), [n.strip() for n in m.group(2).split(",")], m.group(3) or ""
            j, desc = i + 1, []
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > len(indent)):
                desc.append(lines[j])
                j += 1
            trailing = []
            while desc and not desc[-1].strip():
                trailing.insert(0, desc.pop())
            for n in names:
                out += [f"{indent}{n}{typ}", *desc]
            out += trailing
            i = j
            continue
        out.append(line)
        i += 1
    lines[:] = out


# ------------------------------------------------------------------------------ Sphinx glue
def _generate(app) -> None:
    srcdir = pathlib.Path(app.srcdir)
    gen = srcdir / "generated"
    problems = write_api(srcdir)
    _write(gen / "toml_reference.md", toml_reference())
    _write(gen / "toml_examples.md", toml_examples())
    _write(gen / "cli_help.md", cli_help())
    _write(gen / "guide_toc.md", guide_toc(srcdir))
    if app.config.pikflow_docs_require_docstrings:
        for name in problems:
            logger.warning(f"pikflow_docs: public name without a docstring: {name}")


def setup(app):
    """Register the generator (runs at ``builder-inited``, before the sources are read)."""
    app.add_config_value("pikflow_docs_require_docstrings", True, "env")
    app.connect("builder-inited", _generate)
    app.connect("autodoc-process-docstring", split_attribute_names, priority=400)  # before napoleon (500)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
