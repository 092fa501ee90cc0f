"""The layering rules of docs/architecture.md, held by import-linter and a start-up check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is part of the dev extras"
    run = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_cli_starts_without_torch_or_qt():
    code = ("import sys, galexplorer.cli as c; c.build_parser(); "
            "bad = [m for m in ('torch', 'PySide6', 'pyqtgraph', 'umap') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_ruff_clean():
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert exe, "ruff is part of the dev extras"
    run = subprocess.run([exe, "check", "galexplorer", "tests", "benchmarks"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_layers_contract_fails_on_an_upward_import(tmp_path):
    """The layers contract is not vacuous: store importing labels (a layer above) breaks it."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    shutil.copytree(ROOT / "galexplorer", tmp_path / "galexplorer", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    ok = subprocess.run([exe, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    atomic = tmp_path / "galexplorer" / "store" / "atomic.py"
    atomic.write_text(atomic.read_text() + "\nfrom ..labels import journal  # noqa: E402,F401  deliberately upward\n")
    bad = subprocess.run([exe, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert bad.returncode != 0
    assert "layers" in bad.stdout and "BROKEN" in bad.stdout
    assert "galexplorer.store.atomic -> galexplorer.labels.journal" in bad.stdout


def _cli_leaks(path: Path) -> list[str]:
    """What in one module reaches for the command line: argparse imports, Namespace, parsed options,
    print() calls."""
    import ast
    import re

    text = path.read_text(encoding="utf-8")
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names):
            found.append(f"line {node.lineno}: import argparse")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "argparse":
            found.append(f"line {node.lineno}: from argparse import ...")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            found.append(f"line {node.lineno}: print()")
    for no, line in enumerate(text.splitlines(), 1):
        if re.search(r"\bNamespace\b|getattr\(args\b|\bdef \w+_from_cli\b", line):
            found.append(f"line {no}: {line.strip()}")
    return found


def test_no_argparse_below_the_cli():
    """Only cli.py parses the command line and prints: no module below it imports argparse, takes a
    Namespace or calls print()."""
    pkg = ROOT / "galexplorer"
    leaks = {}
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg).as_posix()
        if rel == "cli.py":
            continue
        if found := _cli_leaks(path):
            leaks[rel] = found
    assert not leaks, leaks


def test_the_argparse_check_finds_a_leak(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("import argparse\n\ndef run_from_cli(args):\n    print(args)\n    return getattr(args, 'x', None)\n")
    assert len(_cli_leaks(bad)) == 4
    (tmp_path / "ok.py").write_text("def run(store: str) -> int:\n    return 0\n")
    assert _cli_leaks(tmp_path / "ok.py") == []
