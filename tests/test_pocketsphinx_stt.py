"""PocketsphinxSTTService driven through a real Pipecat pipeline (run_test), and the
decoder processes it borrows from the shared pool (bot/pocketsphinx_stt.py)."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import wave
from pathlib import Path

import pytest

pytest.importorskip("pocketsphinx")

from pipecat.frames.frames import (  # noqa: E402
    CancelFrame,
    ErrorFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.processors.frame_processor import FrameProcessor  # noqa: E402
from pipecat.tests.utils import SleepFrame, run_test  # noqa: E402

from bot.pocketsphinx_stt import (  # noqa: E402
    DecoderPool,
    PocketsphinxParams,
    PocketsphinxRecognizer,
    PocketsphinxSTTService,
    canonical_text,
    decoder_pool,
)

ROOT = Path(__file__).resolve().parent.parent
AUDIO = Path(__file__).parent / "audio"
CHUNK = 640  # 20 ms at 16 kHz, 16-bit


def clip(name: str) -> bytes:
    with wave.open(str(AUDIO / name), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return w.readframes(w.getnframes())


def audio_frames(pcm: bytes, rate: int = 16000) -> list:
    return [
        InputAudioRawFrame(audio=pcm[i : i + CHUNK], sample_rate=rate, num_channels=1)
        for i in range(0, len(pcm), CHUNK)
    ]


def decoder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.endswith("-decoder") and t.is_alive()]


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def assert_session_left_nothing(stt: PocketsphinxSTTService) -> None:
    """No thread, task or busy process of the session is left: its decoder process is
    back in the pool, idle (or stopped), and the service holds none of it."""
    assert not decoder_threads()
    assert stt._decoder is None and stt._reader_task is None and stt._in_q is None
    assert not [t for t in asyncio.all_tasks() if "pocketsphinx" in t.get_name()]
    pool = decoder_pool()
    assert set(pool.pids()) == set(pool.idle_pids()), "a decoder process is still in a session"


class Probe(FrameProcessor):
    """Runs ``action(stt)`` once, on the ``at``-th audio frame, then passes frames on."""

    def __init__(self, stt, at: int, action):
        super().__init__()
        self._stt, self._at, self._action, self._n = stt, at, action, 0

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self._n += 1
            if self._n == self._at:
                self._action(self._stt)
        await self.push_frame(frame, direction)


def turn(pcm: bytes, settle: float = 0.5, paced: bool = False) -> list:
    # Speech onset is 0.25 s into every clip; the pipeline VAD fires ~0.2 s later.
    frames = audio_frames(pcm)
    if paced:  # real time: one 20 ms chunk every 20 ms, as a transport delivers it
        frames = [x for f in frames for x in (f, SleepFrame(sleep=0.02))]
    k = int(0.45 / 0.02) * (2 if paced else 1)
    return (
        frames[:k]
        + [VADUserStartedSpeakingFrame(start_secs=0.2)]
        + frames[k:]
        + [VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(sleep=settle)]
    )


@pytest.mark.parametrize(
    "name,keyword",
    [
        ("stop__joe.wav", "stop"),
        ("wait__joe.wav", "wait"),
        ("tell_me_a_story_about_a_dog__joe.wav", "story"),
    ],
)
async def test_interims_then_final_with_keyword(name, keyword):
    stt = PocketsphinxSTTService()
    down, _ = await run_test(stt, frames_to_send=turn(clip(name)))
    interims = [f for f in down if isinstance(f, InterimTranscriptionFrame)]
    finals = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert interims, "no InterimTranscriptionFrame"
    assert len(finals) == 1, finals
    final = finals[0]
    assert keyword in final.text.split(), final.text
    assert final.finalized
    assert final.timestamp and isinstance(final.user_id, str)
    # interims come before the final
    assert down.index(interims[0]) < down.index(final)
    assert_session_left_nothing(stt)


async def test_audio_passthrough_and_vad_frames_forwarded():
    stt = PocketsphinxSTTService()
    pcm = clip("wait__joe.wav")
    down, _ = await run_test(stt, frames_to_send=turn(pcm))
    n_audio = sum(isinstance(f, InputAudioRawFrame) for f in down)
    assert n_audio == len(audio_frames(pcm))
    assert any(isinstance(f, VADUserStartedSpeakingFrame) for f in down)
    assert any(isinstance(f, VADUserStoppedSpeakingFrame) for f in down)


async def test_the_vad_stop_alone_finalizes_the_utterance():
    """The final comes from the VAD stop: no audio follows it and the session is
    cancelled (no end-of-session flush) after a liveness deadline. How fast it comes
    (P99 0.15 s, POCKETSPHINX_TTFS_P99) is measured by ``python -m bench stt``, not here."""
    stt = PocketsphinxSTTService()
    frames = turn(clip("actually_i_have_a_question__joe.wav"), settle=3.0, paced=True)
    assert isinstance(frames[-2], VADUserStoppedSpeakingFrame)  # no audio after it
    down, _ = await run_test(stt, frames_to_send=[*frames, CancelFrame()], send_end_frame=False)
    finals = [f for f in down if isinstance(f, TranscriptionFrame)]
    stop = next(f for f in down if isinstance(f, VADUserStoppedSpeakingFrame))
    assert len(finals) == 1 and "question" in finals[0].text.split(), finals
    assert down.index(stop) < down.index(finals[0])
    assert_session_left_nothing(stt)


async def test_resamples_other_input_rates():
    import numpy as np

    pcm16 = np.frombuffer(clip("stop__joe.wav"), dtype=np.int16)
    pcm48 = np.repeat(pcm16, 3).astype(np.int16).tobytes()  # crude 48 kHz
    frames = [
        InputAudioRawFrame(audio=pcm48[i : i + CHUNK * 3], sample_rate=48000, num_channels=1)
        for i in range(0, len(pcm48), CHUNK * 3)
    ]
    # In real time, as a transport delivers it: resampling and decoding keep up however
    # loaded the machine is, and the EndFrame's flush has nothing left to wait for.
    frames = [x for f in frames for x in (f, SleepFrame(sleep=0.02))]
    k = 2 * int(0.45 / 0.02)
    stt = PocketsphinxSTTService(sample_rate=48000)
    down, _ = await run_test(
        stt,
        frames_to_send=frames[:k]
        + [VADUserStartedSpeakingFrame()]
        + frames[k:]
        + [VADUserStoppedSpeakingFrame(), SleepFrame(sleep=0.5)],
    )
    finals = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    assert finals and "stop" in finals[0].split(), finals
    assert_session_left_nothing(stt)


async def test_noise_without_pipeline_vad_gives_no_final():
    stt = PocketsphinxSTTService()
    pcm = clip("noise_keyboard.wav") + bytes(32000)  # 1 s of trailing silence
    down, _ = await run_test(stt, frames_to_send=audio_frames(pcm) + [SleepFrame(sleep=0.3)])
    assert not [f for f in down if isinstance(f, TranscriptionFrame)]


async def test_end_frame_mid_utterance_flushes_and_stops_thread():
    stt = PocketsphinxSTTService()
    frames = turn(clip("no_stop__joe.wav"))[:-2]  # no VAD stop: EndFrame ends the turn
    down, _ = await run_test(stt, frames_to_send=frames + [SleepFrame(sleep=0.2)])
    finals = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    assert finals and "stop" in finals[-1].split(), finals
    assert_session_left_nothing(stt)


async def test_cancel_frame_leaves_no_thread_or_task():
    stt = PocketsphinxSTTService()
    frames = turn(clip("hold_on__joe.wav"))[:-2] + [CancelFrame()]
    await asyncio.wait_for(run_test(stt, frames_to_send=frames, send_end_frame=False), timeout=10)
    assert_session_left_nothing(stt)


def test_canonical_spelling():
    assert canonical_text(["mhm"]) == "mm-hmm"
    assert canonical_text(["<s>", "hold_on~", "[NOISE]", "</s>"]) == "hold on"
    assert canonical_text(["ok"]) == "okay"
    assert canonical_text(["uh", "huh"]) == "uh-huh"
    assert canonical_text(["yeah(2)"]) == "yeah"


def test_recognizer_streams_partials():
    rec = PocketsphinxRecognizer()
    pcm = clip("what_s_the_weather_like_on_mars__joe.wav")
    rec.start()
    partials = [p for i in range(0, len(pcm), CHUNK) if (p := rec.feed(pcm[i : i + CHUNK]))]
    final = rec.finish()
    assert len(partials) >= 2
    assert final.startswith("what's the weather")


def test_with_a_pipeline_vad_unconfirmed_interims_wait_for_its_start():
    """Noise and echo open utterances in pocketsphinx's own detector that Silero
    rejects (bench audio): with a pipeline VAD, their words wait for its start."""
    from bot.pocketsphinx_stt import PocketsphinxParams, PocketsphinxRecognizer, PocketsphinxStream

    pcm = clip("tell_me_a_story_about_a_dog__joe.wav")
    chunk = 640  # 20 ms

    def run(vad_present: bool):
        stream = PocketsphinxStream(PocketsphinxRecognizer(PocketsphinxParams()))
        if vad_present:
            stream.vad_present()
        events = []
        for i in range(0, len(pcm), chunk):
            events += stream.process(pcm[i : i + chunk])
        before_start = [e for e in events if e.kind == "interim"]
        return before_start, stream.vad_started()

    without_vad, _ = run(vad_present=False)
    assert without_vad  # the internal detector alone streams interims
    held, on_start = run(vad_present=True)
    assert held == []
    assert [e.kind for e in on_start] == ["interim"] and on_start[0].confirmed


def test_with_a_pipeline_vad_an_unconfirmed_command_goes_out():
    """Silero misses this quick "wait" in every phase of its window: the stream lets
    the command out unconfirmed, interims and final, for the filter to judge."""
    from bot.pocketsphinx_stt import PocketsphinxParams, PocketsphinxRecognizer, PocketsphinxStream

    pcm = clip("wait__joe_x125.wav") + bytes(640 * 60)  # then 1.2 s of silence: it endpoints
    stream = PocketsphinxStream(PocketsphinxRecognizer(PocketsphinxParams()))
    stream.vad_present()
    events = []
    for i in range(0, len(pcm), 640):
        events += stream.process(pcm[i : i + 640])
    finals = [e for e in events if e.kind == "final"]
    assert [(e.text, e.confirmed) for e in finals] == [("wait", False)]
    assert any(e.kind == "interim" and "wait" in e.text for e in events)


# -- the decoder process ------------------------------------------------------


def session_summary(down: list) -> tuple[list[str], list[str]]:
    interims = [f.text for f in down if isinstance(f, InterimTranscriptionFrame)]
    finals = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    return interims, finals


async def test_decoding_runs_in_a_pooled_process_reused_by_the_next_session():
    """The decoder is another process (the binding holds the GIL while it decodes, which
    stalled the event loop when it was a thread), and the next session borrows the same
    process; it decodes the clip exactly as the first session did, on the fresh
    recognizer the process built for it while idle."""
    seen = []
    sessions = []
    for _ in range(2):
        stt = PocketsphinxSTTService()
        probe = Probe(stt, at=5, action=lambda s: seen.append(s._decoder.pid))
        frames = turn(clip("what_s_the_weather_like_on_mars__joe.wav"))
        down, _ = await run_test(Pipeline([probe, stt]), frames_to_send=frames)
        sessions.append(session_summary(down))
        assert_session_left_nothing(stt)
    assert seen[0] != os.getpid()
    assert seen[0] == seen[1], "the second session did not reuse the pooled process"
    assert seen[0] in decoder_pool().idle_pids()
    (interims, finals), again = sessions
    assert finals and finals[0].startswith("what's the weather"), finals
    assert again == (interims, finals)


async def test_a_missing_model_is_an_error_frame_naming_it_not_a_hang():
    missing = "/nonexistent/pocketsphinx-model"
    stt = PocketsphinxSTTService(params=PocketsphinxParams(config={"hmm": missing}))
    pid = decoder_pool()._idle[DecoderPool.key(stt._params)][0].pid  # spawned by the constructor
    frames = audio_frames(clip("stop__joe.wav")) + [SleepFrame(sleep=0.5)]
    down, up = await asyncio.wait_for(run_test(stt, frames_to_send=frames), timeout=60)
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1, errors
    assert "failed to load" in errors[0] and missing in errors[0], errors
    assert not [f for f in down if isinstance(f, TranscriptionFrame)]
    assert_session_left_nothing(stt)
    assert not running(pid)
    assert pid not in decoder_pool().pids()


async def test_a_decoder_process_that_dies_is_an_error_frame_naming_how():
    stt = PocketsphinxSTTService()
    killed = []

    def kill(s):
        killed.append(s._decoder.pid)
        os.kill(s._decoder.pid, signal.SIGKILL)

    frames = turn(clip("tell_me_a_story_about_a_dog__joe.wav"), settle=1.0)
    pipeline = Pipeline([Probe(stt, at=40, action=kill), stt])
    down, up = await asyncio.wait_for(run_test(pipeline, frames_to_send=frames), timeout=60)
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and "died" in errors[0] and "SIGKILL" in errors[0], errors
    # audio still passes through to the rest of the pipeline
    n_audio = sum(isinstance(f, InputAudioRawFrame) for f in frames)
    assert sum(isinstance(f, InputAudioRawFrame) for f in down) == n_audio
    assert_session_left_nothing(stt)
    assert killed and killed[0] not in decoder_pool().pids() and not running(killed[0])


async def test_the_bench_primed_service_waits_for_the_decoder_to_answer():
    """bench/audio.py feeds a warm-up through ``_send`` and waits on ``_in_q.empty()``
    before it stops discarding events: empty must mean decoded, or the warm-up's
    words would leak into the scenario."""
    from bench.audio import _primed_stt

    stt = _primed_stt(clip("stop__joe.wav") + clip("hold_on__joe.wav"))
    # Its start() lasts until the warm-up is decoded: longer than run_test's 1 s default.
    down, _ = await run_test(stt, frames_to_send=turn(clip("wait__joe.wav")), start_timeout=60)
    interims, finals = session_summary(down)
    assert finals == ["wait"], (interims, finals)
    assert not {"stop", "hold on"} & set(interims), interims
    assert_session_left_nothing(stt)


def test_the_pool_keeps_one_idle_process_per_parameter_set():
    pool = DecoderPool(max_idle=1)
    params = PocketsphinxParams()
    try:
        a, b = pool.acquire(params), pool.acquire(params)
        assert a.pid != b.pid and set(pool.pids()) == {a.pid, b.pid}
        assert pool.release(a) is True
        assert pool.release(b) is False  # the caller stops it
        b.stop()
        pool.forget(b)
        assert not running(b.pid)
        assert pool.idle_pids() == [a.pid]
        assert pool.acquire(params) is a
    finally:
        pool.shutdown()
    assert pool.pids() == [] and not running(a.pid)


EXIT_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, signal, sys, threading
    from loguru import logger
    logger.remove()
    from pipecat.frames.frames import InputAudioRawFrame
    from pipecat.tests.utils import run_test
    from bot.pocketsphinx_stt import PocketsphinxParams, PocketsphinxSTTService, decoder_pool

    async def session():
        stt = PocketsphinxSTTService()
        frames = [InputAudioRawFrame(audio=bytes(640), sample_rate=16000, num_channels=1)] * 10
        await run_test(stt, frames_to_send=frames)

    asyncio.run(session())  # its process goes back to the pool, idle
    # one spawned from another thread (no parent-death signal: its pipe's EOF stops it)
    t = threading.Thread(target=decoder_pool().preload, args=(PocketsphinxParams(command_boost=1.0),))
    t.start(); t.join()
    # "spawn" also starts multiprocessing's resource tracker: it must go too
    from multiprocessing import resource_tracker
    print("PIDS", *decoder_pool().pids(), flush=True)
    print("TRACKER", getattr(resource_tracker._resource_tracker, "_pid", None) or "", flush=True)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_no_decoder_process_outlives_the_interpreter(how):
    """At a normal exit the pool stops its processes (atexit); when the bot is killed
    outright, they notice (parent-death signal, or their pipe closing) and exit, and so
    does the resource tracker "spawn" started."""
    result = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, how], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("PIDS")), None)
    assert line is not None, result.stderr[-2000:]
    pids = [int(p) for p in line.split()[1:]]
    assert len(pids) == 2, line
    tracker = next(ln for ln in result.stdout.splitlines() if ln.startswith("TRACKER")).split()[1:]
    pids += [int(p) for p in tracker]
    if how == "exit":
        assert result.returncode == 0, result.stderr[-2000:]
    deadline = time.monotonic() + 30  # liveness only: they exit well within a second
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if running(p)]
