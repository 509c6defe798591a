"""STT benchmark: PocketSphinx on the committed clips (tests/audio/clips.tsv).

    python -m bench stt [--clips tests/audio/clips.tsv] [--vad-start-secs 0.2]
                        [--vad-stop-secs 0.2] [--softack-boost W] [--command-boost W]
                        [--stable-chunks N] [--verbose] [--tsv OUT]
    python -m bench.stt ...            (same)

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
import statistics
import sys
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CLIPS = ROOT / "tests" / "audio" / "clips.tsv"
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
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SR, 1, 2):
            raise ValueError(f"{path}: need 16 kHz mono 16-bit")
        return w.readframes(w.getnframes())


def run_clip(stream, pcm: bytes, row: dict, vad_start: float, vad_stop: float) -> dict:
    """Feed one clip; return final text, first interim and virtual-clock latencies."""
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
    interims = [(t, e) for t, e in events if e.kind == "interim"]
    finals = [(t, e) for t, e in events if e.kind == "final" and e.text]
    out = {
        "final": " ".join(e.text for _, e in finals),
        "first_interim": interims[0][1].text if interims else "",
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench stt", description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, default=DEFAULT_CLIPS, help="manifest TSV (default: %(default)s)")
    ap.add_argument("--vad-start-secs", type=float, default=0.2)
    ap.add_argument("--vad-stop-secs", type=float, default=0.2)
    ap.add_argument("--softack-boost", type=float, default=None, help="PocketsphinxParams.softack_boost")
    ap.add_argument("--command-boost", type=float, default=None, help="PocketsphinxParams.command_boost")
    ap.add_argument("--word-boost", action="append", default=[], metavar="WORD=W", help="per-word boost")
    ap.add_argument("--stable-chunks", type=int, default=None, help="PocketsphinxParams.interim_stable_chunks")
    ap.add_argument("--no-internal-onset", action="store_true", help="open utterances on the VAD start only")
    ap.add_argument("--filter", default="", help="only clips whose file name contains this")
    ap.add_argument("--verbose", "-v", action="store_true", help="one line per clip")
    ap.add_argument("--tsv", type=Path, help="write per-clip results here")
    a = ap.parse_args(argv)

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

    t0 = time.perf_counter()
    stream = PocketsphinxStream(PocketsphinxRecognizer(params), internal_onset=not a.no_internal_onset)
    load_s = time.perf_counter() - t0
    clf, Verdict = load_classifier()

    with open(a.clips, newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if a.filter in r["file"]]
    results = []
    for row in rows:
        res = run_clip(stream, read_pcm(a.clips.parent / row["file"]), row, a.vad_start_secs, a.vad_stop_secs)
        res.update(row)
        ref, hyp = row["text"].split(), res["final"].split()
        res["errors"] = edit_distance(ref, hyp)
        kws = keywords_in(row["text"])
        hyp_kws = keywords_in(res["final"])
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
        results.append(res)
        if a.verbose:
            lat = res["first_interim_lat"]
            print(
                f"{row['file']:46s} {row['label']:11s} ref={row['text']!r:34s} hyp={res['final']!r:34s} "
                f"first={res['first_interim']!r:14s} t1={'-' if lat is None else f'{lat * 1000:.0f}ms':>6s} "
                f"{res.get('verdict', '')}{'' if res.get('verdict_ok', True) else ' WRONG'}"
            )

    speech = [r for r in results if r["label"] != "NOISE"]
    ref_words = sum(len(r["text"].split()) for r in speech)
    errors = sum(r["errors"] for r in speech)
    kw_total = sum(r["kw_total"] for r in results)
    kw_hit = sum(r["kw_hit"] for r in results)
    cost = sum(r["cost"] for r in results)
    audio = sum(r["audio_s"] for r in results)
    lat1 = [r["first_interim_lat"] for r in speech]
    latf = [r["final_after_vad_stop"] for r in speech]
    late = [r["final_after_speech_end"] for r in speech]

    print(f"clips: {len(results)} ({len(speech)} speech, {len(results) - len(speech)} noise) from {a.clips}")
    print(f"params: {params}")
    print(f"model load: {load_s:.2f} s   real-time factor: {cost / audio:.3f} ({cost:.1f} s CPU for {audio:.1f} s audio)")
    print(f"word accuracy (1-WER): {1 - errors / max(1, ref_words):.3f}  ({errors} errors / {ref_words} words)")
    print(f"exact transcripts: {sum(r['final'] == r['text'] for r in speech)}/{len(speech)}")
    print(f"keyword hit rate: {kw_hit / max(1, kw_total):.3f}  ({kw_hit}/{kw_total})")
    for label in ("BACKCHANNEL", "TURN"):
        sub = [r for r in results if r["label"] == label]
        kt = sum(r["kw_total"] for r in sub)
        print(f"  {label:11s} keywords: {sum(r['kw_hit'] for r in sub)}/{kt}")
    if clf is not None:
        for label in ("BACKCHANNEL", "TURN", "NOISE"):
            sub = [r for r in results if r["label"] == label]
            if sub:
                print(
                    f"verdict {label:11s}: final {sum(r['verdict_ok'] for r in sub)}/{len(sub)}, "
                    f"first interim {sum(r['interim_verdict_ok'] for r in sub)}/{len(sub)}"
                )
        ok = sum(r["verdict_ok"] for r in results)
        print(f"verdict correct on final: {ok / len(results):.3f} ({ok}/{len(results)})")
        missed = [r["file"] for r in results if r["label"] == "TURN" and not r["verdict_ok"]]
        false_stop = [r["file"] for r in results if r["label"] != "TURN" and r["verdict"] == "INTERRUPTION"]
        print(f"  missed interruptions: {len(missed)} {missed}")
        print(f"  false stops (backchannel/noise -> INTERRUPTION): {len(false_stop)} {false_stop}")
    no_interim = sum(x is None for x in lat1)
    print(
        "latency first interim after speech onset: "
        f"median {statistics.median([x for x in lat1 if x is not None]) * 1000:.0f} ms, "
        f"p90 {pct(lat1, 90) * 1000:.0f} ms ({no_interim} speech clips without interim)"
    )
    print(
        "latency final after VAD stop: "
        f"median {statistics.median([x for x in latf if x is not None]) * 1000:.1f} ms, "
        f"p99 {pct(latf, 99) * 1000:.1f} ms, max {max(x for x in latf if x is not None) * 1000:.1f} ms"
    )
    print(
        f"latency final after end of speech (incl. VAD stop_secs {a.vad_stop_secs}): "
        f"median {statistics.median([x for x in late if x is not None]) * 1000:.0f} ms"
    )
    by_voice = {}
    for r in speech:
        by_voice.setdefault(r["voice"], []).append(r)
    for v, sub in sorted(by_voice.items()):
        rw = sum(len(r["text"].split()) for r in sub)
        extra = ""
        if clf is not None:
            extra = f", verdict {sum(r['verdict_ok'] for r in sub)}/{len(sub)}"
        print(f"  {v:16s} word acc {1 - sum(r['errors'] for r in sub) / rw:.3f}{extra}")
    if a.tsv:
        cols = ["file", "label", "voice", "text", "final", "first_interim", "first_interim_lat",
                "final_after_vad_stop", "errors", "kw_hit", "kw_total", "verdict", "interim_verdict"]  # fmt: skip
        with open(a.tsv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, delimiter="\t", extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            w.writerows(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
