"""Regenerate the README's "Results" section from the benchmarks, in one command.

    python -m bench results [--write README.md] [--audio-limit N] [--audio-json FILE ...]
                            [--stt-json FILE] [--cost-json FILE]

Runs ``bench text`` on the dev and held-out sets, ``bench stt`` (every ear, tuned and
open-vocabulary clips), ``bench cost`` and ``bench audio`` (each as a subprocess with
``--json``, so their own code does the measuring), and prints a Markdown section with
their tables and the machine they ran on. Each audio table names the ear (STT) that
produced it and says the clips are synthetic speech. With ``--write``, the section
replaces the text between ``<!-- results:start -->`` and ``<!-- results:end -->`` in
that file. ``--audio-json`` (repeatable: one table per saved run, e.g. one per ear),
``--stt-json`` and ``--cost-json`` reuse a saved ``--json`` output instead of running
that benchmark again (a full audio run takes about 35 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from bench.audio import format_report as format_audio
from bench.audio_scenarios import DEFAULT_SEED
from bench.cost import render as format_cost
from bench.stt import format_summary as format_stt
from bench.text import format_table as format_text

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"
TEXT_SETS = {
    "dev set (lexicon tuned on it; model training rows)": "tests/data/devset_en.tsv",
    "held-out set 1 (lexicon tuned on it after it was first measured; model training rows)": "tests/data/heldout_en.tsv",
    "held-out set 2 (five of its phrases entered the lexicon; model training rows)": "tests/data/heldout2_en.tsv",
    "held-out set 3 (validation: chose the model's extra-row weight and two thresholds; with bot_said context)": "tests/data/heldout3_en.tsv",
    "held-out set 4 (never tuned on, errors never read; with bot_said context)": "tests/data/heldout4_en.tsv",
}


def run_json(*args: str) -> dict:
    """Run ``python -m bench ARGS --json`` and return its JSON (stderr passes through)."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--json"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout)


def machine() -> str:
    """One line naming the machine and the versions the figures were measured with."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}, pipecat-ai {metadata.version('pipecat-ai')}"
    )


def section(
    text: dict[str, dict], cost: dict, audio: dict | list[dict], audio_args: str, stt: dict | None = None
) -> str:
    """The Markdown of the Results section (``audio``: one report or a list, one per
    ear or seed)."""
    block = lambda s: f"```\n{s.rstrip()}\n```"  # noqa: E731
    parts = [START, "## Results", "", f"Measured on: {machine()}. Regenerate with "
             f"`python -m bench results --write README.md`.", ""]  # fmt: skip
    for name, results in text.items():
        parts += [f"Text, {name} (`python -m bench text {TEXT_SETS[name]}`):", "", block(format_text(results)), ""]
    if stt is not None:
        parts += [
            "STT on the clips (`python -m bench stt`; synthetic speech; `tuned` = tests/audio, the clips "
            "the STT defaults were chosen on; `open` = tests/audio/open, never tuned on):",
            "",
            block(format_stt(stt["blocks"])),
            "",
        ]
    for report in audio if isinstance(audio, list) else [audio]:
        ear = report.get("stt", "pocketsphinx")
        seed = report.get("seed", DEFAULT_SEED)
        seed_arg = "" if seed == DEFAULT_SEED else f" --seed {seed}"
        parts += [
            f"Audio barge-in, ear `{ear}` (`python -m bench audio --stt {ear}{seed_arg}{audio_args}`; synthetic speech):",
            "",
            block(format_audio(report)),
            "",
        ]
    parts += ["Cost (`python -m bench cost`):", "", block(format_cost(cost)), "", END]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench results", description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="FILE", help="replace the results section in FILE")
    parser.add_argument("--audio-limit", type=int, default=None, help="bench audio --limit N")
    parser.add_argument("--audio-json", metavar="FILE", action="append",
                        help="reuse a saved `bench audio --json` (repeat for several ears or seeds)")  # fmt: skip
    parser.add_argument("--stt-json", metavar="FILE", help="reuse a saved `bench stt --json`")
    parser.add_argument("--cost-json", metavar="FILE", help="reuse a saved `bench cost --json`")
    args = parser.parse_args(argv)
    if args.write:
        content = Path(args.write).read_text()
        if START not in content or END not in content:
            print(f"error: {args.write} has no {START} ... {END} markers", file=sys.stderr)
            return 2

    text = {name: run_json("text", path) for name, path in TEXT_SETS.items()}
    cost = json.loads(Path(args.cost_json).read_text()) if args.cost_json else run_json("cost")
    audio_args = f" --limit {args.audio_limit}" if args.audio_limit else ""
    if args.audio_json:
        audio = [json.loads(Path(f).read_text()) for f in args.audio_json]
    else:
        audio = [run_json("audio", *audio_args.split())]
    stt = json.loads(Path(args.stt_json).read_text()) if args.stt_json else run_json("stt")
    markdown = section(text, cost, audio, audio_args, stt)

    if not args.write:
        print(markdown)
        return 0
    path = Path(args.write)
    head, rest = content.split(START, 1)
    path.write_text(head + markdown + rest.split(END, 1)[1])
    print(f"wrote the results section of {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
