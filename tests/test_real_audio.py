"""The real offline bot on recorded audio: Silero VAD, PocketSphinx, the soft-ack
filter, SmolLM2 (llama.cpp server) and Piper, with a file-fed microphone and a
speaker that plays in real time (bench/audio_timeline.py).

One run per scenario, module-scoped (~20 s each on 2 cores): at 0.5 s the user asks
"tell me a story about a dog" (the bot is silent); once the bot speaks, a
backchannel clip, then an interruption clip. The assertions read the timeline of
what happened when; on failure it is printed (pytest shows captured stdout).

One more run has the bot's own speaker in its microphone, through its echo canceller
(``--transport local`` without headphones), and no user speech until "stop", 9 s into
the answer.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("pocketsphinx")
pytest.importorskip("piper")
pytest.importorskip("llama_cpp")

from bench.audio_timeline import (  # noqa: E402
    Timeline,
    format_figures,
    run_offline_barge_in,
    utterances,
)

TURN = "tell_me_a_story_about_a_dog__joe.wav"
# Clips the offline STT hears reliably (tests/audio/README.md, `python -m bench stt`):
# "yeah" is read as "yeah" from its first interim on; "stop" and "wait" give a
# non-soft-ack word on the first interim, which is all the filter needs.
SCENARIOS = {
    "yeah+stop": ("yeah__joe.wav", "stop__joe.wav"),
    "sure+no_stop": ("sure__joe.wav", "no_stop__joe.wav"),
    # Once a failure: pocketsphinx's interim "over" released this backchannel.
    # Not "wait__joe.wav": Silero (start_secs 0.1) misses that clip outright in 3 of
    # the 8 phases of its 32 ms window against our 20 ms frames, so it failed by luck.
    "oh_really+hold_on": ("oh_really__joe.wav", "hold_on__joe.wav"),
    # Pipecat's canonical shape: Silero inside the user aggregator, the filter in one line.
    "vad-in-aggregator:yeah+no_stop": ("yeah__joe.wav", "no_stop__joe.wav"),
}
BACKCHANNEL_DELAY = 1.0  # s after the bot starts speaking
INTERRUPT_DELAY = 4.5  # s after the bot starts speaking (its answer lasts ~40 s)

# Bounds (seconds). Measured on 2 cores: first bot audio ~4.4 s after the VAD stop
# (Smart Turn waits its 3 s on this turn), the bot quiet ~0.65 s after the
# interruption clip starts (its speech starts 0.25 s into the clip).
MAX_TURN_TO_BOT_AUDIO = 15.0
MAX_CLIP_START_TO_STOP = 2.0
MAX_INTERRUPTION_TO_SILENCE = 0.3


class Run:
    def __init__(self, name: str, timeline: Timeline, context, backchannel: str, interrupt: str):
        self.name = name
        self.tl = timeline
        self.context = context
        self.backchannel = backchannel
        self.interrupt = interrupt

    def clip(self, name: str, kind: str = "clip_start"):
        event = self.tl.find(kind, clip=name)
        assert event is not None, f"{name} was never played ({kind})\n{self.dump()}"
        return event

    def dump(self) -> str:
        messages = "\n".join(f"  {m.get('role')}: {str(m.get('content'))[:100]!r}" for m in self.messages())
        return (
            f"\n--- timeline ({self.name}) ---\n{self.tl.format()}\n\n{format_figures(self.tl)}"
            f"\n--- LLM context ---\n{messages}\n"
        )

    def messages(self) -> list[dict]:
        return [m for m in self.context.get_messages() if isinstance(m, dict)]


@pytest.fixture(scope="module")
def llm_server():
    """The bot's shared llama.cpp server, stopped after this module (not at exit, when
    pytest has closed the stream loguru logs the stop to)."""
    from bot.local_llm import get_shared_local_llm_server

    server = get_shared_local_llm_server()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=list(SCENARIOS))
def run(request, llm_server) -> Run:
    backchannel, interrupt = SCENARIOS[request.param]
    tl, context = asyncio.run(
        run_offline_barge_in(
            TURN,
            backchannel,
            interrupt,
            backchannel_delay=BACKCHANNEL_DELAY,
            interrupt_delay=INTERRUPT_DELAY,
            linger_secs=2.5,
            max_secs=45.0,
            vad_in_aggregator=request.param.startswith("vad-in-aggregator:"),
        )
    )
    result = Run(request.param, tl, context, backchannel, interrupt)
    print(result.dump())  # shown with -s, and for any failing test of this run
    return result


def test_user_words_reach_the_llm(run: Run):
    """(a) The TURN clip, said while the bot is silent, becomes a user message and gets an answer."""
    start = run.clip(TURN)
    finals = [e for e in run.tl.all("transcript", since=start.t) if "dog" in e.data["text"]]
    assert finals, f"no transcript of the turn{run.dump()}"
    user = [m for m in run.messages() if m.get("role") == "user"]
    assert user and "story" in str(user[0]["content"]) and "dog" in str(user[0]["content"]), (
        f"the turn is not the first user message{run.dump()}"
    )
    response = run.tl.first_after("llm_response_start", start.t)
    assert response is not None, f"the LLM never answered{run.dump()}"
    assert run.tl.first_after("llm_first_text", response.t) is not None, f"empty LLM answer{run.dump()}"
    # (No check of the assistant message: when the answer is cut before Piper's first
    # sentence has been played, the context rightly keeps nothing of it.)


def test_bot_answers_with_audio(run: Run):
    """(b) TTS audio reaches the output transport and is played."""
    end = run.clip(TURN, "clip_end")
    assert run.tl.first_after("tts_first_audio", end.t) is not None, f"no TTS audio{run.dump()}"
    started = run.tl.first_after("bot_started_speaking", end.t)
    assert started is not None, f"the bot never started speaking{run.dump()}"
    first_audio = run.tl.first_audio_after(end.t)
    assert first_audio is not None and first_audio - end.t < MAX_TURN_TO_BOT_AUDIO, (
        f"no bot audio within {MAX_TURN_TO_BOT_AUDIO}s of the turn{run.dump()}"
    )
    bc_start = run.clip(run.backchannel).t
    assert run.tl.audio_secs(since=started.t, until=bc_start) >= 0.5, f"too little bot audio{run.dump()}"


# Known failure: two-word backchannels on the live path. PocketSphinx's interims
# flicker through content words ("oh" -> "over" -> "oh really"; "i" -> "ice" ->
# "i see") and the filter releases on the first content word of an interim. Also,
# PocketSphinx's own onset detector gives the first interim ("oh") ~150 ms before
# Silero's VAD start; the filter takes that VAD start for a *next* utterance and
# drops "oh" on its own (processors/softack_filter.py, _handle_gated).
def test_backchannel_does_not_stop_the_bot(run: Run):
    """(c) The backchannel while the bot speaks: no interruption, the audio goes on."""
    bc = run.clip(run.backchannel)
    bc_end = run.clip(run.backchannel, "clip_end")
    nxt = run.clip(run.interrupt).t
    assert run.tl.find("bot_started_speaking", until=bc.t) is not None
    assert run.tl.all("interruption", since=bc.t, until=nxt) == [], f"backchannel interrupted{run.dump()}"
    assert run.tl.all("bot_stopped_speaking", since=bc.t, until=nxt) == [], (
        f"the bot stopped on the backchannel{run.dump()}"
    )
    decisions = run.tl.all("filter_backchannel", since=bc.t, until=nxt)
    assert decisions, f"the filter reported no backchannel{run.dump()}"
    assert run.tl.all("filter_interruption", since=bc.t, until=nxt) == [], run.dump()
    # The bot's audio continues past the clip (allowing for gaps between sentences).
    assert run.tl.audio_secs(since=bc_end.t, until=nxt) >= 1.0, f"bot audio stopped{run.dump()}"
    assert run.tl.audio_secs(since=bc_end.t + 1.0, until=nxt) > 0, f"bot audio stopped{run.dump()}"
    # The backchannel stays out of the LLM context.
    bc_text = decisions[0].data["text"]
    assert not any(m.get("role") == "user" and m.get("content") == bc_text for m in run.messages()), run.dump()


def test_interruption_stops_the_bot(run: Run):
    """(d) The interruption while the bot speaks stops its audio within a bounded time."""
    clip = run.clip(run.interrupt)
    assert _speaking(run, clip.t), f"the bot was not speaking when the interruption started{run.dump()}"
    intr = run.tl.first_after("interruption", clip.t)
    stopped = run.tl.first_after("bot_stopped_speaking", clip.t)
    assert intr is not None and intr.t - clip.t < MAX_CLIP_START_TO_STOP, f"no InterruptionFrame in time{run.dump()}"
    assert stopped is not None and stopped.t - clip.t < MAX_CLIP_START_TO_STOP, f"bot did not stop in time{run.dump()}"
    assert run.tl.first_after("filter_interruption", clip.t) is not None, run.dump()
    # The speaker goes quiet: no audio between shortly after the interruption and
    # the bot's next answer (if any).
    restart = run.tl.first_after("bot_started_speaking", stopped.t)
    until = restart.t - 0.01 if restart else float("inf")
    assert run.tl.audio_secs(since=intr.t + MAX_INTERRUPTION_TO_SILENCE, until=until) == 0, (
        f"bot audio went on after the interruption{run.dump()}"
    )


def test_figures(run: Run):
    """The latencies the issue asks for are measurable on this run (printed with -s)."""
    by_clip = {u.clip: u for u in utterances(run.tl)}
    turn = by_clip[TURN]
    assert turn.vad_start is not None and turn.first_interim is not None, run.dump()
    assert turn.stop_to_audio is not None and 0 < turn.stop_to_audio < MAX_TURN_TO_BOT_AUDIO, run.dump()
    print(f"\n[{run.name}] {format_figures(run.tl)}")


def test_yeah_to_a_silent_bot_is_answered_in_the_canonical_shape(llm_server):
    """Silero in the user aggregator: "yeah" said while the bot is silent is a user turn."""
    tl, context = asyncio.run(
        run_offline_barge_in(
            "yeah__joe.wav", None, None, linger_secs=8.0, max_secs=30.0, vad_in_aggregator=True
        )
    )
    run = Run("vad-in-aggregator:silent-yeah", tl, context, "", "")
    user = [m for m in run.messages() if m.get("role") == "user"]
    assert user and "yeah" in str(user[0]["content"]).lower(), run.dump()
    assert tl.all("backchannel_frame") == [], run.dump()
    assert tl.find("llm_response_start") is not None, f"the LLM never answered{run.dump()}"


def _speaking(run: Run, t: float) -> bool:
    from bench.audio_timeline import bot_speaking_at

    return bot_speaking_at(run.tl, t)


# The reference bot's --transport local setting: its own speaker heard back by its
# microphone (a laptop without headphones; bench.audio_timeline.EchoPath: 40 ms, 12 dB
# echo return loss), through its echo canceller (bot/echo_cancel.py, WebRTC AEC3).
ECHO_RETURN_LOSS_DB = 12.0
# s after the bot starts speaking: 9 s of its answer, and its echo, before "stop".
ECHO_INTERRUPT_DELAY = 9.0
# dB the canceller removes, median over 10 ms frames while the bot plays (measured
# here: 43-46 dB on this linear echo path).
MIN_MEDIAN_ERLE_DB = 20


@pytest.fixture(scope="module")
def echo_run(llm_server) -> Run:
    tl, context = asyncio.run(
        run_offline_barge_in(
            TURN,
            None,
            "stop__joe.wav",
            interrupt_delay=ECHO_INTERRUPT_DELAY,
            linger_secs=2.5,
            max_secs=45.0,
            echo_return_loss_db=ECHO_RETURN_LOSS_DB,
            aec=True,
        )
    )
    result = Run("echo+aec", tl, context, "", "stop__joe.wav")
    print(result.dump())
    return result


# Not asserted: "stop" said over the echo stopping the bot within 2 s, as
# test_interruption_stops_the_bot asks without echo. Measured over 18 runs it did in
# 10 (0.8-1.5 s after the clip's start). Twice AEC3's suppressor cut the onset of
# "stop", said while the echo was as loud as it (20-40 dB off "st"), and PocketSphinx
# heard "uh-huh" / "ah", backchannels the filter rightly ignores; 6 times the transcript
# came 1.4-3.7 s late or never (PocketSphinx's decoder behind on the 2 shared cores, 3
# of them while the LLM was still generating; the filter drops the VAD segment as
# noise after 1.4 s without one).
def test_the_bot_does_not_interrupt_itself_on_its_echo(echo_run: Run):
    """With its echo in the microphone and the echo canceller on, the bot talks on
    until the user speaks: no interruption between its first audio and "stop"."""
    run = echo_run
    started = run.tl.first_after("bot_started_speaking", run.clip(TURN, "clip_end").t)
    assert started is not None, f"the bot never started speaking{run.dump()}"
    stop = run.clip(run.interrupt)
    for kind in ("interruption", "filter_interruption"):
        assert run.tl.all(kind, since=started.t, until=stop.t) == [], f"the bot interrupted itself ({kind}){run.dump()}"
    assert _speaking(run, stop.t), run.dump()
    # Most of that time is bot audio (the rest: pauses between and within sentences).
    played = run.tl.audio_secs(since=started.t, until=stop.t)
    assert played >= 0.5 * (stop.t - started.t), f"bot audio stopped{run.dump()}"
    stats = run.tl.find("aec_stats")
    assert stats is not None and stats.data["resets"] == 0, run.dump()
    assert stats.data["median_frame_erle_db"] >= MIN_MEDIAN_ERLE_DB, run.dump()
