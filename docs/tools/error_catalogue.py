"""Collect every error message galexplorer can raise and render them as Markdown.

The messages are read from the source with :mod:`ast` (nothing is imported or run): every call
of one of the typed exceptions of ``galexplorer/errors.py`` (and their subclasses defined
elsewhere in the package), with its message template, its hint, its exception class and its
module. Parts of a message only known at run time are shown as ``{name}`` (a variable's name)
or ``…`` (an expression); a message built in one of several ways is listed once per way.

    python docs/tools/error_catalogue.py            # rewrite the section of docs/troubleshooting.md
    python docs/tools/error_catalogue.py --check    # exit 1 if the section is out of date
    python docs/tools/error_catalogue.py --print    # print the section

``tests/test_docs.py`` runs the check, so the reference cannot drift from the code.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "galexplorer"
DOC = ROOT / "docs" / "troubleshooting.md"
BEGIN = "<!-- BEGIN GENERATED ERRORS (docs/tools/error_catalogue.py; do not edit by hand) -->"
END = "<!-- END GENERATED ERRORS -->"

#: the base of every user-facing error; its subclasses are found in the source
BASE = "GalexplorerError"
#: a message built in more ways than this is shown once, with its varying parts as "…"
MAX_VARIANTS = 6
ELLIPSIS = "…"

#: (module path prefix, section title, what the section covers); the first match wins
SECTIONS: list[tuple[str, str, str]] = [
    ("cli.py:_run_embed", "galexplorer embed",
     "Option combinations `embed` refuses before it starts."),
    ("cli.py", "Any command", "Raised by the command line itself."),
    ("info.py", "galexplorer info", ""),
    ("explore/merge.py", "galexplorer embed", "Joining shard stores (`--merge`)."),
    ("store/ranking.py", "galexplorer rank (and the explorer's model)", ""),
    ("store/", "Opening a cutouts file or a store (any command)",
     "Every command checks a file when it opens it. `{what}` is the kind of file the command "
     "expected (a cutouts file, an embedding store, a ranking file) and `{fix}` the command "
     "that makes one."),
    ("data/", "galexplorer ingest",
     "Reading FITS, images, HDF5 cubes, catalogues and mosaics. See also [ingest](ingest.md#errors)."),
    ("ssl/embed.py", "galexplorer embed", "Embedding cutouts with a trained encoder (`--run`)."),
    ("ssl/", "galexplorer train",
     "Options, configuration files, checkpoints and weights. See also [training](training.md#errors)."),
    ("explore/external.py", "galexplorer embed",
     "Your own embeddings (`--embeddings`); see [embeddings](embeddings.md)."),
    ("explore/", "galexplorer embed", "PCA, the 2-D map, anomaly scores, clusters, similarity search."),
    ("labels/", "The label journal (open, rank, export, simulate)", ""),
    ("active/session.py", "galexplorer open", "The explorer shows these in a dialog or the status bar."),
    ("active/simulate.py", "galexplorer simulate", ""),
    ("active/oracle.py", "galexplorer simulate", ""),
    ("active/metrics.py", "galexplorer simulate", ""),
    ("active/", "galexplorer rank (and the explorer's model)", "The scorers, the Gaussian process and the loop."),
    ("export.py", "galexplorer export", ""),
    ("gui/", "galexplorer open", "The explorer shows these in a dialog or the status bar."),
    ("demo.py", "galexplorer demo", ""),
]
ORDER = ["Any command", "Opening a cutouts file or a store (any command)", "galexplorer ingest",
         "galexplorer train", "galexplorer embed", "galexplorer info", "galexplorer open",
         "The label journal (open, rank, export, simulate)", "galexplorer rank (and the explorer's model)",
         "galexplorer export", "galexplorer simulate", "galexplorer demo"]


@dataclass(frozen=True)
class ErrorSite:
    module: str          # path relative to galexplorer/, e.g. "data/fits.py"
    function: str        # enclosing function ("" at module level)
    cls: str             # exception class
    message: str         # template, "FILE: " in front when the error names a file
    hint: str            # what to do ("" when none)


# --------------------------------------------------------------------------------------------
# rendering expressions as templates
# --------------------------------------------------------------------------------------------

class _Scope:
    """What a name in a message can be resolved to: assignments in the enclosing function
    (before the call) and module-level constants. Built once per function."""

    def __init__(self, func: ast.AST | None, module_consts: dict[str, list[ast.expr]]):
        self.assign: dict[str, list[tuple[int, ast.expr]]] = {}
        self.appends: dict[str, list[tuple[int, ast.expr]]] = {}
        self.params: set[str] = set()
        self.consts = module_consts
        self.line = 0
        if func is None:
            return
        args = func.args
        self.params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.assign.setdefault(node.targets[0].id, []).append((node.lineno, node.value))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                self.assign.setdefault(node.target.id, []).append((node.lineno, node.value))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "append" and isinstance(node.func.value, ast.Name) and node.args:
                self.appends.setdefault(node.func.value.id, []).append((node.lineno, node.args[0]))

    def at(self, line: int) -> _Scope:
        """This scope as seen from a call on ``line`` (only earlier assignments count)."""
        self.line = line
        return self

    def _before(self, items: list[tuple[int, ast.expr]]) -> list[ast.expr]:
        return [v for ln, v in items if ln < self.line]

    def lookup(self, name: str) -> list[ast.expr] | None:
        found = self._before(self.assign.get(name, []))
        if found:
            return found
        if name in self.consts and name not in self.params:
            return self.consts[name]
        return None

    def appended(self, name: str) -> list[ast.expr]:
        return self._before(self.appends.get(name, []))


def _placeholder(node: ast.expr) -> str:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_a" \
            and len(node.args) == 1 and isinstance(node.args[0], ast.Name):
        return "a(n) {" + node.args[0].id + "}"          # store/schema.py's article helper
    if isinstance(node, ast.Name):
        return "{" + node.id + "}"
    if isinstance(node, ast.Attribute):
        return "{" + node.attr + "}"
    return ELLIPSIS


def _is_text(node: ast.expr) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(node, ast.JoinedStr)


def _variants(node: ast.expr, scope: _Scope, depth: int = 0) -> list[str]:
    """The texts ``node`` can evaluate to, with unknown parts as placeholders."""
    if depth > 6:
        return [ELLIPSIS]
    if isinstance(node, ast.Constant):
        return [str(node.value)] if node.value is not None else [""]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append([str(v.value)])
            else:  # FormattedValue: a short conditional text is spelt out, anything else named
                inner = v.value
                if isinstance(inner, ast.IfExp) and _is_text(inner.body) and _is_text(inner.orelse):
                    parts.append(_variants(inner, scope, depth + 1))
                else:
                    parts.append([_placeholder(inner)])
        return _product(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _product([_variants(node.left, scope, depth + 1), _variants(node.right, scope, depth + 1)])
    if isinstance(node, ast.IfExp):
        out = _variants(node.body, scope, depth + 1) + _variants(node.orelse, scope, depth + 1)
        return list(dict.fromkeys(out))
    if isinstance(node, ast.Name):
        found = scope.lookup(node.id)
        if found:
            out = [t for expr in found for t in _variants(expr, scope, depth + 1)]
            return list(dict.fromkeys(out))
        return ["{" + node.id + "}"]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" \
            and isinstance(node.func.value, ast.Constant) and len(node.args) == 1 \
            and isinstance(node.args[0], ast.Name) and scope.appended(node.args[0].id):
        # "; ".join(parts) of parts.append(...): every part, joined
        pieces = [_variants(e, scope, depth + 1)[0] for e in scope.appended(node.args[0].id)]
        return [node.func.value.value.join(pieces)]
    return [_placeholder(node)]


def _product(parts: list[list[str]]) -> list[str]:
    n = 1
    for p in parts:
        n *= len(p)
    if n > MAX_VARIANTS:  # too many ways: keep the fixed text, mark the varying parts
        parts = [p if len(p) == 1 else [ELLIPSIS] for p in parts]
    return list(dict.fromkeys("".join(t) for t in itertools.product(*parts)))


# --------------------------------------------------------------------------------------------
# collecting
# --------------------------------------------------------------------------------------------

def _error_classes(trees: dict[str, ast.Module]) -> set[str]:
    """GalexplorerError and every class in the package that derives from it (by name)."""
    found = {BASE}
    bases = {}
    for tree in trees.values():
        for node in tree.body:            # exception classes are defined at module level
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                                    for b in node.bases]
    changed = True
    while changed:
        changed = False
        for name, bs in bases.items():
            if name not in found and any(b in found for b in bs):
                found.add(name)
                changed = True
    return found


def _module_consts(tree: ast.Module) -> dict[str, list[ast.expr]]:
    out: dict[str, list[ast.expr]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and _is_text(node.value):
            out.setdefault(node.targets[0].id, []).append(node.value)
    return out


def _arg(call: ast.Call, pos: int, name: str) -> ast.expr | None:
    if len(call.args) > pos:
        return call.args[pos]
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def collect(package: Path = PACKAGE) -> list[ErrorSite]:
    """Every construction of a galexplorer error in ``package``, in file and line order."""
    trees = {p.relative_to(package).as_posix(): ast.parse(p.read_text(encoding="utf-8"), filename=str(p))
             for p in sorted(package.rglob("*.py"))}
    classes = _error_classes(trees)
    sites: list[ErrorSite] = []
    for module, tree in trees.items():
        if module == "errors.py":
            continue
        consts = _module_consts(tree)
        funcs: list[ast.AST] = []
        calls: list[ast.Call] = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                funcs.append(node)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in classes \
                    and node.args:
                calls.append(node)
        scopes: dict[int, _Scope] = {}
        for call in sorted(calls, key=lambda n: (n.lineno, n.col_offset)):
            # the innermost function around the call
            around = [f for f in funcs if f.lineno <= call.lineno <= f.end_lineno]
            func = max(around, key=lambda f: f.lineno) if around else None
            fname = func.name if func is not None else ""
            key = id(func)
            if key not in scopes:
                scopes[key] = _Scope(func, consts)
            scope = scopes[key].at(call.lineno)
            path = _arg(call, 1, "path")
            names_file = path is not None and not (isinstance(path, ast.Constant) and path.value is None)
            hint = _arg(call, 2, "hint")
            hints = _variants(hint, scope) if hint is not None else [""]
            for msg in _variants(call.args[0], scope):
                if msg == ELLIPSIS and isinstance(call.args[0], ast.Call):
                    msg = "… (the text of the underlying error)"
                for h in hints:
                    sites.append(ErrorSite(module, fname, call.func.id,
                                           ("FILE: " if names_file else "") + " ".join(msg.split()),
                                           " ".join(h.split())))
    return sites


def section_of(site: ErrorSite) -> tuple[str, str, str]:
    """(section title, the matching prefix of SECTIONS, its blurb)."""
    key = f"{site.module}:{site.function}"
    for prefix, title, blurb in SECTIONS:
        if key.startswith(prefix):
            return title, prefix, blurb
    return "Any command", "", ""


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------

def _code(text: str) -> str:
    """An inline code span that survives backticks and table pipes."""
    text = text.replace("|", "\\|")
    if "`" in text:
        return f"`` {text} ``"
    return f"`{text}`"


def _cell(text: str) -> str:
    """Hints are prose with commands in backticks: keep them, escape pipes."""
    return text.replace("|", "\\|") if text else "—"


def render(sites: list[ErrorSite] | None = None) -> str:
    """The generated reference, between (and including) the BEGIN/END markers."""
    sites = collect() if sites is None else sites
    by_section: dict[str, list[ErrorSite]] = {}
    blurbs: dict[tuple[str, str], str] = {}
    shown: set[str] = set()
    for s in sites:
        title, prefix, blurb = section_of(s)
        by_section.setdefault(title, []).append(s)
        if blurb and prefix not in shown:      # a blurb once, above the first module it covers
            shown.add(prefix)
            blurbs[(title, s.module)] = blurb
    n = len({(s.module, s.cls, s.message, s.hint) for s in sites})
    out = [BEGIN, "", f"{n} messages from {len({s.module for s in sites})} modules, grouped by the command "
           "that shows them and then by module. `FILE: ` stands for the file the message names; "
           "`{name}` and `…` for what is only known when it happens. The type is the exception's "
           "class in `galexplorer/errors.py` (all are exit code 2).", ""]
    for title in sorted(by_section, key=lambda t: ORDER.index(t) if t in ORDER else len(ORDER)):
        out += [f"### {title}", ""]
        modules = list(dict.fromkeys(s.module for s in by_section[title]))
        for module in modules:
            out += [f"#### `galexplorer/{module}`", ""]
            if (title, module) in blurbs:
                out += [blurbs[(title, module)], ""]
            out += ["| message | what to do | type |", "|---|---|---|"]
            seen = set()
            for s in by_section[title]:
                key = (s.cls, s.message, s.hint)
                if s.module != module or key in seen:
                    continue
                seen.add(key)
                out.append(f"| {_code(s.message)} | {_cell(s.hint)} | {s.cls} |")
            out.append("")
    out.append(END)
    return "\n".join(out)


def splice(doc: str, section: str) -> str:
    """``doc`` with the text between the markers replaced by ``section``."""
    a, b = doc.find(BEGIN), doc.find(END)
    if a < 0 or b < a:
        raise SystemExit(f"{DOC}: the markers {BEGIN!r} and {END!r} are missing")
    return doc[:a] + section + doc[b + len(END):]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true", help="exit 1 if docs/troubleshooting.md is out of date")
    g.add_argument("--print", action="store_true", help="print the generated section")
    args = p.parse_args(argv)
    section = render()
    if args.print:
        print(section)
        return 0
    doc = DOC.read_text(encoding="utf-8")
    new = splice(doc, section)
    if args.check:
        if new != doc:
            print(f"{DOC}: the error reference is out of date; run python docs/tools/error_catalogue.py",
                  file=sys.stderr)
            return 1
        return 0
    if new != doc:
        DOC.write_text(new, encoding="utf-8")
        print(f"updated {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
