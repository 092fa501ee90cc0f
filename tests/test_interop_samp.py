"""Round trips over SAMP with the real TOPCAT, DS9 and Aladin, under Xvfb: the code of
benchmarks/interop_samp.py, one test per client. Opt-in (``python -m pytest -m interop``): the
README's test command and CI skip them (see conftest.py), and each is skipped, naming what to
install, where its program is absent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import interop_samp  # noqa: E402


@pytest.mark.interop
@pytest.mark.timeout(300)
@pytest.mark.parametrize("client", interop_samp.CLIENTS)
def test_round_trip_checked_by_the_program(client, tmp_path, monkeypatch):
    gone = interop_samp.missing(client)
    if gone:
        pytest.skip(f"{client}: not installed ({', '.join(gone)}); apt-get install xvfb xdotool topcat saods9 "
                    "aladin xpa-tools x11-apps imagemagick")
    monkeypatch.setenv("GALEXPLORER_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.delenv("SAMP_HUB", raising=False)
    (result,) = interop_samp.run([client], n=24, n_send=8, work=tmp_path)
    assert not result.failed, result.line()
    assert result.sent and result.checked, result.line()
    if client == "topcat":      # TOPCAT itself sent the highlight, and the inspector opened the row
        assert any("table.highlight.row from topcat" in r for r in result.received), result.line()


# -- the script's own checks, without the programs (these run everywhere) ------------------------
def test_table_comparison_sees_any_difference():
    """The "every column, exact values" check fails on a changed value, a float32 widened to
    float64, a lost column or a reordered row; NaN equals NaN."""
    import numpy as np
    from astropy.table import Table

    ours = Table({"id": ["a", "b"], "x": np.array([1.5, np.nan], np.float32), "ok": [True, False]})
    assert interop_samp.same_tables(ours, ours.copy()) == []
    changed = ours.copy()
    changed["x"][0] = np.float32(1.5000001)
    widened = ours.copy()
    widened["x"] = ours["x"].astype(np.float64)
    for theirs in (changed, widened, ours[["id", "x"]], ours[::-1]):
        assert interop_samp.same_tables(ours, theirs)


def test_loaded_clients_are_read_from_the_status_line():
    assert interop_samp.loaded("sent 12 objects over SAMP to topcat, SAOImageDS9; Aladin did not answer "
                               "within 10 s") == ["topcat", "SAOImageDS9"]
    assert interop_samp.loaded("sent 3 objects over SAMP, but no client loaded them; Aladin did not answer "
                               "within 10 s") == []
