"""Interruption controls on real audio: the reference bot's offline pipeline (Silero
VAD, PocketSphinx, the soft-ack filter, SmolLM2 via llama.cpp, Piper) with a
file-fed microphone and a speaker that plays in real time (bench/audio_timeline.py).

Two runs, module-scoped, each asserted on its timeline (printed on failure):

* ``uninterruptible``: the ``uninterruptible`` agent's greeting (the full NOTICE,
  ~25 s of speech) is queued as the bot queues it on connect; 2 s after the bot
  starts speaking the user says "stop", 3 s later "wait". Nothing stops the notice;
  what the user said is held, then becomes the next user turn and is answered.
* ``interrupt-user``: the ``interrupt-user`` agent, bot silent, and a ~20 s user
  monologue of 85 words without a sentence end (synthesized once with Piper, the
  voice of the committed clips). PocketSphinx does not punctuate, so the cut-in
  strategy counts 15 words a sentence: past 45 words the bot says "Sorry, can I
  pause you there?" (uninterruptible) while the user is still talking, then answers.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("pocketsphinx")
pytest.importorskip("piper")
pytest.importorskip("llama_cpp")

from pipecat.audio.utils import is_silence  # noqa: E402
from pipecat.frames.frames import TTSAudioRawFrame, TTSStartedFrame  # noqa: E402
from pipecat.observers.base_observer import FramePushed  # noqa: E402
from pipecat.services.tts_service import TTSService  # noqa: E402

from bench.audio_timeline import (  # noqa: E402
    Cue,
    FileAudioTransport,
    Timeline,
    TimelineObserver,
    format_figures,
    load_clip,
    offline_worker,
    piper_clip,
    run_timeline,
)
from bot.agents import AGENTS  # noqa: E402
from pipecat_softack.speech import speech_frame  # noqa: E402
from pipecat_softack.user_cut_in import DEFAULT_CUT_IN_PHRASE, count_sentences  # noqa: E402

NOTICE = AGENTS["uninterruptible"].greeting
STOP, WAIT = "stop__joe.wav", "wait__joe.wav"
STOP_DELAY, WAIT_DELAY = 2.0, 5.0  # s after the bot starts speaking
# 85 words, no sentence end: one continuous turn of ~19.5 s (Piper, joe).
MONOLOGUE = (
    "so yesterday I went down to the market to buy some apples and some bread for the week "
    "and on the way I met my old friend from school who told me all about his new job at the bank "
    "and about his family and the house they bought near the river last summer "
    "and then we walked together to the park where we sat on a bench in the sun "
    "and talked about the old days and our teachers for a very long time"
)
MONOLOGUE_AT = 1.0  # s after the microphone starts (the bot is silent)
MAX_SENTENCES = 3  # LongTurnCutInStrategy's default

# Bounds (seconds), generous for 2 busy cores.
# Played vs synthesized audio of an uninterruptible utterance: the speech in it
# (20 ms chunks that are not silence), and the wall time from bot started to
# stopped speaking, which adds the waits for Piper's next sentence.
AUDIBLE_VS_SYNTHESIZED = 0.5
MAX_PLAYBACK_SLACK = 0.25  # of the synthesized length (measured 5%, 16% with 2 CPU hogs)
MAX_NOTICE_END_TO_ANSWER = 12.0  # end of the notice to the LLM's answer starting
MAX_MARK_TO_CUT_IN = 3.0  # transcript past 3 sentences -> cut-in phrase audible


class TTSAudioObserver(TimelineObserver):
    """A TimelineObserver that also sums the TTS audio synthesized per TTS context:
    all of it (``secs``) and its 20 ms chunks that are not silence (``speech``, as
    the speaker counts the audio it plays)."""

    def __init__(self, timeline: Timeline, **kwargs):
        super().__init__(timeline, **kwargs)
        # context_id -> {"t": first audio, "secs", "speech", "interruptible_secs" (of
        # its audio frames marked interruptible), "interruptible" (any of them)}
        self.tts: dict[str, dict] = {}

    def _entry(self, context_id) -> dict:
        return self.tts.setdefault(
            context_id, {"t": self.timeline.now(), "secs": 0.0, "speech": 0.0, "interruptible_secs": 0.0}
        )

    async def on_push_frame(self, data: FramePushed):
        await super().on_push_frame(data)
        frame = data.frame
        if not isinstance(data.source, TTSService):
            return
        if isinstance(frame, TTSStartedFrame):
            self._entry(frame.context_id)
        elif isinstance(frame, TTSAudioRawFrame):
            entry = self._entry(frame.context_id)
            bytes_per_sec = 2 * frame.sample_rate * max(frame.num_channels, 1)
            entry["secs"] += len(frame.audio) / bytes_per_sec
            step = int(bytes_per_sec * 0.02) // 2 * 2
            for i in range(0, len(frame.audio), step):
                chunk = frame.audio[i : i + step]
                if not is_silence(chunk):
                    entry["speech"] += len(chunk) / bytes_per_sec
            if frame.interruptible:
                entry["interruptible_secs"] += len(frame.audio) / bytes_per_sec
            entry["interruptible"] = entry["interruptible_secs"] > 0

    def first_context_after(self, t: float) -> dict | None:
        entries = sorted((e for e in self.tts.values() if e["t"] >= t and e["secs"] > 0), key=lambda e: e["t"])
        return entries[0] if entries else None


class Run:
    def __init__(self, name: str, timeline: Timeline, context, observer: TTSAudioObserver):
        self.name = name
        self.tl = timeline
        self.context = context
        self.observer = observer

    def clip(self, name: str, kind: str = "clip_start"):
        event = self.tl.find(kind, clip=name)
        assert event is not None, f"{name} was never played ({kind})\n{self.dump()}"
        return event

    def messages(self) -> list[dict]:
        return [m for m in self.context.get_messages() if isinstance(m, dict)]

    def dump(self) -> str:
        messages = "\n".join(f"  {m.get('role')}: {str(m.get('content'))[:120]!r}" for m in self.messages())
        tts = "\n".join(
            f"  {e['t']:8.3f}  {e['secs']:6.2f} s ({e['speech']:.2f} s not silence)  "
            f"interruptible={e.get('interruptible')} ({e['interruptible_secs']:.2f} s)"
            for e in sorted(self.observer.tts.values(), key=lambda e: e["t"])
        )
        return (
            f"\n--- timeline ({self.name}) ---\n{self.tl.format()}\n\n{format_figures(self.tl)}"
            f"\n--- TTS contexts (first audio, synthesized) ---\n{tts}"
            f"\n--- LLM context ---\n{messages}\n"
        )


async def _run(agent: str, cues: list[Cue], *, greeting: str | None, until, max_secs: float):
    from bot.local_llm import get_shared_local_llm_server

    await get_shared_local_llm_server().astart()  # off the event loop
    tl = Timeline()
    transport = FileAudioTransport(tl, cues)
    observer = TTSAudioObserver(tl)
    worker, context, _ = offline_worker(transport, observer, agent=agent)
    if greeting is not None:

        @worker.event_handler("on_pipeline_started")
        async def on_pipeline_started(_worker, _frame):
            # As run_bot greets: spoken as is, uninterruptible for this agent.
            await worker.queue_frames([speech_frame(greeting, interruptible=AGENTS[agent].greeting_interruptible)])

    await run_timeline(worker, transport, until=until, max_secs=max_secs)
    return tl, context, observer


@pytest.fixture(scope="module")
def llm_server():
    """The bot's shared llama.cpp server, stopped after this module."""
    from bot.local_llm import get_shared_local_llm_server

    server = get_shared_local_llm_server()
    yield server
    server.stop()


# --------------------------------------------------------------------------- #
# 1. Uninterruptible speech
# --------------------------------------------------------------------------- #


def _answered_after_notice(tl: Timeline) -> bool:
    """The notice has ended and the bot has been speaking its answer for 1.5 s."""
    first_stop = tl.find("bot_stopped_speaking")
    if first_stop is None:
        return False
    answer = tl.first_after("bot_started_speaking", first_stop.t)
    return answer is not None and tl.now() - answer.t >= 1.5


@pytest.fixture(scope="module")
def notice_run(llm_server) -> Run:
    cues = [
        Cue(load_clip(STOP), after="bot_started_speaking", delay=STOP_DELAY),
        Cue(load_clip(WAIT), after="bot_started_speaking", delay=WAIT_DELAY),
    ]
    tl, context, observer = asyncio.run(
        _run("uninterruptible", cues, greeting=NOTICE, until=_answered_after_notice, max_secs=70.0)
    )
    run = Run("uninterruptible", tl, context, observer)
    print(run.dump())
    return run


def test_notice_is_not_interrupted(notice_run: Run):
    """No InterruptionFrame, no bot stop, until the whole notice has been played."""
    run, tl = notice_run, notice_run.tl
    speak = tl.find("tts_speak", text=NOTICE)
    assert speak is not None and speak.data["interruptible"] is False, run.dump()
    started = tl.find("bot_started_speaking")
    assert started is not None, f"the bot never spoke{run.dump()}"
    stop, wait = run.clip(STOP), run.clip(WAIT)
    assert stop.t - started.t == pytest.approx(STOP_DELAY, abs=0.1), run.dump()
    stopped = tl.first_after("bot_stopped_speaking", started.t)
    assert stopped is not None, f"the notice never ended{run.dump()}"
    assert wait.t < stopped.t, f"the notice ended before the user's words{run.dump()}"
    assert tl.all("interruption", until=stopped.t) == [], f"InterruptionFrame during the notice{run.dump()}"
    # Its audio played in full: nothing of the synthesized speech went missing (under
    # load, playback gaps may add a little, never remove).
    notice = run.observer.first_context_after(0.0)
    assert notice is not None and notice["secs"] > 15.0, f"the notice's TTS audio is too short{run.dump()}"
    audible = tl.audio_secs(since=started.t, until=stopped.t)
    assert audible >= notice["speech"] - AUDIBLE_VS_SYNTHESIZED, (
        f"played {audible:.2f} s of the notice's {notice['speech']:.2f} s of speech{run.dump()}"
    )
    played = stopped.t - started.t
    assert notice["secs"] - AUDIBLE_VS_SYNTHESIZED <= played <= notice["secs"] * (1 + MAX_PLAYBACK_SLACK), (
        f"bot spoke {played:.2f} s for a {notice['secs']:.2f} s notice{run.dump()}"
    )
    # Every audio frame of it was marked uninterruptible by the TTS service.
    assert notice["interruptible_secs"] == 0, f"{notice['interruptible_secs']:.2f} s marked interruptible{run.dump()}"


def test_what_was_said_during_the_notice_is_released_after_it(notice_run: Run):
    """The filter held "stop" (and "wait") as one interruption deferred by the
    uninterruptible speech, released when the bot stopped speaking."""
    run, tl = notice_run, notice_run.tl
    stop = run.clip(STOP)
    stopped = tl.first_after("bot_stopped_speaking", stop.t)
    assert stopped is not None, run.dump()
    decisions = tl.all("filter_interruption", since=stop.t)
    assert decisions, f"no interruption decision for what the user said{run.dump()}"
    first = decisions[0]
    assert first.data["reason"] == "bot stopped speaking", run.dump()
    assert first.data["deferred"] == "uninterruptible speech", run.dump()
    assert "stop" in first.data["text"].split(), run.dump()
    assert first.t >= stopped.t - 0.05, f"released before the notice ended{run.dump()}"
    assert first.t - stopped.t < 1.0, f"released late{run.dump()}"
    # Nothing else was decided while the notice played (no backchannel, no noise drop).
    others = [e for e in tl.events if e.kind.startswith("filter_") and stop.t <= e.t < stopped.t]
    assert others == [], run.dump()


def test_user_words_reach_the_llm_after_the_notice(notice_run: Run):
    run, tl = notice_run, notice_run.tl
    stopped = tl.first_after("bot_stopped_speaking", run.clip(STOP).t)
    assert stopped is not None, run.dump()
    assert tl.find("llm_response_start", until=stopped.t) is None, f"the LLM ran during the notice{run.dump()}"
    user = [m for m in run.messages() if m.get("role") == "user"]
    assert user and "stop" in str(user[0]["content"]).split(), f"'stop' is not a user message{run.dump()}"
    response = tl.first_after("llm_response_start", stopped.t)
    assert response is not None and response.t - stopped.t < MAX_NOTICE_END_TO_ANSWER, (
        f"no LLM answer after the notice{run.dump()}"
    )
    assert tl.first_after("llm_first_text", response.t) is not None, f"empty LLM answer{run.dump()}"
    assert tl.first_after("bot_started_speaking", response.t) is not None, f"the answer was not spoken{run.dump()}"


# --------------------------------------------------------------------------- #
# 2. Interrupt the user
# --------------------------------------------------------------------------- #


def _cut_in_answered(tl: Timeline) -> bool:
    """The monologue has ended and the bot has said something after it (or 8 s passed)."""
    end = tl.find("clip_end")
    if end is None:
        return False
    spoke = tl.first_after("bot_started_speaking", end.t)
    return (spoke is not None and tl.now() - spoke.t >= 1.0) or tl.now() - end.t >= 8.0


@pytest.fixture(scope="module")
def monologue():
    return piper_clip(MONOLOGUE, "monologue")


@pytest.fixture(scope="module")
def cut_in_run(llm_server, monologue) -> Run:
    cues = [Cue(monologue, at=MONOLOGUE_AT)]
    tl, context, observer = asyncio.run(
        _run("interrupt-user", cues, greeting=None, until=_cut_in_answered, max_secs=50.0)
    )
    run = Run("interrupt-user", tl, context, observer)
    print(run.dump())
    return run


def _sentence_mark(tl: Timeline, since: float) -> float | None:
    """When the live transcript (finals, then the latest interim) first passed
    ``MAX_SENTENCES`` sentences, counted as the cut-in strategy counts."""
    finals: list[str] = []
    for e in tl.events:
        if e.t < since or e.kind not in ("interim", "transcript"):
            continue
        if e.kind == "transcript":
            finals.append(e.data["text"])
            interim = ""
        else:
            interim = e.data["text"]
        if count_sentences(finals, interim) > MAX_SENTENCES:
            return e.t
    return None


def test_bot_cuts_in_before_the_monologue_ends(cut_in_run: Run, monologue):
    run, tl = cut_in_run, cut_in_run.tl
    start, end = run.clip("monologue"), run.clip("monologue", "clip_end")
    assert end.t - start.t == pytest.approx(monologue.duration, abs=0.1)
    speak = tl.find("tts_speak", text=DEFAULT_CUT_IN_PHRASE)
    assert speak is not None and speak.data["interruptible"] is False, f"no cut-in{run.dump()}"
    mark = _sentence_mark(tl, start.t)
    assert mark is not None, f"the transcript never passed {MAX_SENTENCES} sentences{run.dump()}"
    assert speak.t - mark < 0.5, f"cut-in {speak.t - mark:.2f} s after the mark{run.dump()}"
    spoke = tl.first_after("bot_started_speaking", start.t)
    assert spoke is not None, f"the bot never spoke{run.dump()}"
    assert spoke.t < start.t + monologue.speech_end - 1.0, f"the cut-in came after the monologue{run.dump()}"
    assert spoke.t - mark < MAX_MARK_TO_CUT_IN, f"cut-in audible {spoke.t - mark:.2f} s after the mark{run.dump()}"


def test_cut_in_phrase_is_said_once(cut_in_run: Run):
    """One cut-in for one monologue: 85 words pass 45 (3 sentences of 15) once, and
    the count starts afresh after the cut-in (40 words left: no second cut-in)."""
    run, tl = cut_in_run, cut_in_run.tl
    start, end = run.clip("monologue"), run.clip("monologue", "clip_end")
    said = tl.all("tts_speak", since=start.t, until=end.t + 2.0, text=DEFAULT_CUT_IN_PHRASE)
    assert len(said) == 1, f"the cut-in phrase was queued {len(said)} times{run.dump()}"
    phrases = [e for e in run.observer.tts.values() if e["t"] >= start.t and e.get("interruptible") is False]
    assert len(phrases) == 1, f"{len(phrases)} uninterruptible TTS utterances{run.dump()}"


def test_cut_in_phrase_is_not_interrupted(cut_in_run: Run):
    """The user goes on talking over the phrase; its audio plays in full."""
    run, tl = cut_in_run, cut_in_run.tl
    start, end = run.clip("monologue"), run.clip("monologue", "clip_end")
    spoke = tl.first_after("bot_started_speaking", start.t)
    assert spoke is not None, run.dump()
    phrase = run.observer.first_context_after(start.t)
    assert phrase is not None and phrase["interruptible"] is False, f"no uninterruptible TTS audio{run.dump()}"
    assert 1.0 < phrase["secs"] < 3.0, f"not the cut-in phrase: {phrase}{run.dump()}"
    stopped = tl.first_after("bot_stopped_speaking", spoke.t)
    played = (stopped.t if stopped else tl.now()) - spoke.t
    assert played >= phrase["secs"] - 0.2, f"played {played:.2f} s of {phrase['secs']:.2f} s{run.dump()}"
    audible = tl.audio_secs(since=spoke.t, until=spoke.t + phrase["secs"] + 0.3)
    assert audible == pytest.approx(phrase["speech"], abs=AUDIBLE_VS_SYNTHESIZED), run.dump()
    # The user was still speaking over it.
    assert spoke.t + phrase["secs"] < end.t, f"the monologue ended before the phrase{run.dump()}"


def test_llm_answers_the_cut_in_turn(cut_in_run: Run):
    run, tl = cut_in_run, cut_in_run.tl
    start = run.clip("monologue")
    speak = tl.find("tts_speak", text=DEFAULT_CUT_IN_PHRASE)
    assert speak is not None, run.dump()
    answers = [
        r for r in tl.all("llm_response_start", since=speak.t - 0.5)
        if (text := tl.first_after("llm_first_text", r.t))
        and not tl.find("llm_response_end", since=r.t, until=text.t)
    ]  # fmt: skip
    assert answers, f"no LLM answer with text after the cut-in{run.dump()}"
    user = [m for m in run.messages() if m.get("role") == "user"]
    assert user and "market" in str(user[0]["content"]), f"the monologue is not a user message{run.dump()}"
    assert tl.find("llm_response_start", until=start.t) is None, run.dump()
