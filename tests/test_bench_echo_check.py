"""CI slice of ``python -m bench echo_check`` (the acoustic echo check's correlations on
the audio bench's microphone tracks): the report's shape and counts, and that
something was scored. The figures are measured by the full run, not asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 2


def test_every_row_scores_the_first_scenarios_of_its_kind():
    out = subprocess.run(
        [sys.executable, "-m", "bench", "echo_check", "--limit", str(LIMIT), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    report = json.loads(out)
    rows = report["rows"]
    assert set(rows) == {
        "user backchannel alone", "user interruption alone", "user mixed alone",
        "echo burst, linear path", "echo burst after AEC3",
        "echo burst, room RT60 0.3 s", "echo burst, room RT60 0.6 s",
    }  # fmt: skip
    for name, r in rows.items():
        assert r["n"] == LIMIT, name
        scored = r["n"] - r["none"]
        assert 0 <= r["at_or_above_threshold"] <= scored, name
        if scored:
            lo, mid, hi = r["quartiles"]
            assert -1 <= lo <= mid <= hi <= r["max"] <= 1, name
    # Something was compared: the user's sounds and the bench's linear echo score.
    assert rows["user backchannel alone"]["n"] > rows["user backchannel alone"]["none"]
    assert rows["echo burst, linear path"]["n"] > rows["echo burst, linear path"]["none"]


def test_bad_limit_is_refused():
    p = subprocess.run([sys.executable, "-m", "bench", "echo_check", "--limit", "0"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 2 and "--limit" in p.stderr
