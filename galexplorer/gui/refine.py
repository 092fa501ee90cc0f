"""Model ▸ Refine the representation: ``galexplorer refine`` beside the window (issue #22 item 2).

The refine runs as its own process (the same command a user types, so the window and the command
line refine alike), never in the window's process: the window keeps answering while the encoder
trains. Its progress bars (tqdm on stderr) become status lines; when it ends the window opens the
new store, which holds the same objects in the same order and a copy of the journal, and puts back
the selection and the object in the inspector.

Why not the model process: it serves the refits, and a refine of a minute or more would hold every
refit back; a separate process keeps labelling and refitting going on the old store meanwhile
(labels given meanwhile are in the old journal only: the window says so when it switches).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from PySide6 import QtCore

_BAR = re.compile(r"^\s*([^:|]+):\s*(\d+)%")


def refined_path(store: str | Path) -> Path:
    """``store-refined.h5`` beside the store (``-refined-2``... when taken)."""
    store = Path(store)
    stem = store.name[:-3] if store.name.endswith(".h5") else store.stem
    k = 1
    while True:
        name = f"{stem}-refined{'' if k == 1 else f'-{k}'}.h5"
        out = store.with_name(name)
        if not out.exists() and not Path(str(out) + ".refine").exists():
            return out
        k += 1


def progress_line(text: str) -> str | None:
    """The latest progress line of a chunk of tqdm output ("refine 45%", "embedding 80%"...)."""
    for part in reversed(re.split(r"[\r\n]+", text)):
        m = _BAR.match(part)
        if m:
            return f"{m.group(1).strip()} {m.group(2)}%"
    return None


class RefineJob(QtCore.QObject):
    """One ``galexplorer refine STORE -o OUTPUT`` process.

    Signals:
        progressed(str): a status line ("refining the representation: refine 40%").
        finished(str): the new store's path.
        failed(str): the command's one-line error (or how it ended).
    """

    progressed = QtCore.Signal(str)
    finished = QtCore.Signal(str)
    failed = QtCore.Signal(str)

    def __init__(self, store: str | Path, output: str | Path, user: str | None = None, parent=None,
                 extra: list[str] | None = None):
        super().__init__(parent)
        self.store, self.output = Path(store), Path(output)
        self.proc = QtCore.QProcess(self)
        self.proc.setProcessChannelMode(QtCore.QProcess.ProcessChannelMode.SeparateChannels)
        self.proc.readyReadStandardError.connect(self._on_stderr)
        self.proc.finished.connect(self._on_finished)
        self.proc.errorOccurred.connect(self._on_error)
        self._err = ""
        self.args = ["-m", "galexplorer", "refine", str(self.store), "-o", str(self.output), *(extra or [])]
        if user:
            self.args += ["--user", user]

    def start(self) -> None:
        self.progressed.emit("refining the representation: starting")
        self.proc.start(sys.executable, self.args)

    @property
    def running(self) -> bool:
        return self.proc.state() != QtCore.QProcess.ProcessState.NotRunning

    def cancel(self) -> None:
        if self.running:
            self.proc.kill()
            self.proc.waitForFinished(5000)

    def _on_stderr(self) -> None:
        text = bytes(self.proc.readAllStandardError()).decode("utf-8", "replace")
        self._err = (self._err + text)[-4000:]
        line = progress_line(text)
        if line:
            self.progressed.emit(f"refining the representation: {line}")

    def _on_error(self, error) -> None:
        if error == QtCore.QProcess.ProcessError.FailedToStart:
            self.failed.emit(f"the refine could not start ({self.proc.errorString()})")

    def _on_finished(self, code: int, status) -> None:
        if status == QtCore.QProcess.ExitStatus.NormalExit and code == 0 and self.output.exists():
            self.finished.emit(str(self.output))
            return
        lines = [ln.strip() for ln in re.split(r"[\r\n]+", self._err) if ln.strip() and not _BAR.match(ln)]
        error = next((ln for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines else "")
        self.failed.emit(error or f"the refine ended with exit code {code}")
