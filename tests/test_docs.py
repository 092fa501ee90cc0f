"""The documentation cannot go stale: its commands parse, its links resolve, its generated parts
are current, and README's commands are the ones CI runs.

Fast and light: argparse, ast and the Markdown text only (no torch, Qt, h5py or file access
beyond the docs themselves).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import re
import shlex
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: README's first two commands, word for word (the CI script runs the same steps)
DEMO_COMMAND = 'python3 -m venv .venv && . .venv/bin/activate && pip install -e . && galexplorer demo'
TEST_COMMAND = ('python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && '
                'QT_QPA_PLATFORM=offscreen python -m pytest')

#: fenced blocks in these languages hold code or data, never shell commands
NOT_SHELL = {"python", "py", "sql", "toml", "json", "yaml", "csv", "ini"}


# --------------------------------------------------------------------------------------------
# Markdown helpers
# --------------------------------------------------------------------------------------------

def fenced_blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """(language, first line number, lines) of every fenced code block."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start, body = m.group(2), m.group(3).lower(), i + 1, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        blocks.append((lang, start + 1, body))
        i += 1
    return blocks


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code spans (where links are not links)."""
    out = [""] * len(text.splitlines())            # code lines become blank: line numbers stay
    for number, line in outside_fences(text):
        out[number - 1] = re.sub(r"(`+)(?:(?!\1).)+?\1", "", line)
    return "\n".join(out)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", heading)      # images: their alt text
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)           # links: their text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in " -_" or cat[0] in "LN" or cat == "Mn":
            kept.append("-" if ch == " " else ch)
    return "".join(kept)


@functools.cache
def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file (duplicates numbered as GitHub does)."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose_keep_headings(path.read_text(encoding="utf-8")):
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = github_slug(m.group(2))
        n = seen.get(slug, 0)
        out.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    out |= set(re.findall(r'<a\s+(?:name|id)="([^"]+)"', path.read_text(encoding="utf-8")))
    return out


def outside_fences(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks (fence lines excluded)."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*(```+|~~~+)", line)
        if fence is None and m:
            fence = m.group(1)
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        out.append((number, line))
    return out


def prose_keep_headings(text: str) -> list[str]:
    """Lines outside fenced code blocks, inline code kept (it is part of a heading's slug)."""
    return [line for _, line in outside_fences(text)]


# --------------------------------------------------------------------------------------------
# 1. every command in the docs parses
# --------------------------------------------------------------------------------------------

def shell_lines(block: list[str]) -> list[tuple[int, str]]:
    """Logical lines of a shell block: `\\` continuations joined, `$ ` prompts dropped."""
    out, buf, start = [], "", 0
    for k, raw in enumerate(block):
        line = raw.rstrip()
        if not buf:
            start = k
            line = re.sub(r"^\s*\$\s+", "", line)
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append((start, (buf + line).strip()))
        buf = ""
    if buf:
        out.append((start, buf.strip()))
    return out


def galexplorer_argv(segment: list[str]) -> list[str] | None:
    """The galexplorer arguments of one simple command, or None when it runs something else.

    Recognises ``galexplorer ...``, ``python -m galexplorer ...``, ``torchrun ... -m galexplorer ...``
    and any of these after ``env`` and ``VAR=value`` assignments.
    """
    words = list(segment)
    while words and (words[0] == "env" or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0])):
        words.pop(0)
    if not words:
        return None
    if words[0] == "galexplorer":
        return words[1:]
    if words[0] in ("python", "python3", "torchrun") or words[0].endswith("/python"):
        for i in range(len(words) - 1):
            if words[i] == "-m" and words[i + 1] == "galexplorer":
                return words[i + 2:]
    return None


def split_commands(line: str) -> list[list[str]]:
    """Shell words of each simple command in ``line`` (split at &&, ||, ;, |; comments dropped)."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lex.whitespace_split = True
    lex.commenters = "#"
    commands, cur = [], []
    for tok in lex:
        if tok and set(tok) <= set(";&|"):
            commands.append(cur)
            cur = []
        else:
            cur.append(tok)
    commands.append(cur)
    return [c for c in commands if c]


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every galexplorer command in the docs: the fenced shell blocks, and the
    synopses in indented code blocks (``galexplorer rank STORE.h5 [--scorer gp|knn] [--top N]``)."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for lang, first, body in fenced_blocks(text):
            if lang in NOT_SHELL:
                continue
            for offset, line in shell_lines(body):
                # an error message quoted in the docs ("galexplorer embed: error: ...") is output
                if re.match(r"^galexplorer( \w+)?:", line):
                    continue
                try:
                    commands = split_commands(line)
                except ValueError:       # unbalanced quotes: prose or output, not a command
                    continue
                for words in commands:
                    argv = galexplorer_argv(words)
                    if argv is not None:
                        found.append((f"{doc.relative_to(ROOT)}:{first + offset}", argv))
        for number, line in indented_code(text):
            for argv in synopsis_argvs(line):
                found.append((f"{doc.relative_to(ROOT)}:{number}", argv))
    return found


def indented_code(text: str) -> list[tuple[int, str]]:
    """(line number, text) of the lines of indented code blocks outside fenced blocks."""
    out, prev_blank_or_code = [], True
    for number, line in outside_fences(text):
        code = line.startswith("    ") and line.strip() and prev_blank_or_code
        if code:
            out.append((number, line.strip()))
        prev_blank_or_code = not line.strip() or bool(code)
    return out


def synopsis_argvs(line: str) -> list[list[str]]:
    """The argvs of a command synopsis: [optional] parts kept, each of the a|b alternatives in
    turn, CAPITAL placeholders as a value; none for lines that are not a galexplorer command
    (output such as "galexplorer refit + score: 1.9 s")."""
    from galexplorer.cli import COMMANDS

    line = re.sub(r"^\$\s+", "", line)
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return []
    if len(words) < 2 or words[0] != "galexplorer" or words[1] not in COMMANDS:
        return []
    options = [[a for a in w.strip("[]").split("|") if a] for w in words[1:] if w.strip("[]")]
    options = [["1" if re.fullmatch(r"[A-Z][A-Z_]*", a) else a for a in alts] for alts in options]
    return [[alts[min(k, len(alts) - 1)] for alts in options] for k in range(max(map(len, options)))]


@functools.lru_cache(maxsize=1)
def _parser():
    from galexplorer.cli import build_parser

    return build_parser()


def parse_like_main(argv: list[str]) -> str | None:
    """Parse ``argv`` as ``galexplorer.cli.main`` does; the error text, or None when it parses."""
    flags = {"-v": "--verbose", "--verbose": "--verbose", "-q": "--quiet", "--quiet": "--quiet"}
    argv = [flags[a] for a in argv if a in flags] + [a for a in argv if a not in flags]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = _parser().parse_args(argv)
        except SystemExit as exc:
            return None if exc.code == 0 else (err.getvalue().strip() or f"exit {exc.code}")
    if not args.command:
        return "no command"
    return None


def inline_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of `galexplorer COMMAND ...` code spans in the prose, placeholders filled
    (CAPITALS -> 1, i/n -> 0/1)."""
    from galexplorer.cli import COMMANDS

    found = []
    for doc in DOCS:
        for line in prose_keep_headings(doc.read_text(encoding="utf-8")):
            for span in re.findall(r"(?<!`)`([^`]+)`(?!`)", line):
                if not span.startswith("galexplorer "):
                    continue
                try:
                    words = shlex.split(span)
                except ValueError:
                    continue
                if words[1] not in COMMANDS and not words[1].startswith("-"):
                    continue                  # "galexplorer COMMAND", "galexplorer refit + score: ..."
                words = ["1" if re.fullmatch(r"[A-Z][A-Z_]*", w) else "0/1" if w == "i/n" else w
                         for w in words[1:]]
                found.append((str(doc.relative_to(ROOT)), words))
    return found


#: a span in prose may name a command or an option without the rest of the line
INCOMPLETE = ("the following arguments are required", "expected one argument")


def test_inline_commands_parse():
    spans = inline_commands()
    assert len(spans) > 30
    bad = []
    for where, argv in spans:
        error = parse_like_main(argv)
        if error and not any(text in error for text in INCOMPLETE):
            bad.append(f"{where}: `galexplorer {shlex.join(argv)}`: {error}")
    assert not bad, "\n".join(bad)


def test_the_docs_hold_commands():
    cmds = documented_commands()
    assert len(cmds) > 40, "the command extraction found almost nothing: is the Markdown parsing broken?"
    where = {w.split(":")[0] for w, _ in cmds}
    assert {"README.md", "docs/getting-started.md", "docs/troubleshooting.md"} <= where


@pytest.mark.parametrize("where,argv", documented_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_documented_command_parses(where, argv):
    error = parse_like_main(argv)
    assert error is None, f"{where}: `galexplorer {shlex.join(argv)}` does not parse: {error}"


def test_parse_check_catches_bad_commands():
    assert parse_like_main(["ingest", "x.fits"]) is not None                 # -o is required
    assert parse_like_main(["rank", "s.h5", "--scorer", "magic"]) is not None
    assert parse_like_main(["train", "c.h5", "-o", "run", "--epochs", "0"]) is not None
    assert parse_like_main(["embed", "c.h5", "--run", "run", "-o", "s.h5", "-v"]) is None
    assert split_commands('a && galexplorer demo --out "my dir"  # comment') == \
        [["a"], ["galexplorer", "demo", "--out", "my dir"]]
    assert galexplorer_argv(["torchrun", "--nproc_per_node=4", "-m", "galexplorer", "train", "c.h5"]) == \
        ["train", "c.h5"]
    assert shell_lines(["$ galexplorer ingest a \\", "    -o b.h5"]) == [(0, "galexplorer ingest a      -o b.h5")]
    assert synopsis_argvs("galexplorer rank STORE.h5 [--scorer gp|knn] [--top N]") == \
        [["rank", "STORE.h5", "--scorer", "gp", "--top", "1"], ["rank", "STORE.h5", "--scorer", "knn", "--top", "1"]]
    assert synopsis_argvs("galexplorer refit + score: 1.89 s") == []


# --------------------------------------------------------------------------------------------
# 2. README's commands are the ones CI runs
# --------------------------------------------------------------------------------------------

def test_readme_starts_with_the_demo_and_the_tests():
    blocks = [b for b in fenced_blocks((ROOT / "README.md").read_text(encoding="utf-8")) if b[0] != "python"]
    first = [line for _, line in shell_lines(blocks[0][2]) if line]
    second = [line for _, line in shell_lines(blocks[1][2]) if line]
    assert first == [DEMO_COMMAND]
    assert second == [TEST_COMMAND]


def test_ci_installs_and_tests_as_readme_says():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    steps = [" ".join(c) for c in split_commands(TEST_COMMAND)]
    *setup, test = steps
    for step in setup:                       # python3 -m venv .venv, activate, pip install -e ".[dev]"
        assert any(" ".join(c) == step for line in ci if line and not line.startswith("#")
                   for c in split_commands(line)), f".ci/run does not run `{step}`"
    env, run = test.split(" ", 1)            # QT_QPA_PLATFORM=offscreen python -m pytest
    assert f"export {env}" in ci, f".ci/run does not set {env}"
    assert any(line.startswith(run) for line in ci), f".ci/run does not run `{run}`"


# --------------------------------------------------------------------------------------------
# 3. links and images resolve
# --------------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def relative_links() -> list[tuple[str, Path, str]]:
    out = []
    for doc in DOCS:
        for target in LINK.findall(prose(doc.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):      # http:, https:, mailto:
                continue
            out.append((str(doc.relative_to(ROOT)), doc, target))
    return out


@pytest.mark.parametrize("where,doc,target", relative_links(), ids=lambda v: v if isinstance(v, str) else "")
def test_link_resolves(where, doc, target):
    path, _, anchor = target.partition("#")
    dest = (doc.parent / path).resolve() if path else doc
    assert dest.exists(), f"{where}: link to {target}: no such file {dest}"
    if anchor:
        assert dest.suffix == ".md", f"{where}: anchor into a non-Markdown file: {target}"
        assert anchor in anchors(dest), f"{where}: no heading for #{anchor} in {dest.name}"


def test_slugs_follow_github():
    assert github_slug("The label journal (`STORE.h5.labels.sqlite`)") == "the-label-journal-storeh5labelssqlite"
    assert github_slug("Several GPUs (torchrun)") == "several-gpus-torchrun"
    assert github_slug("4. The loop: what to look at next") == "4-the-loop-what-to-look-at-next"
    assert github_slug("CPU or GPU?") == "cpu-or-gpu"
    assert len(relative_links()) > 20


# --------------------------------------------------------------------------------------------
# 4. the generated error reference is current
# --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _sites():
    return _catalogue().collect()


@functools.lru_cache(maxsize=1)
def _catalogue():
    spec = importlib.util.spec_from_file_location("error_catalogue", ROOT / "docs" / "tools" / "error_catalogue.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod          # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[spec.name]
    return mod


def test_error_reference_is_current():
    cat = _catalogue()
    doc = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    a, b = doc.find(cat.BEGIN), doc.find(cat.END)
    assert 0 <= a < b, "docs/troubleshooting.md lost its generated-section markers"
    assert doc[a:b + len(cat.END)] == cat.render(_sites()), \
        "docs/troubleshooting.md's error reference is out of date: run python docs/tools/error_catalogue.py"


def test_error_catalogue_reads_every_raise():
    sites = _sites()
    raises = 0
    for p in (ROOT / "galexplorer").rglob("*.py"):
        raises += len(re.findall(r"raise (?:InputError|StoreError|ConfigError|CheckpointError|LabelError|"
                                 r"GalexplorerError|NotBuiltError)\(", p.read_text(encoding="utf-8")))
    assert len({(s.module, s.message) for s in sites}) >= 0.9 * raises
    assert any(s.message == "FILE: no such file" and s.cls == "StoreError" for s in sites)
    assert not [s for s in sites if not s.message.strip()]


def template_regex(message: str, hint: str) -> re.Pattern:
    """A catalogue entry as a regex over what the user sees: placeholders match anything, and
    any message may be prefixed by a file (errors re-raised with the file they concern)."""
    rx = re.escape(message + (f"; {hint}" if hint else ""))
    rx = re.sub(r"a\\\(n\\\)\\ \\\{\w+\\\}", ".+?", rx)       # a(n) {what}
    rx = re.sub(r"\\\{[\w.]+\\\}", ".*?", rx)                        # {name}
    rx = rx.replace("…", ".*?").replace("FILE:\\ ", ".+?:\\ ")
    return re.compile(r"(?:.+?: )?" + rx + "$")


def quoted_errors() -> list[tuple[str, str]]:
    """(where, message) of every `galexplorer CMD: error: ...` line quoted in a fenced block
    (a message wrapped over several lines is joined)."""
    from galexplorer.cli import COMMANDS

    found = []
    for doc in DOCS:
        for _, first, body in fenced_blocks(doc.read_text(encoding="utf-8")):
            joined: list[tuple[int, str]] = []
            for k, line in enumerate(body):
                if line.startswith("galexplorer ") or not joined or not line.strip():
                    joined.append((k, line.strip()))
                else:
                    joined[-1] = (joined[-1][0], joined[-1][1] + " " + line.strip())
            for k, line in joined:
                m = re.match(r"^galexplorer (\w+): error: (.*)$", line)
                if m and m.group(1) in COMMANDS:
                    found.append((f"{doc.relative_to(ROOT)}:{first + k}", m.group(2)))
    return found


#: messages argparse writes itself, and cli.py's out-of-memory and operating-system errors
#: (not in the catalogue)
ARGPARSE = re.compile(r"(the following arguments are required|argument [-\w/]+: |unrecognized arguments"
                      r"|out of memory; |.*\berrno\b)", re.I)


def test_quoted_errors_are_ones_the_code_can_print():
    patterns = [template_regex(s.message, s.hint) for s in _sites()]
    quoted = quoted_errors()
    assert len(quoted) > 15
    stale = [f"{where}: {text}" for where, text in quoted
             if not ARGPARSE.match(text) and not any(p.match(text) for p in patterns)]
    assert not stale, "messages quoted in the docs that the code no longer prints (rerun the " \
                      "command and copy what it says):\n" + "\n".join(stale)
    assert not template_regex("FILE: no such file", "check the path").match("x.h5: no such folder; check")


# --------------------------------------------------------------------------------------------
# 5. the user guide's shortcut table is the action table's
# --------------------------------------------------------------------------------------------

def keymap_keys() -> set[str]:
    """Every key of the action table (galexplorer/gui/actions.py), which imports no Qt."""
    from galexplorer.gui.actions import SHORTCUTS

    return {k for s in SHORTCUTS for k in s.keys}


def test_the_action_table_imports_no_qt():
    code = ("import sys, galexplorer.gui.actions as a; assert a.SHORTCUTS; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))]; assert not bad, bad")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]


def guide_shortcut_table() -> set[str]:
    """Keys in the first column of the table under the user guide's 'Every shortcut' heading."""
    lines = (ROOT / "docs" / "user-guide.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^#+\s+Every shortcut", line))
    keys, in_table = set(), False
    for line in lines[start + 1:]:
        if line.startswith("|"):
            in_table = True
            first = line.split("|")[1]
            if set(first.strip()) <= set("-: ") or first.strip() == "Keys":
                continue
            keys |= set(re.findall(r"`([^`]+)`", first))
        elif in_table:
            break
    return keys


def test_user_guide_shortcut_table_is_the_keymap():
    # tests/test_gui_parts.py checks that the guide mentions every key; this checks the table
    # lists nothing else (no shortcut that was renamed or removed)
    documented, actual = guide_shortcut_table(), keymap_keys()
    assert len(actual) > 20
    assert documented == actual, (f"only in the user guide: {sorted(documented - actual)}; "
                                  f"only in keymap.py: {sorted(actual - documented)}")
