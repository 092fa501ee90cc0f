"""Send objects to TOPCAT, DS9 or Aladin over SAMP (``pyvo.samp``), when a hub is running.

The explorer writes the objects as a VOTable (the same writer as ``galexplorer export``) and
broadcasts ``table.load.votable``; for one object with a sky position it also broadcasts
``coord.pointAt.sky``. Nothing here imports Qt: the main window runs these calls in a worker
thread, because connecting to a hub is network I/O.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import GalexplorerError

log = logging.getLogger(__name__)


class SampError(GalexplorerError):
    """No SAMP hub, or the hub refused the message."""


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


class SampSender:
    """A SAMP client that connects on first use and stays connected.

    Raises:
        SampError: no hub is running, or it cannot be reached.
    """

    def __init__(self, name: str = "galexplorer"):
        self.name = name
        self._client = None

    def _connect(self):
        if self._client is not None and self._client.is_connected:
            return self._client
        if not hub_running():
            raise SampError("no SAMP hub is running", hint="start TOPCAT, DS9 or Aladin (they start one), then try again")
        from pyvo.samp import SAMPIntegratedClient

        client = SAMPIntegratedClient(name=self.name, description="galexplorer explorer")
        try:
            client.connect()
        except Exception as exc:  # pyvo raises several kinds (SAMPHubError, OSError, ...)
            raise SampError(f"cannot reach the SAMP hub ({exc})",
                            hint="restart TOPCAT, DS9 or Aladin and try again") from None
        self._client = client
        return client

    def send_votable(self, path: str | Path, table_name: str) -> int:
        """Broadcast ``table.load.votable`` for a VOTable file; returns the clients told."""
        client = self._connect()
        url = Path(path).resolve().as_uri()
        msg = {"samp.mtype": "table.load.votable", "samp.params": {"url": url, "name": table_name}}
        try:
            sent = client.notify_all(msg)
        except Exception as exc:
            raise SampError(f"the SAMP hub refused the table ({exc})") from None
        return len(sent) if hasattr(sent, "__len__") else 1

    def point_at(self, ra: float, dec: float) -> None:
        """Broadcast ``coord.pointAt.sky`` (deg) so sky viewers pan to the object."""
        client = self._connect()
        try:
            client.notify_all({"samp.mtype": "coord.pointAt.sky",
                               "samp.params": {"ra": f"{ra:.8f}", "dec": f"{dec:.8f}"}})
        except Exception as exc:
            raise SampError(f"the SAMP hub refused the position ({exc})") from None

    def close(self) -> None:
        if self._client is not None:
            try:
                if self._client.is_connected:
                    self._client.disconnect()
            except Exception as exc:  # closing must not fail the explorer's exit
                log.debug("SAMP disconnect: %s", exc)
            self._client = None
