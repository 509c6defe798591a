"""STT benchmark: the offline ears on the committed clips, per clip set.

    python -m bench stt [--stt pocketsphinx,whisper,hybrid] [--set tuned,open]
                        [--clips FILE.tsv] [--vad-start-secs 0.2] [--vad-stop-secs 0.2]
                        [--softack-boost W] [--command-boost W] [--stable-chunks N]
                        [--over-echo ERL_DB [--no-aec]]
                        [--verbose] [--tsv OUT] [--json]
    python -m bench.stt ...            (same)

Sets (``--set``, default both, each reported on its own): ``tuned`` =
``tests/audio/clips.tsv``, the clips every STT default (PocketSphinx's boosts and
pronunciations, this bench's settings, the choice of the bot's default ear) was
chosen on; ``open`` = ``tests/audio/open/clips.tsv``, open-vocabulary phrases,
voices and speeds that no default was chosen on (held out: never tune on it).
``--clips`` runs one other manifest instead. All clips are synthetic speech
(Piper, espeak-ng; tests/audio/README.md).

Ears (``--stt``, default all three, one block each, then one summary table):

* ``pocketsphinx``: the streaming ``PocketsphinxStream`` path below;
* ``whisper``: Pipecat's ``WhisperSTTService.run_stt`` on Whisper base
  (bot/whisper_stt.py) on the segment ``SegmentedSTTService`` would send it: up to
  1 s of audio before the VAD start, the speech to the VAD stop, 0.5 s of silence.
  No interims. NOISE clips (no VAD events) are transcribed whole, as if the VAD had
  fired on them (the worst case);
* ``hybrid``: PocketSphinx's interims passed on only when they hold a command
  keyword (``bot.whisper_stt.create_command_word_stt``), Whisper's final.

Double talk (``--over-echo ERL_DB``): each clip is said ``OVER_ECHO_LEAD_SECS`` (3 s)
into one of the audio bench's Piper answers (bench/audio_scenarios.py, in turn),
whose echo reaches the microphone ``OVER_ECHO_DELAY_SECS`` (50 ms) later at an echo
return loss of ERL_DB, and the microphone goes through the reference bot's canceller
as ``--transport local`` runs it (``bot.echo_cancel.EchoCanceller.process_duplex``,
paired 20 ms at a time, warm from the answer's start); ``--no-aec`` leaves the echo
in. PocketSphinx is told the pipeline has a VAD (``vad_present``), as the bot's
service is, so what its own onset detector hears in the echo before the clip goes out
only if the VAD confirms it. This is the user on a laptop speaker talking over the
bot, the case of issue 10's sound-card conversation, which ``bench audio`` (user
sound or echo, never both) does not play.

PocketSphinx details:

It runs the exact decoder code path of ``PocketsphinxSTTService`` (the
``PocketsphinxStream`` state machine its worker thread runs) over every clip,
in 20 ms chunks, with the pipeline VAD simulated from the manifest: a
``VADUserStartedSpeakingFrame`` ``--vad-start-secs`` after speech onset and a
``VADUserStoppedSpeakingFrame`` ``--vad-stop-secs`` after speech end (Silero's
defaults in Pipecat are 0.2/0.2). NOISE clips get no VAD events (the stream's
own onset detector may still open an utterance on them).

Latency: audio is fed faster than real time, and each call's processing cost is
measured. A virtual clock replays it as if chunks arrived in real time: chunk i
arrives at (i+1) * 20 ms, the single decoder thread starts it when it is free
(``max(arrival, previous done)``) and is done after the measured cost. Events
(interims, the final) are stamped with that done time. Reported:

* first interim: done time of the first InterimTranscriptionFrame minus the
  speech onset in the clip;
* final after VAD stop: done time of the final minus the moment the VAD stop
  event arrives (the "< 300 ms" target); final after speech end adds the VAD's
  own stop_secs.

Quality: word accuracy = 1 - WER (word edit distance summed over speech clips,
divided by reference words); keyword hit rate = fraction of soft-ack/command
keywords of the references found in the final; verdict = the project's
``BackchannelClassifier`` on the final (TURN clips must give INTERRUPTION,
BACKCHANNEL clips BACKCHANNEL, NOISE clips anything but INTERRUPTION), and on
the first interim (``partial=True``).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

from bench.audio_io import CLIP_SETS, ROOT, read_wav

DEFAULT_CLIPS = CLIP_SETS["tuned"] / "clips.tsv"
CHUNK_S = 0.02
SR = 16000

# Keywords whose recognition matters for barge-in (the brief's list).
KEYWORDS = [
    "yeah", "yes", "yep", "okay", "ok", "right", "uh-huh", "mm-hmm", "mhm", "hmm", "sure", "i see",
    "got it", "oh", "wow", "really", "exactly", "alright", "cool", "nice", "great",
    "wait", "stop", "no", "but", "hold on", "hang on", "pause", "actually", "excuse me", "sorry",
    "cancel", "never mind", "nope", "quiet", "enough",
]  # fmt: skip


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def keywords_in(text: str) -> list[str]:
    """Keywords in text, longest first, each word used once."""
    words = text.split()
    found, i = [], 0
    multi = sorted(KEYWORDS, key=lambda k: -len(k.split()))
    while i < len(words):
        for k in multi:
            n = len(k.split())
            if words[i : i + n] == k.split():
                found.append(k)
                i += n
                break
        else:
            i += 1
    return found


def load_classifier():
    try:
        from pipecat_softack import BackchannelClassifier, Verdict
    except Exception as e:  # noqa: BLE001 - the classifier is optional here
        print(f"(verdicts skipped: pipecat_softack.BackchannelClassifier unavailable: {e})", file=sys.stderr)
        return None, None
    return BackchannelClassifier(), Verdict


def read_pcm(path: Path) -> bytes:
    """PCM of a 16 kHz mono 16-bit WAV (the harness's reader, bench/audio_io.py)."""
    return read_wav(path)


def run_clip(stream, pcm: bytes, row: dict, vad_start: float, vad_stop: float, keep_interim=None) -> dict:
    """Feed one clip; return final text, first interim and virtual-clock latencies.

    ``keep_interim(text) -> bool``, if given, drops the interims it rejects (the
    hybrid ear passes on command-keyword interims only)."""
    speech = row["label"] != "NOISE"
    onset, end = float(row["speech_start"]), float(row["speech_end"])
    t_vad_start = onset + vad_start if speech else None
    t_vad_stop = end + vad_stop if speech else None
    chunk = int(CHUNK_S * SR) * 2
    # pad with silence so the VAD stop (and a bit more) falls inside the fed audio
    total_s = max(len(pcm) / (2 * SR), (t_vad_stop or 0) + 0.1)
    pcm = pcm + bytes(max(0, int(total_s * SR) * 2 - len(pcm)))
    busy_until = 0.0
    events: list[tuple[float, object]] = []
    started = stopped = False
    cost_total = 0.0
    for i in range(0, len(pcm), chunk):
        t_arr = (i + chunk) / (2 * SR)
        calls = []
        if t_vad_start is not None and not started and t_arr >= t_vad_start:
            calls.append(stream.vad_started)
            started = True
        calls.append(lambda c=pcm[i : i + chunk]: stream.process(c))
        if t_vad_stop is not None and not stopped and t_arr >= t_vad_stop:
            calls.append(stream.vad_stopped)
            stopped = True
        for call in calls:
            t0 = time.perf_counter()
            evs = call()
            cost = time.perf_counter() - t0
            cost_total += cost
            busy_until = max(t_arr, busy_until) + cost
            events += [(busy_until, ev) for ev in evs]
    events += [(busy_until, ev) for ev in stream.flush()]
    stream.reset()
    interims = [(t, e) for t, e in events if e.kind == "interim" and (keep_interim is None or keep_interim(e.text))]
    finals = [(t, e) for t, e in events if e.kind == "final" and e.text]
    out = {
        "final": " ".join(e.text for _, e in finals),
        "first_interim": interims[0][1].text if interims else "",
        "interims": [e.text for _, e in interims],
        "first_interim_lat": (interims[0][0] - onset) if interims and speech else None,
        "final_after_vad_stop": None,
        "final_after_speech_end": None,
        "cost": cost_total,
        "audio_s": len(pcm) / (2 * SR),
    }
    vad_final = [(t, e) for t, e in events if e.kind == "final" and t_vad_stop is not None and t >= t_vad_stop]
    if vad_final:
        out["final_after_vad_stop"] = vad_final[0][0] - t_vad_stop
        out["final_after_speech_end"] = vad_final[0][0] - end
    return out


def pct(xs, q):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


EARS = ("pocketsphinx", "whisper", "hybrid")
WHISPER_PREROLL_S = 1.0  # SegmentedSTTService keeps 1 s of audio before the VAD start
WHISPER_TAIL_S = 0.5  # SegmentedSTTService's default trailing_silence_secs


class WhisperEar:
    """Whisper base through Pipecat's ``WhisperSTTService.run_stt`` (one final per segment)."""

    def __init__(self):
        from bot.whisper_stt import create_whisper_stt

        t0 = time.perf_counter()
        self.service = create_whisper_stt()
        self.load_s = time.perf_counter() - t0
        self._memo: dict[str, tuple[str, float]] = {}

    def transcribe(self, pcm: bytes) -> tuple[str, float]:
        """``(text, seconds)`` of one segment; a segment already transcribed in this
        process (the whisper and hybrid ears send the same ones) is not run again."""
        import hashlib

        key = hashlib.sha1(pcm).hexdigest()
        if key not in self._memo:
            self._memo[key] = self._transcribe(pcm)
        return self._memo[key]

    def _transcribe(self, pcm: bytes) -> tuple[str, float]:
        import asyncio

        async def run():
            return [f async for f in self.service.run_stt(pcm)]

        t0 = time.perf_counter()
        frames = asyncio.run(run())
        cost = time.perf_counter() - t0
        text = " ".join(getattr(f, "text", "").strip() for f in frames).strip()
        return text, cost


def whisper_segment(pcm: bytes, row: dict, vad_start: float, vad_stop: float) -> bytes:
    """The audio ``SegmentedSTTService`` hands Whisper for this clip (see the module docstring)."""
    if row["label"] == "NOISE":
        return pcm + bytes(int(WHISPER_TAIL_S * SR) * 2)
    a = max(0.0, float(row["speech_start"]) + vad_start - WHISPER_PREROLL_S)
    b = float(row["speech_end"]) + vad_stop
    pcm = pcm + bytes(max(0, int(b * SR) * 2 - len(pcm)))
    return pcm[int(a * SR) * 2 : int(b * SR) * 2] + bytes(int(WHISPER_TAIL_S * SR) * 2)


OVER_ECHO_LEAD_SECS = 3.0
OVER_ECHO_DELAY_SECS = 0.05


def over_bot_echo(pcm: bytes, row: dict, answer, erl_db: float, cancel: bool) -> tuple[bytes, dict]:
    """The clip said over the bot playing ``answer`` (float32 samples, 16 kHz), its
    echo at ``erl_db`` dB below what it played (see the module docstring); through the
    echo canceller if ``cancel``. Returns the microphone PCM and the row with its
    speech times moved to where the clip now lies.

    Raises:
        ValueError: ``erl_db`` negative.
    """
    import numpy as np

    from bot.echo_cancel import EchoCanceller

    if erl_db < 0:
        raise ValueError(f"an echo return loss must be >= 0 dB, got {erl_db}")
    user = np.frombuffer(pcm, np.int16).astype(np.float32)
    lead, delay = int(OVER_ECHO_LEAD_SECS * SR), int(OVER_ECHO_DELAY_SECS * SR)
    n = lead + len(user) + int(0.8 * SR)
    played = np.zeros(n, np.float32)
    played[: min(n, len(answer))] = answer[:n]
    mic = np.zeros(n, np.float32)
    mic[delay:] = played[: n - delay] * 10 ** (-erl_db / 20)
    mic[lead : lead + len(user)] += user
    out, played_pcm = _pcm16(mic), _pcm16(played)
    if cancel:
        aec = EchoCanceller()
        aec.start_capture(SR)
        aec.start_render(SR)
        step = int(CHUNK_S * SR) * 2
        out = b"".join(
            aec.process_duplex(out[i : i + step], played_pcm[i : i + step]) for i in range(0, len(out), step)
        )
        aec.stop()
    moved = dict(row)
    if row["label"] != "NOISE":
        for key in ("speech_start", "speech_end"):
            moved[key] = f"{float(row[key]) + OVER_ECHO_LEAD_SECS:.3f}"
    return out, moved


def _pcm16(x) -> bytes:
    import numpy as np

    return np.clip(x, -32768, 32767).astype(np.int16).tobytes()


def released_on_interims(interims: list[str], clf, Verdict, confirmations: int = 2) -> bool:
    """Whether ``SoftAckInterruptionFilter`` would release on these interims, before any
    final: a command keyword at once, a content word once it stood in
    ``confirmations`` consecutive interims (the filter's ``content_confirmations``)."""
    run = 0
    for text in interims:
        verdict, by_command = clf.explain(text, partial=True)
        if verdict == Verdict.INTERRUPTION and by_command:
            return True
        run = run + 1 if verdict == Verdict.INTERRUPTION else 0
        if run >= confirmations:
            return True
    return False


def run_ear(ear: str, rows: list[dict], clips_dir: Path, a, stream, whisper, clf, Verdict) -> list[dict]:
    """Per-clip results of one ear on one clip set."""
    keep = None
    if ear == "hybrid":
        from bot.whisper_stt import command_interim_gate

        keep = command_interim_gate(clf, a.hybrid_min_words)
    results = []
    for k, row in enumerate(rows):
        pcm = read_pcm(clips_dir / row["file"])
        heard = row
        if a.over_echo is not None:
            pcm, heard = over_bot_echo(pcm, row, a.answers[k % len(a.answers)], a.over_echo, not a.no_aec)
        if ear == "whisper":
            res = {"final": "", "first_interim": "", "first_interim_lat": None, "cost": 0.0, "interims": [],
                   "audio_s": len(pcm) / (2 * SR), "final_after_vad_stop": None, "final_after_speech_end": None}  # fmt: skip
        else:
            if a.over_echo is not None:
                # As in the bot, whose pipeline has a VAD: what PocketSphinx's own onset
                # detector opens on the 3 s of echo before the clip is not emitted
                # unless the VAD confirms it.
                stream.vad_present()
            res = run_clip(stream, pcm, heard, a.vad_start_secs, a.vad_stop_secs, keep_interim=keep)
        if ear in ("whisper", "hybrid"):
            if a.over_echo is not None and row["label"] == "NOISE":
                # A NOISE clip goes to Whisper whole (see whisper_segment): the clip,
                # not the bot's echo before it.
                pcm = pcm[int(OVER_ECHO_LEAD_SECS * SR) * 2 :]
            text, cost = whisper.transcribe(whisper_segment(pcm, heard, a.vad_start_secs, a.vad_stop_secs))
            res["final"] = text
            res["cost"] += cost
            if row["label"] != "NOISE":
                # The segment is sent when the VAD stop arrives; the final is out one
                # transcription later (the decoder is idle by then in this replay).
                res["final_after_vad_stop"] = cost
                res["final_after_speech_end"] = cost + a.vad_stop_secs
        res.update(row)
        ref, hyp = row["text"].split(), _words(res["final"])
        res["errors"] = edit_distance(ref, hyp)
        kws = keywords_in(row["text"])
        hyp_kws = keywords_in(" ".join(hyp))
        res["kw_total"] = len(kws)
        res["kw_hit"] = sum(min(kws.count(k), hyp_kws.count(k)) for k in set(kws))
        if clf is not None:
            want = {"TURN": {Verdict.INTERRUPTION}, "BACKCHANNEL": {Verdict.BACKCHANNEL}}.get(
                row["label"], {Verdict.BACKCHANNEL, Verdict.EMPTY}
            )
            v = clf.classify(res["final"])
            vi = clf.classify(res["first_interim"], partial=True) if res["first_interim"] else Verdict.EMPTY
            res["verdict"], res["verdict_ok"] = v.name, v in want
            res["interim_verdict"], res["interim_verdict_ok"] = vi.name, vi in want
            res["released_on_interims"] = released_on_interims(res["interims"], clf, Verdict)
        results.append(res)
        if a.verbose:
            lat = res["first_interim_lat"]
            print(
                f"{row['file']:46s} {row['label']:11s} ref={row['text']!r:34s} hyp={res['final']!r:34s} "
                f"first={res['first_interim']!r:14s} t1={'-' if lat is None else f'{lat * 1000:.0f}ms':>6s} "
                f"{res.get('verdict', '')}{'' if res.get('verdict_ok', True) else ' WRONG'}"
            )
    return results


def _words(text: str) -> list[str]:
    """Words for WER: lower case, punctuation other than apostrophes and hyphens
    dropped (Whisper prints "Wait." where the manifest says "wait")."""
    return "".join(c if c.isalnum() or c in "'- " else " " for c in text.lower()).split()


def _median(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(results: list[dict], clf) -> dict:
    """The figures of one (set, ear) block."""
    speech = [r for r in results if r["label"] != "NOISE"]
    ref_words = sum(len(r["text"].split()) for r in speech)
    errors = sum(r["errors"] for r in speech)
    out = {
        "n": len(results),
        "n_speech": len(speech),
        "word_accuracy": 1 - errors / max(1, ref_words),
        "errors": errors,
        "ref_words": ref_words,
        "exact": sum(_words(r["final"]) == r["text"].split() for r in speech),
        "kw_hit": sum(r["kw_hit"] for r in results),
        "kw_total": sum(r["kw_total"] for r in results),
        "cost_s": sum(r["cost"] for r in results),
        "audio_s": sum(r["audio_s"] for r in results),
        "first_interim_median_s": _median(r["first_interim_lat"] for r in speech),
        "first_interim_p90_s": pct([r["first_interim_lat"] for r in speech], 90),
        "no_interim": sum(r["first_interim_lat"] is None for r in speech),
        "final_after_vad_stop_median_s": _median(r["final_after_vad_stop"] for r in speech),
        "final_after_vad_stop_p99_s": pct([r["final_after_vad_stop"] for r in speech], 99),
        "final_after_speech_end_median_s": _median(r["final_after_speech_end"] for r in speech),
    }
    if clf is not None:
        for label in ("BACKCHANNEL", "TURN", "NOISE"):
            sub = [r for r in results if r["label"] == label]
            out[f"verdict_{label}"] = [sum(r["verdict_ok"] for r in sub), len(sub)]
            out[f"interim_verdict_{label}"] = [sum(r["interim_verdict_ok"] for r in sub), len(sub)]
        out["verdict_ok"] = sum(r["verdict_ok"] for r in results)
        out["missed"] = [r["file"] for r in results if r["label"] == "TURN" and not r["verdict_ok"]]
        out["false_stops"] = [r["file"] for r in results if r["label"] != "TURN" and r["verdict"] == "INTERRUPTION"]
        # Released on interims: while the user still speaks (fast for a TURN; for a
        # backchannel or noise, a false stop no final can undo).
        for label in ("BACKCHANNEL", "TURN", "NOISE"):
            sub = [r for r in results if r["label"] == label]
            out[f"released_on_interims_{label}"] = [sum(r["released_on_interims"] for r in sub), len(sub)]
    by_voice: dict[str, list[dict]] = {}
    for r in speech:
        by_voice.setdefault(r["voice"], []).append(r)
    out["by_voice"] = {
        v: {"word_accuracy": 1 - sum(r["errors"] for r in sub) / max(1, sum(len(r["text"].split()) for r in sub)),
            "verdict_ok": sum(r.get("verdict_ok", False) for r in sub), "n": len(sub)}
        for v, sub in sorted(by_voice.items())
    }  # fmt: skip
    return out


def _ms(x: float | None, digits: int = 0) -> str:
    return "-" if x is None or x != x else f"{x * 1000:.{digits}f} ms"


def format_block(name: str, clips: Path, ear: str, m: dict, params, load_s: float) -> str:
    """The per-(set, ear) report: the lines this bench has always printed."""
    lines = [
        f"== set {name}, ear {ear} ==",
        f"clips: {m['n']} ({m['n_speech']} speech, {m['n'] - m['n_speech']} noise) from {clips}",
    ]
    if ear != "whisper":
        lines.append(f"params: {params}")
    lines += [
        f"model load: {load_s:.2f} s   real-time factor: {m['cost_s'] / max(m['audio_s'], 1e-9):.3f} "
        f"({m['cost_s']:.1f} s CPU for {m['audio_s']:.1f} s audio)",
        f"word accuracy (1-WER): {m['word_accuracy']:.3f}  ({m['errors']} errors / {m['ref_words']} words)",
        f"exact transcripts: {m['exact']}/{m['n_speech']}",
        f"keyword hit rate: {m['kw_hit'] / max(1, m['kw_total']):.3f}  ({m['kw_hit']}/{m['kw_total']})",
    ]
    if "verdict_ok" in m:
        for label in ("BACKCHANNEL", "TURN", "NOISE"):
            ok, n = m[f"verdict_{label}"]
            iok, _ = m[f"interim_verdict_{label}"]
            if n:
                lines.append(f"verdict {label:11s}: final {ok}/{n}, first interim {iok}/{n}")
        lines.append(f"verdict correct on final: {m['verdict_ok'] / max(1, m['n']):.3f} ({m['verdict_ok']}/{m['n']})")
        lines.append(f"  missed interruptions: {len(m['missed'])} {m['missed']}")
        lines.append(f"  false stops (backchannel/noise -> INTERRUPTION): {len(m['false_stops'])} {m['false_stops']}")
    lines.append(
        f"latency first interim after speech onset: median {_ms(m['first_interim_median_s'])}, "
        f"p90 {_ms(m['first_interim_p90_s'])} ({m['no_interim']} speech clips without interim)"
    )
    lines.append(
        f"latency final after VAD stop: median {_ms(m['final_after_vad_stop_median_s'], 1)}, "
        f"p99 {_ms(m['final_after_vad_stop_p99_s'], 1)}"
    )
    lines.append(f"latency final after end of speech: median {_ms(m['final_after_speech_end_median_s'])}")
    for v, d in m["by_voice"].items():
        lines.append(f"  {v:32s} word acc {d['word_accuracy']:.3f}, verdict {d['verdict_ok']}/{d['n']}")
    return "\n".join(lines)


def format_summary(blocks: list[dict]) -> str:
    """One row per (set, ear): what the barge-in decision gets from each ear."""
    lines = [
        f"{'set':<6} {'ear':<13} {'word acc':>8} {'BC ok':>7} {'TURN ok':>8} {'NOISE ok':>8} "
        f"{'released on interims':>22} {'final false':>11} {'final':>6} {'final after VAD stop':>21}",
        f"{'':<6} {'':<13} {'':>8} {'(final)':>7} {'(final)':>8} {'(final)':>8} {'TURN / BC+NOISE':>22} "
        f"{'stops':>11} {'missed':>6} {'median/p99 ms':>21}",
    ]
    for b in blocks:
        m = b["metrics"]
        f = lambda k: f"{m[k][0]}/{m[k][1]}"  # noqa: E731
        lat = m["final_after_vad_stop_median_s"]
        p99 = m["final_after_vad_stop_p99_s"]
        lat_s = "-" if lat is None else f"{lat * 1000:.0f}/{p99 * 1000:.0f}"
        rt, rb, rn = (m[f"released_on_interims_{k}"] for k in ("TURN", "BACKCHANNEL", "NOISE"))
        rel = f"{rt[0]}/{rt[1]} / {rb[0] + rn[0]}/{rb[1] + rn[1]}"
        lines.append(
            f"{b['set']:<6} {b['ear']:<13} {m['word_accuracy']:>8.3f} {f('verdict_BACKCHANNEL'):>7} "
            f"{f('verdict_TURN'):>8} {f('verdict_NOISE'):>8} {rel:>22} "
            f"{len(m['false_stops']):>11} {len(m['missed']):>6} {lat_s:>21}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench stt", description=__doc__.splitlines()[0])
    ap.add_argument("--stt", default=",".join(EARS), help=f"comma-separated ears of {EARS} (default: all)")
    ap.add_argument("--set", default="tuned,open", help="comma-separated clip sets: tuned, open (default: both)")
    ap.add_argument("--clips", type=Path, default=None, help="one manifest TSV instead of --set")
    ap.add_argument("--vad-start-secs", type=float, default=0.2)
    ap.add_argument("--vad-stop-secs", type=float, default=0.2)
    ap.add_argument("--softack-boost", type=float, default=None, help="PocketsphinxParams.softack_boost")
    ap.add_argument("--command-boost", type=float, default=None, help="PocketsphinxParams.command_boost")
    ap.add_argument("--word-boost", action="append", default=[], metavar="WORD=W", help="per-word boost")
    ap.add_argument("--stable-chunks", type=int, default=None, help="PocketsphinxParams.interim_stable_chunks")
    ap.add_argument("--no-internal-onset", action="store_true", help="open utterances on the VAD start only")
    ap.add_argument("--hybrid-min-words", type=int, default=None,
                    help="hybrid: interim words that pass without a command keyword "
                    "(default bot.whisper_stt.HYBRID_MIN_CONTENT_WORDS; 0 = commands only)")  # fmt: skip
    ap.add_argument("--over-echo", type=float, default=None, metavar="ERL_DB",
                    help="say each clip over the bot's echo at this echo return loss (dB), through the AEC")
    ap.add_argument("--no-aec", action="store_true", help="with --over-echo: leave the echo in")
    ap.add_argument("--filter", default="", help="only clips whose file name contains this")
    ap.add_argument("--verbose", "-v", action="store_true", help="one line per clip")
    ap.add_argument("--tsv", type=Path, help="write per-clip results here (all sets and ears)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    a = ap.parse_args(argv)
    if a.over_echo is not None and a.over_echo < 0:
        print(f"error: --over-echo {a.over_echo:g}: an echo return loss >= 0 dB", file=sys.stderr)
        return 2
    if a.no_aec and a.over_echo is None:
        print("error: --no-aec goes with --over-echo", file=sys.stderr)
        return 2
    ears = [e.strip() for e in a.stt.split(",") if e.strip()]
    bad = [e for e in ears if e not in EARS]
    if bad or not ears:
        print(f"error: --stt {a.stt!r}: choose from {EARS}", file=sys.stderr)
        return 2
    if a.clips is not None:
        sets = {a.clips.stem if a.clips.name != "clips.tsv" else a.clips.parent.name: a.clips}
    else:
        names = [n.strip() for n in a.set.split(",") if n.strip()]
        bad = [n for n in names if n not in CLIP_SETS]
        if bad or not names:
            print(f"error: --set {a.set!r}: choose from {tuple(CLIP_SETS)}", file=sys.stderr)
            return 2
        sets = {n: CLIP_SETS[n] / "clips.tsv" for n in names}

    sys.path.insert(0, str(ROOT))
    from bot.pocketsphinx_stt import PocketsphinxParams, PocketsphinxRecognizer, PocketsphinxStream

    params = PocketsphinxParams()
    if a.softack_boost is not None:
        params.softack_boost = a.softack_boost
    if a.command_boost is not None:
        params.command_boost = a.command_boost
    for spec in a.word_boost:
        w, _, v = spec.rpartition("=")
        params.word_boost[w] = float(v)
    if a.stable_chunks is not None:
        params.interim_stable_chunks = a.stable_chunks

    out = sys.stdout
    if a.json:
        sys.stdout = sys.stderr  # per-clip lines and logs off stdout
    load = {}
    stream = whisper = None
    if set(ears) & {"pocketsphinx", "hybrid"}:
        t0 = time.perf_counter()
        stream = PocketsphinxStream(PocketsphinxRecognizer(params), internal_onset=not a.no_internal_onset)
        load["pocketsphinx"] = time.perf_counter() - t0
    if set(ears) & {"whisper", "hybrid"}:
        from loguru import logger

        logger.remove()
        logger.add(sys.stderr, level="WARNING")
        whisper = WhisperEar()
        load["whisper"] = whisper.load_s
    load["hybrid"] = load.get("pocketsphinx", 0.0) + load.get("whisper", 0.0)
    if a.hybrid_min_words is None:
        from bot.whisper_stt import HYBRID_MIN_CONTENT_WORDS

        a.hybrid_min_words = HYBRID_MIN_CONTENT_WORDS
    clf, Verdict = load_classifier()
    if a.over_echo is not None:
        from bench.audio_scenarios import bot_answers

        answers = bot_answers()
        a.answers = [answers[key] for key in sorted(answers)]

    blocks, all_rows = [], []
    for set_name, manifest in sets.items():
        with open(manifest, newline="") as f:
            rows = [r for r in csv.DictReader(f, delimiter="\t") if a.filter in r["file"]]
        for ear in ears:
            results = run_ear(ear, rows, manifest.parent, a, stream, whisper, clf, Verdict)
            m = summarize(results, clf)
            blocks.append({"set": set_name, "ear": ear, "clips": str(manifest), "metrics": m})
            all_rows += [dict(r, set=set_name, ear=ear) for r in results]
            if not a.json:
                print(format_block(set_name, manifest, ear, m, params, load[ear]))
                print()
    sys.stdout = out
    if a.json:
        print(json.dumps({"vad_start_secs": a.vad_start_secs, "vad_stop_secs": a.vad_stop_secs,
                          "over_echo_db": a.over_echo, "aec": a.over_echo is not None and not a.no_aec,
                          "params": str(params), "blocks": blocks}))  # fmt: skip
    else:
        print(format_summary(blocks))
    if a.tsv:
        cols = ["set", "ear", "file", "label", "voice", "text", "final", "first_interim", "first_interim_lat",
                "final_after_vad_stop", "errors", "kw_hit", "kw_total", "verdict", "interim_verdict"]  # fmt: skip
        with open(a.tsv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, delimiter="\t", extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            w.writerows(all_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
