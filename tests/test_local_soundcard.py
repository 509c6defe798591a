"""``python run.py --transport local`` on a virtual sound card whose speaker leaks
into its microphone, as a laptop without headphones does.

The test starts its own PulseAudio server (Debian's ``pulseaudio``,
``pulseaudio-utils`` and ``libasound2-plugins``, installed by setup.sh) on a private
socket, builds the sound card, runs the reference bot with the offline services as a
subprocess, talks to it with ``paplay`` and reads what happened from the bot's log:

* speaker: null sink ``vspk`` (the default sink, what PyAudio plays to);
* microphone: null sink ``vmic``, whose monitor is the default source;
* echo path: ``module-loopback`` from ``vspk.monitor`` to ``vmic``, 40 ms, at 60 %
  volume, which PulseAudio's cubic volume curve makes -13.3 dB (an echo return loss
  of about 13 dB, a laptop speaker next to its microphone);
* the user: ``paplay --device=vmic`` of the committed clips (tests/audio).

CI runs :func:`test_echo_cancellation_stops_the_bot_interrupting_itself_on_its_own_voice`
(about 65 s): the offline bot alone with its echo, 25 s without echo cancellation,
then 25 s with it, as ``--transport local`` has by default.

The issue's full "done when", a two-minute conversation, runs by hand: on this 2-core
machine it is not met yet (see the README), so it is a figure, not a test. "stop"
said over the bot is part of it: through the canceller its onset is often clipped
(measured 2026-12-03, three "stop"s 4 s into answers: heard as "oh god", a
backchannel, and as "it's got" and "the op", content that stopped the bot by luck).

The conversation (about two minutes from the greeting, ``CONVERSATION_SECS``): the
bot greets; "tell me a story about a dog"; while it answers, "yeah", "uh-huh", then
"stop"; then "what's the weather like on mars", with "yeah" and "uh-huh" again, and
more questions until the time is up. Checked: the bot never interrupts itself (every
interruption falls in a "stop" clip), the backchannels are ignored (a backchannel
decision, no interruption), and "stop" stops it (:func:`check_conversation`).

    python tests/test_local_soundcard.py            # AEC on (the default)
    python tests/test_local_soundcard.py --no-aec   # the baseline

``SOFTACK_BOT_LOG=FILE`` keeps a copy of the bot's log there.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIPS = ROOT / "tests" / "audio"
PYTHON = sys.executable
# Seconds of conversation from the start of the greeting (the two minutes).
CONVERSATION_SECS = 120.0
ECHO_VOLUME = "60%"  # -13.3 dB on PulseAudio's cubic volume scale
LOOPBACK_MS = 40
# An interruption counts for a "stop" clip when it comes between the clip's start and
# this many seconds after its end (the filter waits at most 1 s for a final transcript).
STOP_WINDOW_SECS = 3.0
# A backchannel's decision comes within this many seconds of its clip's end.
BACKCHANNEL_WINDOW_SECS = 3.0

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \| (\w+)\s*\| \S+ - (.*)$")


# --------------------------------------------------------------------------- #
# The sound card
# --------------------------------------------------------------------------- #


class SoundCard:
    """A private PulseAudio server with a speaker looped back into a microphone."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="softack-pulse-"))
        self.socket = self.dir / "native"
        self.env = {
            **os.environ,
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_RUNTIME_PATH": str(self.dir / "runtime"),
            "PULSE_STATE_PATH": str(self.dir / "state"),
            "PULSE_COOKIE": str(self.dir / "cookie"),
            "XDG_RUNTIME_DIR": str(self.dir),
        }
        self.server: subprocess.Popen | None = None

    def pactl(self, *args: str) -> str:
        return subprocess.run(
            ["pactl", *args], env=self.env, check=True, capture_output=True, text=True, timeout=10
        ).stdout

    def start(self) -> "SoundCard":
        for tool in ("pulseaudio", "pactl", "paplay"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is missing: run setup.sh (Debian's pulseaudio, pulseaudio-utils)")
        self.server = subprocess.Popen(
            [
                "pulseaudio", "--daemonize=no", "-n", "--exit-idle-time=-1", "--use-pid-file=no",
                "--disallow-exit", "--log-target=stderr",
                "--load=module-null-sink sink_name=vspk",
                f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
            ],
            env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.dir / "pulse.log", "w"),
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self.pactl("info")
                break
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pulseaudio did not start: {(self.dir / 'pulse.log').read_text()[-2000:]}")
            time.sleep(0.2)
        self.pactl("load-module", "module-null-sink", "sink_name=vmic")
        self.pactl(
            "load-module", "module-loopback", "source=vspk.monitor", "sink=vmic", f"latency_msec={LOOPBACK_MS}"
        )
        # Columns: index, sink, client, driver, sample spec; the loopback's is its only one.
        inputs = [line.split("\t") for line in self.pactl("list", "short", "sink-inputs").splitlines()]
        loop = [cols[0] for cols in inputs if len(cols) > 3 and cols[3] == "module-loopback.c"]
        assert len(loop) == 1, f"expected one loopback sink input: {inputs}"
        self.pactl("set-sink-input-volume", loop[0], ECHO_VOLUME)
        self.pactl("set-default-sink", "vspk")
        self.pactl("set-default-source", "vmic.monitor")
        return self

    def play(self, clip: str) -> subprocess.Popen:
        """Say ``clip`` (a file in tests/audio) into the microphone; returns the player."""
        return subprocess.Popen(["paplay", "--device=vmic", str(CLIPS / clip)], env=self.env)

    def stop(self):
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- #
# The bot and its log
# --------------------------------------------------------------------------- #


@dataclass
class Event:
    t: float  # time.time() seconds
    kind: str  # bot_start, bot_stop, interruption, backchannel, noise, cut, aec, aec_on
    text: str = ""


def parse_line(line: str) -> Event | None:
    """The event a line of the bot's loguru log reports, or None."""
    m = LOG_LINE.match(line.rstrip("\n"))
    if not m:
        return None
    t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
    msg = m.group(3)
    for prefix, kind in (
        ("Bot started speaking", "bot_start"),
        ("Bot stopped speaking", "bot_stop"),
        ("Interruption: ", "interruption"),
        ("Backchannel ignored: ", "backchannel"),
        ("Echo dropped: ", "echo"),
        ("Bot interrupted at ", "cut"),
        ("Echo canceller: ", "aec"),
        ("Local audio: acoustic echo cancellation", "aec_on"),
    ):
        if msg.startswith(prefix):
            return Event(t, kind, msg[len(prefix) :])
    return None


class Bot:
    """``python run.py --transport local`` with the offline services, logging to a file."""

    def __init__(self, card: SoundCard, *extra: str):
        self.log_path = card.dir / "bot.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [PYTHON, "run.py", "--transport", "local", "--stt", "pocketsphinx", "--llm", "local",
             "--tts", "piper", *extra],
            cwd=ROOT, env={**card.env, "PYTHONUNBUFFERED": "1"}, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self._reader = open(self.log_path)
        self.events: list[Event] = []

    def poll(self) -> list[Event]:
        """Read new log lines; returns the new events."""
        new = []
        while line := self._reader.readline():
            if (e := parse_line(line)) is not None:
                new.append(e)
        self.events += new
        if self.proc.poll() is not None and not new:
            raise RuntimeError(f"the bot exited ({self.proc.returncode}):\n{self.tail()}")
        return new

    def tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]

    @property
    def speaking(self) -> bool:
        state = [e.kind for e in self.events if e.kind in ("bot_start", "bot_stop")]
        return bool(state) and state[-1] == "bot_start"

    def wait(self, until, timeout: float) -> bool:
        """Poll until ``until(bot)`` is true (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if until(self):
                return True
            time.sleep(0.05)
        return False

    def quiet_for(self, secs: float) -> bool:
        if self.speaking:
            return False
        last = max((e.t for e in self.events if e.kind == "bot_stop"), default=0.0)
        return time.time() - last >= secs

    def stop(self):
        """Ctrl-C (the bot logs the echo canceller's figures), then make sure it is gone."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        with contextlib.suppress(Exception):
            self.poll()
        self._log.close()


# --------------------------------------------------------------------------- #
# The conversation
# --------------------------------------------------------------------------- #


@dataclass
class Said:
    clip: str
    kind: str  # "turn", "backchannel", "stop"
    start: float  # time.time()
    end: float = 0.0
    bot_speaking: bool = False


@dataclass
class Report:
    said: list[Said] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    greeting_start: float = 0.0
    end: float = 0.0

    def _all(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def interruptions(self) -> list[Event]:
        """Every time the bot was cut or the filter released an interruption."""
        return [e for e in self.events if e.kind in ("interruption", "cut")]

    def in_window(self, e: Event, s: Said, after: float) -> bool:
        return s.start <= e.t <= s.end + after

    def self_interruptions(self, kinds: tuple[str, ...] = ("cut",)) -> list[Event]:
        """Events of ``kinds`` outside every "stop" clip's window: by default the
        times the bot was cut off (``HeardSpeechTracker``'s ``on_bot_interrupted``);
        ``("interruption",)`` for the filter's releases."""
        stops = [s for s in self.said if s.kind == "stop"]
        return [
            e for e in self.events
            if e.kind in kinds and not any(self.in_window(e, s, STOP_WINDOW_SECS) for s in stops)
        ]  # fmt: skip

    def on_echo_alone(self) -> list[Event]:
        """The filter's releases with no clip said in the last ``BACKCHANNEL_WINDOW_SECS``:
        the bot hearing nothing but its own echo."""
        return [
            e for e in self.events
            if e.kind == "interruption" and not any(self.in_window(e, s, BACKCHANNEL_WINDOW_SECS) for s in self.said)
        ]  # fmt: skip

    def bot_speech_secs(self) -> float:
        total, started = 0.0, None
        for e in self.events:
            if e.kind == "bot_start" and started is None:
                started = e.t
            elif e.kind == "bot_stop" and started is not None:
                total, started = total + e.t - started, None
        return total + ((self.end - started) if started is not None else 0.0)

    def summary(self) -> str:
        released = self.self_interruptions(("interruption",))
        lines = [
            f"conversation {self.end - self.greeting_start:.0f} s, bot speaking {self.bot_speech_secs():.0f} s, "
            f"{len(self.self_interruptions())} self-interruptions (the bot cut off with no 'stop' said), "
            f"{len(released)} interruptions released by the filter on no 'stop': "
            + "; ".join(f"{e.t - self.greeting_start:.1f}s {e.text[:40]!r}" for e in released)
            + f"; {len(self.on_echo_alone())} of all releases with no one speaking (on the echo alone)"
            + f"; {len(self._all('echo'))} utterances dropped as echo",
        ]
        for s in self.said:
            got = [e for e in self.events if e.kind in ("interruption", "backchannel", "echo", "cut")
                   and self.in_window(e, s, BACKCHANNEL_WINDOW_SECS)]  # fmt: skip
            lines.append(
                f"  {s.start - self.greeting_start:6.1f}s {s.kind:<11} {s.clip:<40} "
                f"bot {'talking' if s.bot_speaking else 'quiet'}: "
                + (", ".join(f"{e.kind} {e.text[:40]!r}" for e in got) or "-")
            )
        lines += [f"  {e.text}" for e in self._all("aec")]
        return "\n".join(lines)


# The conversation's turns, in a loop: (question clip, [(seconds after the bot
# starts answering, backchannel clip)], seconds after it starts to say "stop" or None).
CONVERSATION_TURNS = [
    ("tell_me_a_story_about_a_dog__joe.wav", [(2.5, "yeah__joe.wav"), (6.5, "uh_huh__joe.wav")], 10.5),
    ("what_s_the_weather_like_on_mars__joe.wav", [(2.5, "uh_huh__joe.wav"), (6.5, "yeah__joe.wav")], None),
    ("tell_me_a_story_about_a_dog__joe_x125.wav", [(3.0, "yeah__joe.wav")], None),
    ("what_s_the_weather_like_on_mars__joe_x125.wav", [(3.0, "uh_huh__joe.wav")], None),
]


@contextlib.contextmanager
def bot_on_sound_card(*bot_args: str):
    """A new sound card with the bot running on it; yields ``(card, bot, report)``,
    the report's ``greeting_start`` set once the bot has begun its greeting. The
    bot and the sound server are gone on exit."""
    card = SoundCard()
    bot = None
    try:
        card.start()
        bot = Bot(card, *bot_args)
        rep = Report()
        if not bot.wait(lambda b: any(e.kind == "bot_start" for e in b.events), 180):
            raise RuntimeError(f"the bot never greeted:\n{bot.tail()}")
        rep.greeting_start = next(e.t for e in bot.events if e.kind == "bot_start")
        yield card, bot, rep
    finally:
        if bot is not None:
            bot.stop()
            if keep := os.environ.get("SOFTACK_BOT_LOG"):  # a copy of the bot's log, for a run by hand
                shutil.copy(bot.log_path, keep)
        card.stop()


def converse(
    card: SoundCard, bot: Bot, rep: Report, secs: float = CONVERSATION_SECS, turns=CONVERSATION_TURNS
) -> Report:
    """Talk to ``bot`` for ``secs`` from its greeting, ``turns`` in a loop; fills and
    returns ``rep`` with what was said and logged."""
    deadline = rep.greeting_start + secs

    def say(clip: str, kind: str) -> Said:
        s = Said(clip, kind, time.time(), bot_speaking=bot.speaking)
        card.play(clip).wait(15)
        s.end = time.time()
        rep.said.append(s)
        bot.poll()
        return s

    def left() -> float:
        return deadline - time.time()

    def talk_over(backchannels: list[tuple[float, str]], stop_at: float | None):
        """While the bot answers: backchannels at seconds after it started, then "stop"."""
        if not bot.wait(lambda b: b.speaking, min(40.0, max(left(), 1.0))):
            return
        started = time.time()
        for at, clip in backchannels:
            if not bot.wait(lambda b: time.time() - started >= at or not b.speaking, 60) or not bot.speaking:
                return
            say(clip, "backchannel")
        if stop_at is not None:
            bot.wait(lambda b: time.time() - started >= stop_at or not b.speaking, 60)
            if bot.speaking:
                say("stop__joe.wav", "stop")

    # The greeting plays first.
    bot.wait(lambda b: b.quiet_for(1.0), 60)
    i = 0
    while left() > 12.0:
        clip, backchannels, stop_at = turns[i % len(turns)]
        i += 1
        bot.wait(lambda b: b.quiet_for(1.0), min(60.0, max(left(), 1.0)))
        if left() <= 12.0:
            break
        say(clip, "turn")
        talk_over(backchannels, stop_at)
    bot.wait(lambda b: False, max(left(), 0.0))
    rep.end = time.time()
    bot.stop()
    rep.events = list(bot.events)
    return rep


def run_conversation(*bot_args: str, secs: float = CONVERSATION_SECS, turns=CONVERSATION_TURNS) -> Report:
    """A conversation with a new bot on a new sound card (see :func:`converse`)."""
    with bot_on_sound_card(*bot_args) as (card, bot, rep):
        return converse(card, bot, rep, secs, turns)


# --------------------------------------------------------------------------- #
# The tests
# --------------------------------------------------------------------------- #


def alone(secs: float, *bot_args: str) -> Report:
    """Start the bot and let it run ``secs`` from its greeting with no one speaking:
    whatever it hears is its own echo."""
    with bot_on_sound_card(*bot_args) as (_card, bot, rep):
        bot.wait(lambda b: time.time() >= rep.greeting_start + secs, secs + 5)
        rep.end = time.time()
        bot.stop()
        rep.events = list(bot.events)
        return rep


ALONE_SECS = 25.0


def test_echo_cancellation_stops_the_bot_interrupting_itself_on_its_own_voice():
    """The same 25 s from the greeting on, no one speaking, without and with echo
    cancellation. Without it the filter releases interruptions on the bot's echo
    again and again (measured here: 7, 9 and 15 in these 25 s on 2026-12-03; 5 on
    2026-12-04 with the acoustic echo check, 7 the same day after); with it at most
    twice and at most a third as often (measured 1 each time on an idle machine with
    Pipecat's LocalAudioTransport and the timed filters, 0 on 2026-12-04 with them
    and with the duplex stream of bot/duplex_audio.py; a CI run on loaded cores once
    cut the bot twice), and the canceller removes at least 6 dB of echo while the bot
    plays, in all (measured 9-24 dB with the timed filters, where process stalls
    jitter the speaker; 37.2 dB with the duplex stream; 40-60 dB on the bench's
    linear echo)."""
    without = alone(ALONE_SECS, "--no-aec")
    with_aec = alone(ALONE_SECS)
    report = f"without AEC:\n{without.summary()}\nwith AEC:\n{with_aec.summary()}"
    print(report)
    assert any(e.kind == "aec_on" and e.text.startswith(" on") for e in with_aec.events), report
    assert any(e.kind == "aec_on" and "off" in e.text for e in without.events), report
    # With no one speaking, every utterance is the bot hearing itself: released as an
    # interruption, or dropped as echo.
    n_without = len(without.self_interruptions(("interruption", "echo")))
    n_with = len(with_aec.self_interruptions(("interruption",)))
    assert n_without >= 3, report  # the echo path is real: the bot hears itself
    assert n_with <= 2 and 3 * n_with <= n_without, report
    assert with_aec.bot_speech_secs() >= 8, report  # the whole greeting, about 10 s
    aec = [e for e in with_aec.events if e.kind == "aec"]
    assert aec and (m := re.search(r"ERLE (-?[\d.]+) dB", aec[-1].text)) and float(m.group(1)) >= 6, report


def check_stops(rep: Report) -> None:
    """At least one "stop" was said while the bot talked, and every one stopped it."""
    report = rep.summary()
    stops = [s for s in rep.said if s.kind == "stop"]
    assert stops, f"'stop' was never said while the bot talked\n{report}"
    missed = [
        s for s in stops
        if not any(e.kind in ("interruption", "cut") and rep.in_window(e, s, STOP_WINDOW_SECS) for e in rep.events)
    ]  # fmt: skip
    assert not missed, f"{len(missed)} of {len(stops)} 'stop's did not stop the bot\n{report}"


def check_conversation(rep: Report) -> None:
    """The issue's "done when" for a conversation (``python tests/test_local_soundcard.py``)."""
    report = rep.summary()
    assert any(e.kind == "aec_on" and e.text.startswith(" on") for e in rep.events), report
    assert rep.end - rep.greeting_start >= CONVERSATION_SECS - 1, report
    # 1. No self-interruption: the bot is never cut off, and the filter releases no
    #    interruption, but on "stop".
    assert rep.self_interruptions() == [], report
    assert rep.self_interruptions(("interruption",)) == [], report
    # 2. Backchannels said while the bot talked are ignored: a backchannel decision,
    #    no interruption, and the bot goes on talking.
    over = [s for s in rep.said if s.kind == "backchannel" and s.bot_speaking]
    assert {s.clip for s in over} >= {"yeah__joe.wav", "uh_huh__joe.wav"}, report
    for s in over:
        near = [e for e in rep.events if rep.in_window(e, s, BACKCHANNEL_WINDOW_SECS)]
        assert not [e for e in near if e.kind in ("interruption", "cut")], f"{s.clip} interrupted\n{report}"
        assert [e for e in near if e.kind == "backchannel"], f"{s.clip}: no backchannel decision\n{report}"
    # 3. "stop" stops the bot.
    check_stops(rep)


if __name__ == "__main__":
    report = run_conversation(*sys.argv[1:])
    print(report.summary())
    try:
        check_conversation(report)
        print("done when: met")
    except AssertionError:
        print("done when: NOT met")
        sys.exit(1)
