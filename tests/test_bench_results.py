"""`python -m bench results` writes the README's Results section from the benchmarks."""

import subprocess
import sys
from pathlib import Path

from bench import results

ROOT = Path(__file__).resolve().parent.parent


def bench_json(tmp_path, name, *args):
    out = tmp_path / f"{name}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", name, *args, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out.write_text(proc.stdout)
    return out


def test_results_section_is_replaced_between_the_markers(tmp_path):
    cost = bench_json(tmp_path, "cost", "--minutes", "0.2", "--hours", "0.02", "--repeats", "1")
    audio = bench_json(tmp_path, "audio", "--limit", "1")
    stt = bench_json(tmp_path, "stt", "--stt", "pocketsphinx", "--filter", "wait")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{results.START}\nold figures\n{results.END}\nafter\n")
    args = ["--write", str(readme), "--audio-json", str(audio), "--cost-json", str(cost), "--stt-json", str(stt)]
    assert results.main(args) == 0
    text = readme.read_text()
    assert "old figures" not in text
    assert text.startswith("# Title\n\nbefore\n") and text.endswith("after\n")
    assert "## Results" in text and "Measured on: " in text and "pipecat-ai 1.14" in text
    for heading in ("held-out set 4 (never tuned on, errors never read; with bot_said context)", "STT on the clips", "Audio barge-in, ear", "Cost"):
        assert heading in text
    assert "ours" in text and "IdentityFilter" in text
    # Which STT produced each audio table, and that the clips are synthetic speech.
    assert text.count("synthetic speech") >= 2 and "ear: " in text


def test_missing_markers_are_named_before_anything_runs(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert results.main(["--write", str(readme)]) == 2
    assert "results:start" in capsys.readouterr().err
    assert readme.read_text() == "# no markers\n"
