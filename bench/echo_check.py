"""The acoustic echo check's correlation on the audio bench's sounds: echo against the user.

    python -m bench echo_check [--seed S] [--limit N] [--json]

``pipecat_softack.acoustic_echo.echo_correlation`` (the filter's acoustic echo check)
computed offline, in numpy, on the microphone tracks ``python -m bench audio`` builds
(``bench.audio_scenarios.build_mic``: the tuned clips over the bench's noise bed, the
bot's Piper answer played from ``BOT_START``), over the window the filter reads (from
``ECHO_PREROLL_SECS`` before the speech onset, at most ``ECHO_CHECK_MAX_SECS``):

* the user's sounds alone (backchannel, interruption and mixed scenarios): the check
  must stay below its threshold;
* the echo bursts as the bench plays them (a linear path: the answer delayed 40-120 ms
  and attenuated by 6-30 dB), the same bursts after WebRTC AEC3 (``bench.aec``'s
  canceller, as the local transport runs it), and the answer through a synthetic room
  of RT60 0.3 s and 0.6 s (exponentially decaying Gaussian noise after the direct
  path: Polack's statistical model of a room's late reverberation) before it leaks.

Printed per row: how many scenarios, how many gave no correlation (too little sound
above the noise floor), the quartiles, the maximum and the share at or above
``MIN_CORRELATION``. No pipeline, no STT: a few seconds per seed.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from bench.audio_scenarios import BOT_START, DEFAULT_SEED, SR, Scenario, bot_answers, build_mic, make_scenarios

USER_KINDS = ("backchannel", "interruption", "mixed")
ROOMS_RT60_SECS = (0.3, 0.6)
CHUNK_BYTES = 2 * int(0.02 * SR)  # 20 ms of 16-bit microphone audio
T0 = 1000.0  # the monotonic second timeline 0 is laid on


def room(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` through a synthetic room: a direct path and a Gaussian tail decaying
    60 dB in ``rt60`` seconds, at the energy of the direct path (a far talker)."""
    n = int(rt60 * SR)
    tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / (rt60 * SR))
    ir = tail / np.sqrt((tail**2).sum())
    ir[0] += 1.0
    ir /= np.sqrt((ir**2).sum())
    return np.convolve(x, ir)[: len(x)].astype(np.float32)


def correlation(mic_pcm: bytes, answer: np.ndarray, scn: Scenario) -> float | None:
    """The filter's check on ``mic_pcm`` against the ``answer`` played until
    ``scn.bot_end``, over the window it reads for a speech onset at ``scn.speech_onset``."""
    from pipecat_softack.acoustic_echo import AudioHistory, echo_correlation
    from pipecat_softack.softack_filter import ECHO_CHECK_MAX_SECS, ECHO_PREROLL_SECS

    from bench.audio_io import to_pcm

    heard, played = AudioHistory(keep_secs=600), AudioHistory(keep_secs=600)
    for i in range(0, len(mic_pcm), CHUNK_BYTES):
        chunk = mic_pcm[i : i + CHUNK_BYTES]
        heard.add(chunk, SR, t=T0 + (i + len(chunk)) / 2 / SR)
    out = to_pcm(answer[: int((scn.bot_end - BOT_START) * SR)])
    for i in range(0, len(out), 2 * CHUNK_BYTES):  # the speaker's 40 ms chunks
        chunk = out[i : i + 2 * CHUNK_BYTES]
        played.add(chunk, SR, t=T0 + BOT_START + (i + len(chunk)) / 2 / SR)
    began = scn.speech_onset - ECHO_PREROLL_SECS
    end = min(scn.speech_end, began + ECHO_CHECK_MAX_SECS)
    return echo_correlation(heard, played, T0 + began, T0 + end)


def run(seed: int = DEFAULT_SEED, limit: int | None = None) -> dict:
    """Correlations per row (see the module docstring); ``limit``: the first N
    scenarios of each kind."""
    from pipecat_softack.acoustic_echo import MIN_CORRELATION

    from bench.aec import cancel_echo

    answers = bot_answers()
    rows: dict[str, list[float | None]] = {}
    taken: dict[str, int] = {}
    for scn in make_scenarios(seed):
        if scn.kind not in (*USER_KINDS, "echo") or taken.get(scn.kind, 0) == limit:
            continue
        taken[scn.kind] = taken.get(scn.kind, 0) + 1
        answer = answers[(scn.answer, scn.answer_speed)]
        mic, _ = build_mic(scn, answers, seed)
        if scn.kind != "echo":
            rows.setdefault(f"user {scn.kind} alone", []).append(correlation(mic, answer, scn))
            continue
        rows.setdefault("echo burst, linear path", []).append(correlation(mic, answer, scn))
        cancelled, _ = cancel_echo(scn, mic, answer)
        rows.setdefault("echo burst after AEC3", []).append(correlation(cancelled, answer, scn))
        rng = np.random.default_rng([seed, scn.index])
        for rt60 in ROOMS_RT60_SECS:
            leaked = {(scn.answer, scn.answer_speed): room(answer, rt60, rng)}
            mic_room, _ = build_mic(scn, leaked, seed)
            rows.setdefault(f"echo burst, room RT60 {rt60:g} s", []).append(correlation(mic_room, answer, scn))
    summary = {}
    for name, values in rows.items():
        got = np.array([v for v in values if v is not None])
        summary[name] = {
            "n": len(values),
            "none": len(values) - len(got),
            "quartiles": [round(float(q), 2) for q in np.percentile(got, [25, 50, 75])] if len(got) else None,
            "max": round(float(got.max()), 2) if len(got) else None,
            "at_or_above_threshold": int((got >= MIN_CORRELATION).sum()),
        }
    return {"seed": seed, "threshold": MIN_CORRELATION, "rows": summary}


def format_report(report: dict) -> str:
    t = report["threshold"]
    lines = [
        f"acoustic echo check on bench audio's microphone tracks (seed {report['seed']}; threshold {t:g})",
        f"{'sound':<32}{'n':>4}{'none':>6}{'quartiles':>20}{'max':>7}{f'>= {t:g}':>9}",
    ]
    for name, r in report["rows"].items():
        q = " / ".join(f"{x:.2f}" for x in r["quartiles"]) if r["quartiles"] else "-"
        m = "-" if r["max"] is None else f"{r['max']:.2f}"
        lines.append(f"{name:<32}{r['n']:>4}{r['none']:>6}{q:>20}{m:>7}{r['at_or_above_threshold']:>9}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench echo_check", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"scenario seed (default {DEFAULT_SEED})")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N scenarios of each kind")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    report = run(args.seed, args.limit)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
