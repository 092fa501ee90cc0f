"""The GUI package stays in pieces a reader can hold (#24 item 3): no class over 450 lines, no
function over 80, and every module named in docs/architecture.md's map."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUI = ROOT / "galexplorer" / "gui"
MAX_CLASS, MAX_FUNCTION = 450, 80


def _too_long() -> list[str]:
    out = []
    for path in sorted(GUI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            limit = MAX_CLASS if isinstance(node, ast.ClassDef) else \
                MAX_FUNCTION if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
            if limit is not None and node.end_lineno - node.lineno + 1 > limit:
                out.append(f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    return out


def test_no_gui_class_over_450_lines_or_function_over_80():
    assert _too_long() == []


def test_every_gui_module_is_on_the_architecture_map():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [p.name for p in sorted(GUI.glob("*.py")) if p.name != "__init__.py" and f"`{p.name}`" not in text
               and f"`{p.stem}." not in text]
    assert missing == []
