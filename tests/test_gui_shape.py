"""Every GUI module is named in docs/architecture.md's map (#24 item 3; the line limits of every
module, the GUI's included, are tests/test_code_shape.py's)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUI = ROOT / "galexplorer" / "gui"


def test_every_gui_module_is_on_the_architecture_map():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [p.name for p in sorted(GUI.glob("*.py")) if p.name != "__init__.py" and f"`{p.name}`" not in text
               and f"`{p.stem}." not in text]
    assert missing == []
