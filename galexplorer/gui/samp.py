"""Send objects to TOPCAT, DS9 or Aladin over SAMP (``pyvo.samp``), when a hub is running.

The explorer writes the objects as a VOTable (the same writer as ``galexplorer export``) and
sends ``table.load.votable`` to every client that takes it, as a SAMP *call*, so that each
client's answer says whether it loaded the table; an object's cutout goes out the same way as a
FITS image with its WCS (``image.load.fits``). ``coord.pointAt.sky`` and a selection of rows of a
table already sent (``table.select.rowList``) go out as notifications. A row that another program
highlights in a table we sent (``table.highlight.row``: a click in TOPCAT) comes back as the
object's store index, to the callback given to :meth:`SampSender.on_highlight`. Nothing here
imports Qt: the main window runs these calls in a worker thread, because connecting to a hub is
network I/O, and the highlight callback runs in pyvo's receiving thread.

Misbehaving peers must not hang that worker, nor leave the explorer attached to a dead hub:

* every call to the hub runs with a time limit (:data:`HUB_TIMEOUT_S`): pyvo's XML-RPC has none,
  and a hub that stopped answering (suspended, hung) would otherwise block the worker forever —
  and with it every export queued behind the send, and closing the window;
* the answers are awaited for at most :data:`ANSWER_TIMEOUT_S`; a client that does not answer in
  time, or that unregisters before answering, is named in the report instead of waited for;
* after any failure the connection is dropped, so the next send joins whatever hub runs then.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GalexplorerError

log = logging.getLogger(__name__)

#: seconds one call to the hub (connect, send, a client's name) may take
HUB_TIMEOUT_S = 5.0
#: seconds the clients have to answer a table
ANSWER_TIMEOUT_S = 10.0
#: tables sent whose rows a highlight can still name (the older ones are forgotten)
KEEP_TABLES = 8
#: how often, while waiting for answers, the hub is asked who is still registered
POLL_S = 0.2


class SampError(GalexplorerError):
    """No SAMP hub, or the hub refused the message, did not answer, or went away."""


def hub_lockfile() -> Path | None:
    """The standard profile's lock file when a hub has written one (``$SAMP_HUB`` or ~/.samp)."""
    env = os.environ.get("SAMP_HUB", "")
    if env.startswith("std-lockurl:"):
        from urllib.parse import urlparse

        p = Path(urlparse(env[len("std-lockurl:"):]).path)
        return p if p.exists() else None
    p = Path.home() / ".samp"
    return p if p.exists() else None


def hub_running() -> bool:
    return hub_lockfile() is not None


@dataclass
class SendReport:
    """What became of one ``table.load.votable`` call.

    Attributes:
        rows: objects in the table.
        what: what was sent, for the summary ("" for ``rows`` objects as a table).
        loaded: names of the clients that answered OK.
        refused: (name, their error text) of the clients that answered with an error.
        silent: names of the clients that did not answer within the time limit.
        left: names of the clients that unregistered before answering.
    """

    rows: int
    what: str = ""
    loaded: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    answer_timeout: float = ANSWER_TIMEOUT_S

    @property
    def recipients(self) -> int:
        return len(self.loaded) + len(self.refused) + len(self.silent) + len(self.left)

    def summary(self) -> str:
        """One line for the window's status bar."""
        if self.what and not self.recipients:
            return f"not sent over SAMP: no client takes images; start DS9 or Aladin and send {self.what} again"
        if not self.recipients:
            return (f"not sent over SAMP: no client takes tables; start TOPCAT (or another table viewer) "
                    f"and send the {self.rows:,} objects again")
        parts = [f"sent {self.what or f'{self.rows:,} objects'} over SAMP"
                 + (f" to {', '.join(self.loaded)}" if self.loaded else ", but no client loaded them")]
        parts += [f"{name} refused them ({why})" for name, why in self.refused]
        if self.silent:
            parts.append(f"{', '.join(self.silent)} did not answer within {self.answer_timeout:g} s")
        if self.left:
            parts.append(f"{', '.join(self.left)} disconnected before answering")
        return "; ".join(parts)


class SampSender:
    """A SAMP client that connects on first use and stays connected until something fails.

    Args:
        name: the name other clients see.
        timeout: seconds one call to the hub may take (default :data:`HUB_TIMEOUT_S`).
        answer_timeout: seconds the clients have to answer a table (default :data:`ANSWER_TIMEOUT_S`).

    Raises:
        SampError: no hub is running, or it cannot be reached, refuses the message, does not
            answer within ``timeout``, or goes away while the clients are answering.
    """

    def __init__(self, name: str = "galexplorer", timeout: float | None = None,
                 answer_timeout: float | None = None):
        self.name = name
        self.timeout = float(HUB_TIMEOUT_S if timeout is None else timeout)
        self.answer_timeout = float(ANSWER_TIMEOUT_S if answer_timeout is None else answer_timeout)
        self._client = None
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()
        self._answers: dict[str, dict[str, dict]] = {}    # msg-tag -> responder id -> response
        self._tags = 0
        #: table-id -> (url, store index of each row) of the tables sent, the last one last
        self._tables: dict[str, tuple[str, np.ndarray]] = {}
        self._on_highlight: Callable[[int, str], None] | None = None

    # -- calls with a time limit --------------------------------------------------------------
    def _bounded(self, fn: Callable[[], Any], what: str, timeout: float | None = None) -> Any:
        """``fn()`` in a helper thread, waited for at most ``timeout`` seconds (default: the
        sender's).

        The helper is a daemon thread: a call stuck on a socket that never answers is left to
        end when that socket closes, and the connection it belonged to is dropped.
        """
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:   # handed to the caller
                box["error"] = exc

        limit = self.timeout if timeout is None else float(timeout)
        t = threading.Thread(target=run, name="samp-call", daemon=True)
        t.start()
        t.join(limit)
        if t.is_alive():
            self._drop()
            raise SampError(f"the SAMP hub did not answer {what} within {limit:g} s",
                            hint="it may have hung: restart the program that started it (TOPCAT, DS9, Aladin)")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def _connect(self):
        if self._client is not None:
            try:
                self._bounded(self._client.ping, "a ping")
                return self._client
            except SampError:
                raise
            except Exception as exc:   # the hub went away since the last message: join today's, if any
                log.info("SAMP hub gone (%s); connecting afresh", _short(exc))
                self._drop()
        if not hub_running():
            raise SampError("no SAMP hub is running", hint="start TOPCAT, DS9 or Aladin (they start one), then try again")
        from pyvo.samp import SAMPIntegratedClient

        client = SAMPIntegratedClient(name=self.name, description="galexplorer explorer")
        self._client = client       # so that a timeout below stops its receiving thread
        try:
            self._bounded(client.connect, "the connection")
        except SampError:
            self._drop()
            raise
        except Exception as exc:  # pyvo raises several kinds (SAMPHubError, OSError, ...)
            self._drop()
            raise SampError(f"cannot reach the SAMP hub ({_short(exc)})",
                            hint="restart TOPCAT, DS9 or Aladin and try again") from None
        if self._on_highlight is not None:
            try:   # one hub call (declare subscriptions): a refusal only loses the highlights
                self._bounded(self._subscribe_highlight, "the subscriptions")
            except SampError:     # the hub hangs: the connection is dropped already
                raise
            except Exception as exc:
                log.info("SAMP: cannot take highlighted rows (%s)", _short(exc))
        return client

    def _subscribe_highlight(self) -> None:
        client = self._client
        client.bind_receive_notification("table.highlight.row", self._on_highlight_notification, declare=False)
        client.bind_receive_call("table.highlight.row", self._on_highlight_call, declare=False)
        client.declare_subscriptions()

    def on_highlight(self, callback: Callable[[int, str], None] | None) -> None:
        """Have ``callback(store index, the program's name)`` called when another program
        highlights a row of a table this sender sent (``table.highlight.row``); it runs in pyvo's
        receiving thread. Takes effect on the next connection (the first send)."""
        self._on_highlight = callback

    @property
    def has_tables(self) -> bool:
        """Whether a table was sent (whose rows :meth:`select_rows` can select)."""
        with self._lock:
            return bool(self._tables)

    def forget_tables(self) -> None:
        """Forget the tables sent (another store is opened: their rows name other objects)."""
        with self._lock:
            self._tables.clear()

    def object_at(self, params: dict) -> int | None:
        """The store index of the row that a ``table.highlight.row`` message names (by
        ``table-id``, else ``url``), or None when the table is not one of ours or the row is out
        of range."""
        table_id, url = str(params.get("table-id", "")), str(params.get("url", ""))
        with self._lock:
            entry = self._tables.get(table_id) or next((t for t in self._tables.values() if t[0] == url), None)
        try:
            row = int(params.get("row", -1))
        except (TypeError, ValueError):
            return None
        if entry is None or not 0 <= row < len(entry[1]):
            return None
        return int(entry[1][row])

    def _highlighted(self, sender_id: str, params: dict) -> None:
        index = self.object_at(params)
        callback = self._on_highlight
        if index is None or callback is None:
            log.info("SAMP: a highlighted row not of our tables (%s)", params)
            return
        callback(index, self._names.get(sender_id, sender_id))   # no hub call here: the name if known

    def _on_highlight_notification(self, private_key, sender_id, mtype, params, extra) -> None:
        self._highlighted(sender_id, params)

    def _on_highlight_call(self, private_key, sender_id, msg_id, mtype, params, extra) -> None:
        self._highlighted(sender_id, params)
        try:
            self._client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})
        except Exception as exc:   # the hub went away: nothing to answer
            log.debug("SAMP reply: %s", exc)

    def _on_answer(self, private_key, responder_id, msg_tag, response) -> None:
        # runs in pyvo's receiving thread
        with self._lock:
            if msg_tag in self._answers:
                self._answers[msg_tag][responder_id] = response

    def _name(self, client, client_id: str) -> str:
        if client_id not in self._names:
            try:
                meta = self._bounded(lambda: client.get_metadata(client_id), "a client's name") or {}
                self._names[client_id] = str(meta.get("samp.name") or client_id)
            except SampError:
                raise
            except Exception:     # the client left: its id is all we have
                return client_id
        return self._names[client_id]

    # -- messages -----------------------------------------------------------------------------
    def send_votable(self, path: str | Path, table_name: str, rows: int = 0,
                     order: np.ndarray | None = None) -> SendReport:
        """Call ``table.load.votable`` on every client that takes it and wait for the answers.

        Args:
            path: the VOTable.
            table_name: the name the clients show.
            rows: objects in it, for the report.
            order: (rows,) the store index of each row, in the file's order: kept so that
                :meth:`select_rows` and highlighted rows (:meth:`on_highlight`) can name them.

        Returns:
            a :class:`SendReport` (one line: :meth:`SendReport.summary`).
        """
        url = Path(path).resolve().as_uri()
        with self._lock:
            self._tags += 1
            table_id = f"galexplorer-table-{self._tags}"
        if order is not None:
            with self._lock:
                self._tables[table_id] = (url, np.asarray(order, np.int64))
                while len(self._tables) > KEEP_TABLES:
                    del self._tables[next(iter(self._tables))]
        params = {"url": url, "name": table_name, "table-id": table_id}
        return self._call_all("table.load.votable", params, SendReport(rows=rows, answer_timeout=self.answer_timeout),
                              "the table")

    def send_image(self, path: str | Path, name: str) -> SendReport:
        """Call ``image.load.fits`` (a FITS file with its WCS) on every client that takes it
        (DS9, Aladin) and wait for the answers."""
        with self._lock:
            self._tags += 1
            image_id = f"galexplorer-image-{self._tags}"
        params = {"url": Path(path).resolve().as_uri(), "name": name, "image-id": image_id}
        return self._call_all("image.load.fits", params,
                              SendReport(rows=1, what=name, answer_timeout=self.answer_timeout), "the image")

    def _call_all(self, mtype: str, params: dict, report: SendReport, what: str) -> SendReport:
        client = self._connect()
        msg = {"samp.mtype": mtype, "samp.params": params}
        with self._lock:
            self._tags += 1
            tag = f"galexplorer-{self._tags}"
            self._answers[tag] = {}
        try:
            client.bind_receive_response(tag, self._on_answer)    # pyvo keys answers by tag; local
            try:
                # the names first: a client that leaves mid-send can no longer be asked its name
                takers = self._bounded(lambda: client.get_subscribed_clients(mtype), f"who takes {what}")
                for cid in takers or {}:
                    self._name(client, cid)
                sent = self._bounded(lambda: client.call_all(tag, msg), what)
            except SampError:
                raise
            except Exception as exc:
                self._drop()
                raise SampError(f"the SAMP hub refused {what} ({_short(exc)})") from None
            return self._await(client, tag, dict(sent or {}), report, what)
        finally:
            with self._lock:
                self._answers.pop(tag, None)
            if self._client is client:
                try:
                    client.unbind_receive_response(tag)          # local: no hub call
                except Exception as exc:
                    log.debug("SAMP unbind: %s", exc)

    def select_rows(self, indices: np.ndarray) -> int:
        """Broadcast ``table.select.rowList``: the rows of the last table sent that hold these
        store indices (the others are not in it).

        Returns:
            the number of rows named (0: none of them is in the table; nothing is sent).

        Raises:
            SampError: no table was sent yet, or the hub refused or did not answer.
        """
        with self._lock:
            if not self._tables:
                raise SampError("no table was sent over SAMP yet", hint="send the objects first (the SAMP button)")
            table_id = next(reversed(self._tables))
            url, order = self._tables[table_id]
        rows = np.flatnonzero(np.isin(order, np.asarray(indices, np.int64)))
        if not len(rows):
            return 0
        client = self._connect()
        msg = {"samp.mtype": "table.select.rowList",
               "samp.params": {"table-id": table_id, "url": url, "row-list": [str(int(r)) for r in rows]}}
        try:
            self._bounded(lambda: client.notify_all(msg), "the selection")
        except SampError:
            raise
        except Exception as exc:
            self._drop()
            raise SampError(f"the SAMP hub refused the selection ({_short(exc)})") from None
        return len(rows)

    def _await(self, client, tag: str, sent: dict[str, str], report: SendReport, what: str) -> SendReport:
        waiting = set(sent)
        names = {cid: self._name(client, cid) for cid in waiting}
        deadline = time.monotonic() + self.answer_timeout
        while waiting:
            with self._lock:
                answered = {cid: r for cid, r in self._answers[tag].items() if cid in waiting}
            for cid, response in answered.items():
                waiting.discard(cid)
                status = str(response.get("samp.status", "samp.ok"))
                if status == "samp.error":
                    err = response.get("samp.error", {}) or {}
                    report.refused.append((names[cid], str(err.get("samp.errortxt", "an error"))))
                else:
                    report.loaded.append(names[cid])
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
            try:
                present = set(self._bounded(client.get_registered_clients, "who is registered") or ())
            except SampError:
                raise
            except Exception as exc:
                self._drop()
                raise SampError(f"the SAMP hub went away while the clients were loading {what} "
                                f"({_short(exc)})", hint="start TOPCAT, DS9 or Aladin again and resend") from None
            for cid in sorted(waiting - present):
                with self._lock:
                    if cid in self._answers[tag]:
                        continue       # answered, then left: counted on the next pass
                waiting.discard(cid)
                report.left.append(names[cid])
        report.silent.extend(sorted(names[cid] for cid in waiting))
        log.info("SAMP: %s", report.summary())
        return report

    def point_at(self, ra: float, dec: float) -> None:
        """Broadcast ``coord.pointAt.sky`` (deg) so sky viewers pan to the object."""
        client = self._connect()
        msg = {"samp.mtype": "coord.pointAt.sky", "samp.params": {"ra": f"{ra:.8f}", "dec": f"{dec:.8f}"}}
        try:
            self._bounded(lambda: client.notify_all(msg), "the position")
        except SampError:
            raise
        except Exception as exc:
            self._drop()
            raise SampError(f"the SAMP hub refused the position ({_short(exc)})") from None

    # -- closing ------------------------------------------------------------------------------
    def _drop(self) -> None:
        """Forget the connection without talking to the hub (it may be dead or hung): stop the
        client's receiving thread; the next message connects afresh."""
        client, self._client = self._client, None
        self._names.clear()
        inner = getattr(client, "client", None)
        if inner is not None and getattr(inner, "is_running", False):
            try:
                inner.stop(timeout=1.0)
            except Exception as exc:
                log.debug("SAMP client stop: %s", exc)

    def close(self) -> None:
        """Unregister (waiting at most a second: the window is closing) and stop; never raises."""
        client = self._client
        if client is None:
            return
        try:
            if client.is_connected:
                self._bounded(client.disconnect, "the goodbye", timeout=min(1.0, self.timeout))
        except Exception as exc:  # closing must not fail the explorer's exit
            log.debug("SAMP disconnect: %s", exc)
        self._drop()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
