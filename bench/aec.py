"""Echo cancellation on the audio bench's echo scenarios, with and without it.

    python -m bench aec [--limit N] [--seed S] [--json] [--verbose]

The echo scenarios of ``python -m bench audio`` (bench/audio_scenarios.py, kind
``echo``: while the bot plays a long Piper answer from ``BOT_START``, the stretch
being played leaks into the microphone, delayed 40-120 ms and attenuated by an echo
return loss of 6-30 dB, for 0.8-2.0 s, over a noise bed) are run twice through the
bench's real-time harness (``bench.audio.run_scenario``: Silero VAD, PocketSphinx,
and the strategies ``ours-filter`` and ``pipecat-default``):

* without AEC: the microphone track as the bench builds it;
* with AEC: the same track through ``bot.echo_cancel.EchoCanceller`` (WebRTC AEC3 via
  ``livekit.rtc.AudioProcessingModule``, the reference bot's settings), the bot's
  answer as the reverse stream, fed as the local transport feeds it: 20 ms of the
  answer written when it starts playing, then 20 ms of microphone 20 ms later, on a
  simulated clock (the canceller is causal; the real-time run then plays the result).

Printed: false interrupts on the echo scenarios per strategy, with and without AEC,
and the echo return loss enhancement (ERLE, dB) the APM achieves on each scenario's
echo alone (no noise bed): ``10 log10(E[echo²] / E[residual²])`` over the echo burst.
The canceller starts cold in every scenario (the echo appears 0.4-1.8 s into the
bot's answer, with no echo before), the hardest case for it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import time

import numpy as np

from bench.audio import _build_classes, _Classes, outcome, run_scenario, stdout_to_stderr
from bench.audio_scenarios import (
    BOT_START,
    DEFAULT_SEED,
    SR,
    Scenario,
    bot_answers,
    build_mic,
    make_scenarios,
    to_pcm,
)

STRATEGIES = ("ours-filter", "pipecat-default")
CHUNK = int(0.02 * SR)  # 20 ms, as the local transport's microphone delivers it


def cancel_echo(scn: Scenario, mic_pcm: bytes, answer: np.ndarray) -> tuple[bytes, dict]:
    """``mic_pcm`` (the scenario's 16 kHz microphone track, timeline 0 on) with the
    echo cancelled, the bot's ``answer`` (16 kHz samples, played from ``BOT_START``
    until ``scn.bot_end``) as the reverse stream. Returns ``(pcm, canceller stats)``."""
    from bot.echo_cancel import EchoCanceller

    aec = EchoCanceller()
    aec.start_capture(SR)
    aec.start_render(SR)
    mic = np.frombuffer(mic_pcm, dtype="<i2")
    out = bytearray()
    played = 0
    for i in range(0, len(mic), CHUNK):
        t = i / SR
        if BOT_START <= t < scn.bot_end and played < len(answer):
            aec.push_reverse(to_pcm(answer[played : played + CHUNK]), now=t)
            played += CHUNK
        out += aec.process_capture(mic[i : i + CHUNK].tobytes(), now=t + CHUNK / SR)
    out += bytes(len(mic_pcm) - len(out))  # the last partial frame, as silence
    return bytes(out), dataclasses.asdict(aec.stats)


def erle_db(scn: Scenario, answers, seed: int) -> float | None:
    """ERLE (dB) on the scenario's echo alone (no noise bed) over the echo burst."""
    clean = dataclasses.replace(scn, snr_db=None)
    mic_pcm, _ = build_mic(clean, answers, seed)
    out_pcm, _ = cancel_echo(clean, mic_pcm, answers[(scn.answer, scn.answer_speed)])
    a, b = int(scn.speech_onset * SR), int(scn.speech_end * SR)
    x = np.frombuffer(mic_pcm, dtype="<i2")[a:b].astype(np.float64)
    y = np.frombuffer(out_pcm, dtype="<i2")[a:b].astype(np.float64)
    if not len(x) or not x.any():
        return None
    return float(10 * np.log10((x @ x) / max(y @ y, 1.0)))


def run(seed: int = DEFAULT_SEED, limit: int | None = None, log=print) -> dict:
    """Every echo scenario of the bench's default mix (or the first ``limit``), with
    and without AEC; returns the report (see :func:`format_report`)."""
    scenarios = [s for s in make_scenarios(seed) if s.kind == "echo"][:limit]
    answers = bot_answers(log=log)
    classes = _Classes(*_build_classes())
    results = []
    t_start = time.monotonic()
    for k, scn in enumerate(scenarios, 1):
        mic, warmup = build_mic(scn, answers, seed)
        cancelled, stats = cancel_echo(scn, mic, answers[(scn.answer, scn.answer_speed)])
        res = {**scn.describe(), "erle_db": erle_db(scn, answers, seed), "aec_stats": stats}
        for label, pcm in (("without", mic), ("with", cancelled)):
            tl = asyncio.run(run_scenario(scn, pcm, warmup, classes, strategies=STRATEGIES))
            res[label] = {n: o["false_interrupt"] for n, o in outcome(scn, tl, STRATEGIES).items()}
            res[f"{label}_finals"] = [e.data["text"] for e in tl.events
                                      if e.kind == "transcript" and e.data.get("branch") is None and e.data["text"]]  # fmt: skip
        results.append(res)
        erle = res["erle_db"]
        log(
            f"[{k}/{len(scenarios)}] #{scn.index} ERL {scn.extra['echo_return_loss_db']:g} dB, delay "
            f"{scn.extra['echo_delay_s'] * 1000:.0f} ms: ERLE {'-' if erle is None else f'{erle:.1f}'} dB; "
            f"false interrupts without {res['without']} heard {res['without_finals']}; "
            f"with {res['with']} heard {res['with_finals']}"
        )
    erles = [r["erle_db"] for r in results if r["erle_db"] is not None]
    by_erl: dict[str, list[float]] = {}
    for r in results:
        if r["erle_db"] is not None:
            by_erl.setdefault(f"{r['echo_return_loss_db']:g}", []).append(r["erle_db"])
    return {
        "seed": seed,
        "n": len(results),
        "false_interrupts": {
            label: {n: sum(r[label][n] for r in results) for n in STRATEGIES} for label in ("without", "with")
        },
        "erle_db": {
            "median": round(statistics.median(erles), 1) if erles else None,
            "min": round(min(erles), 1) if erles else None,
            "by_echo_return_loss_db": {k: round(statistics.median(v), 1) for k, v in sorted(by_erl.items(), key=lambda kv: float(kv[0]))},
        },  # fmt: skip
        "wall_secs": round(time.monotonic() - t_start, 1),
        "scenarios": results,
    }


def format_report(report: dict) -> str:
    fi = report["false_interrupts"]
    n = report["n"]
    lines = [
        f"seed {report['seed']}: {n} echo scenarios (bench audio's default mix)",
        f"{'false interrupts':<22} " + " ".join(f"{s:>16}" for s in STRATEGIES),
    ]
    for label in ("without", "with"):
        lines.append(f"{label + ' AEC':<22} " + " ".join(f"{fi[label][s]:>13}/{n:<2}" for s in STRATEGIES))
    e = report["erle_db"]
    lines.append(
        f"ERLE (echo alone, over the burst): median {e['median']} dB, min {e['min']} dB; by echo return loss "
        + ", ".join(f"{k} dB: {v}" for k, v in e["by_echo_return_loss_db"].items())
    )
    lines.append(f"wall time {report['wall_secs']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench aec", description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, metavar="N", help="only the first N echo scenarios (25 in all)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"scenario seed (default {DEFAULT_SEED})")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    p.add_argument("--verbose", action="store_true", help="keep Pipecat's debug log (stderr)")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="DEBUG" if args.verbose else "ERROR")
    with stdout_to_stderr() as real_stdout:
        report = run(args.seed, args.limit, log=lambda m: print(m, file=sys.stderr, flush=True))
    real_stdout.write((json.dumps(report) if args.json else format_report(report)) + "\n")
    real_stdout.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
