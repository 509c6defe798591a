"""CI slice of the audio barge-in benchmark (``python -m bench audio``).

Runs 4 real-time scenarios (~30 s: Silero VAD, PocketSphinx, four strategy
branches) and checks the JSON shape and that the counts add up. No timing or
rate targets here: those are measured by the full run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pocketsphinx")
pytest.importorskip("piper")

from bench.audio import STRATEGIES, select  # noqa: E402
from bench.audio_scenarios import (  # noqa: E402
    DEFAULT_MIX,
    KEEP_KINDS,
    KINDS,
    STOP_KINDS,
    make_scenarios,
    mix_summary,
)

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 4


def test_default_scenarios_are_reproducible_and_large_enough():
    a, b = make_scenarios(), make_scenarios()
    assert len(a) == sum(DEFAULT_MIX.values()) >= 200
    assert [s.describe() for s in a] == [s.describe() for s in b]
    assert mix_summary(a)["by_kind"] == DEFAULT_MIX
    assert len(mix_summary(a)["by_voice"]) >= 4 and len(mix_summary(a)["by_snr_db"]) >= 3
    other = make_scenarios(seed=1)
    assert [s.describe() for s in other] != [s.describe() for s in a]


def test_limit_takes_every_kind_first():
    picked = select(make_scenarios(), len(KINDS))
    assert sorted(s.kind for s in picked) == sorted(KINDS)


@pytest.fixture(scope="module")
def report():
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "audio", "--json", "--limit", str(LIMIT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, f"--json must print exactly one line, got {len(lines)}"
    return json.loads(lines[0])


def test_json_shape(report):
    assert {"seed", "mix", "strategies", "targets", "scenarios", "wall_secs"} <= set(report)
    assert report["mix"]["n"] == LIMIT == len(report["scenarios"])
    assert list(report["strategies"]) == list(STRATEGIES)
    for s in report["scenarios"]:
        assert s["kind"] in KINDS
        assert set(s["outcomes"]) == set(STRATEGIES)
        for o in s["outcomes"].values():
            assert isinstance(o["stopped"], bool)
            assert ("missed" in o) == (s["kind"] in STOP_KINDS)
            assert ("false_interrupt" in o) == (s["kind"] in KEEP_KINDS)
    assert set(report["targets"]) == {"ours-filter", "ours-strategy"}


def test_counts_add_up(report):
    scenarios = report["scenarios"]
    n_keep = sum(s["kind"] in KEEP_KINDS for s in scenarios)
    n_stop = sum(s["kind"] in STOP_KINDS for s in scenarios)
    assert n_keep + n_stop == LIMIT
    for name, m in report["strategies"].items():
        assert m["n_scenarios"] == LIMIT
        assert (m["n_keep"], m["n_stop"]) == (n_keep, n_stop)
        by_kind = m["false_interrupt_by_kind"]
        assert sum(v["n"] for v in by_kind.values()) == n_keep
        assert sum(v["n_false_interrupt"] for v in by_kind.values()) == m["n_false_interrupt"]
        assert sum(v["n"] for v in m["false_interrupt_by_snr_db"].values()) == n_keep
        assert sum(v["n"] for v in m["missed_by_kind"].values()) == n_stop
        assert sum(v["n_missed"] for v in m["missed_by_kind"].values()) == m["n_missed"]
        assert m["n_false_interrupt"] == sum(
            s["outcomes"][name]["stopped"] for s in scenarios if s["kind"] in KEEP_KINDS
        )
        # Each interruption/mixed scenario is missed, stopped before the onset, or timed.
        timed = m["onset_to_audio_stop"]["n"]
        assert m["n_missed"] + m["n_stopped_before_onset"] + timed == n_stop
        assert m["onset_to_interruption_frame"]["n"] <= timed
        if n_keep:
            assert m["false_interrupt_rate"] == pytest.approx(m["n_false_interrupt"] / n_keep)
        if n_stop:
            assert m["missed_interrupt_rate"] == pytest.approx(m["n_missed"] / n_stop)


def test_plot_writes_a_png(report, tmp_path):
    pytest.importorskip("matplotlib")
    from bench.audio import plot

    out = tmp_path / "bench.png"
    plot(report, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_names_the_package():
    # Hide matplotlib (installed by the bench extra): sys.modules[name] = None makes
    # its import fail as if it were missing.
    code = (
        "import sys; sys.modules['matplotlib'] = None; "
        "from bench.__main__ import main; "
        "sys.exit(main(['audio', '--limit', '1', '--plot', 'x.png']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "matplotlib" in proc.stderr and proc.stdout == ""