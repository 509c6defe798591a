"""A real browser session with the offline reference bot.

``python run.py`` (offline services) serves the project's page (``client/``) over
SmallWebRTC; headless Debian Chromium opens it with a WAV file as its microphone
(``--use-file-for-fake-audio-capture``) and talks to the bot:

    mic on (after the greeting)
    0.5 s   "tell me a story about a dog"        the bot is silent: a user turn
    ...     the bot answers (~3 s after the question ends)
    +5.7 s  "yeah"   (~1.5-3 s into the answer)  a backchannel: the bot keeps talking
    +4.5 s  "hold on"                            an interruption: the bot stops

and the page's RTVI messages, its bot-audio level meter and its panels are checked.

Network: aiortc gathers no ICE candidates on a loopback-only host, and this test
must not send anything beyond the machine, so the bot and Chromium both run in a
network namespace the test creates (``ip netns``: loopback plus a veth pair, both
ends inside, private addresses); it is deleted afterwards. This needs root (CI
runs as root). Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright;
``setup.sh`` installs both and builds the page.

One session (~60-90 s on 2 cores) is shared by the tests of this module; on a
failure the session's timeline is printed. The screenshot is saved next to the
session's files (its path is printed), or to ``$SOFTACK_E2E_SCREENSHOT``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import wave
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.audio_timeline import SAMPLE_RATE, load_clip

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CLIENT_DIST = ROOT / "client" / "dist"
SETUP_HINT = "run ./setup.sh (it installs Debian's chromium and Playwright and builds client/)"

TURN = "tell_me_a_story_about_a_dog__joe.wav"
BACKCHANNEL = "yeah__joe.wav"
# Not "wait__joe.wav": Silero (start_secs 0.1) misses that clip in 3 of the 8 phases of
# its 32 ms window against 20 ms frames (CI failed on it); "hold on" is heard in all 8.
# Over WebRTC (Opus, 48 kHz) PocketSphinx hears it as "full bowl", "fold want": content
# words, so the interruption is released all the same; the test does not ask for the word.
INTERRUPT = "hold_on__joe.wav"
LEAD_SECS = 0.5  # silence before the turn
# From the end of the turn's speech to the backchannel's speech. Measured here: the
# bot's answer starts 2.8-4.3 s after the question ends (Smart Turn 1 s, SmolLM2,
# Piper; the longer when other jobs load the 2 cores), so "yeah" comes 1.4-2.9 s
# into the answer. An answer later than 5.7 s fails
# test_backchannel_keeps_the_bot_talking with that diagnosis.
TURN_END_TO_BACKCHANNEL = 5.7
BACKCHANNEL_TO_INTERRUPT = 4.5  # speech onset to speech onset; the answer lasts > 10 s
TAIL_SECS = 120.0  # Chromium loops the file (no "%noloop" in Chromium 156): no replay

# Bounds, seconds.
MAX_SERVER_START = 300.0  # models preloaded, llama.cpp server started
MAX_GREETING = 90.0
# Interruption onset to bot-stopped-speaking on the page: measured 0.45-0.75 s, 1.7 s once
# with the 2 cores loaded by other jobs (the server's VAD and STT fall behind).
MAX_INTERRUPT_TO_STOP = 3.0
# Interruption onset to the page's last bot audio: measured 0.4-1.7 s (bot-stopped-speaking,
# then the browser's jitter buffer, which grows when the 2 cores are busy).
MAX_INTERRUPT_TO_SILENCE = 3.5
AUDIBLE_RMS = 0.005  # bot audio level (page meter) that counts as speech

# Traffic stays inside the namespace: loopback and this private /30 on a veth pair.
VETH_ADDRS = ("10.254.77.1/30", "10.254.77.2/30")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


# --------------------------------------------------------------------------- #
# Requirements: no skips. What is missing fails, saying how to install it.
# --------------------------------------------------------------------------- #


def _require_setup():
    problems = []
    if not os.access(CHROMIUM, os.X_OK):
        problems.append(f"Debian's chromium is not installed ({CHROMIUM})")
    try:
        import playwright  # noqa: F401
    except ImportError:
        problems.append("Playwright for Python is not installed (the test extra)")
    if not (CLIENT_DIST / "index.html").is_file():
        problems.append(f"the browser client is not built ({CLIENT_DIST})")
    if not shutil.which("ip"):
        problems.append("iproute2's `ip` is not installed")
    if problems:
        pytest.fail("; ".join(problems) + f": {SETUP_HINT}", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail(
            "this test creates a network namespace (ip netns) for WebRTC and needs root",
            pytrace=False,
        )


# --------------------------------------------------------------------------- #
# The microphone file
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class MicFile:
    path: Path
    onsets: dict[str, float]  # clip -> seconds from the file start to its speech onset
    ends: dict[str, float]  # clip -> seconds to the end of its speech


def build_mic_wav(path: Path) -> MicFile:
    """The turn, silence while the bot answers, the backchannel, the interruption."""
    silence = lambda secs: b"\0\0" * int(round(SAMPLE_RATE * secs))  # noqa: E731
    turn, bc, intr = load_clip(TURN), load_clip(BACKCHANNEL), load_clip(INTERRUPT)
    onsets, ends = {}, {}
    pcm = silence(LEAD_SECS)

    def add(clip, at: float | None = None):
        nonlocal pcm
        if at is not None:  # place the clip's speech onset at `at`
            start = at - clip.speech_start
            pcm += silence(start - len(pcm) / (2 * SAMPLE_RATE))
        t0 = len(pcm) / (2 * SAMPLE_RATE)
        onsets[clip.name] = t0 + clip.speech_start
        ends[clip.name] = t0 + (clip.speech_end or clip.duration)
        pcm += clip.pcm

    add(turn)
    add(bc, at=ends[TURN] + TURN_END_TO_BACKCHANNEL)
    add(intr, at=onsets[BACKCHANNEL] + BACKCHANNEL_TO_INTERRUPT)
    pcm += silence(TAIL_SECS)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)
    return MicFile(path, onsets, ends)


# --------------------------------------------------------------------------- #
# Network namespace, bot server
# --------------------------------------------------------------------------- #


def _ip(*args: str):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class NetNs:
    """A network namespace with loopback and a veth pair (both ends inside)."""

    def __init__(self):
        self.name = f"softack-e2e-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def __enter__(self) -> NetNs:
        _ip("netns", "add", self.name)
        try:
            n = ["-n", self.name]
            _ip(*n, "link", "set", "lo", "up")
            _ip(*n, "link", "add", "sa0", "type", "veth", "peer", "name", "sa1")
            for dev, addr in zip(("sa0", "sa1"), VETH_ADDRS):
                _ip(*n, "addr", "add", addr, "dev", dev)
                _ip(*n, "link", "set", dev, "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def __exit__(self, *_exc):
        # Whatever still runs in the namespace was started by this test.
        pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout
        for pid in pids.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def _free_port() -> int:
    # The namespace is fresh, so any port is free there; take an ephemeral one anyway.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BotServer:
    """``python run.py --port PORT`` (offline services) inside the namespace."""

    def __init__(self, ns: NetNs, log_path: Path):
        self.ns = ns
        self.port = _free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> BotServer:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Offline by default: no cloud keys, whatever the environment has.
        for key in ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "CARTESIA_API_KEY", "DAILY_API_KEY"):
            env.pop(key, None)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [*self.ns.exec_prefix(), sys.executable, "run.py", "--port", str(self.port),
             "--stt", "pocketsphinx", "--llm", "local", "--tts", "piper"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + MAX_SERVER_START
        while "Uvicorn running on" not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError(f"run.py exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"run.py did not start in {MAX_SERVER_START}s:\n{self.log()[-4000:]}")
            time.sleep(0.5)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}/client/"

    def __exit__(self, *_exc):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


# --------------------------------------------------------------------------- #
# The session
# --------------------------------------------------------------------------- #


@dataclass
class Session:
    mic: MicFile
    log: list[dict]  # RTVI messages: {"t": ms (page clock), "type", "data"}
    levels: list[tuple[float, float]]  # bot audio level: (ms, rms)
    mic_started_at: float  # ms, page clock: the file starts playing
    errors: list[str]
    foreign_requests: list[str]
    console_errors: list[str]
    panel: list[dict]  # decisions panel: {"cls", "text"}
    transcript: list[dict]  # transcript lines: {"cls", "text"}
    status: str
    screenshot: Path
    bot_log: Path
    extra: dict = field(default_factory=dict)

    # -- queries (seconds on the page clock) --

    def at(self, clip: str) -> float:
        """When a clip's speech starts playing into the microphone."""
        return (self.mic_started_at / 1000) + self.mic.onsets[clip]

    def end(self, clip: str) -> float:
        """When a clip's speech ends in the microphone."""
        return (self.mic_started_at / 1000) + self.mic.ends[clip]

    def events(self, type_: str, since: float = 0.0, until: float = float("inf"), **data):
        out = []
        for m in self.log:
            t = m["t"] / 1000
            if m["type"] == type_ and since <= t < until:
                d = m.get("data") or {}
                if all(d.get(k) == v for k, v in data.items()):
                    out.append({"t": t, **d})
        return out

    def first(self, type_: str, since: float = 0.0, until: float = float("inf"), **data):
        found = self.events(type_, since, until, **data)
        return found[0] if found else None

    def decisions(self, kind: str, since: float = 0.0, until: float = float("inf")):
        return [d for d in self.events("server-message", since, until, type="softack-decision") if d["kind"] == kind]

    def audible_secs(self, since: float, until: float) -> float:
        samples = [(t / 1000, v) for t, v in self.levels if since <= t / 1000 < until]
        if len(samples) < 2:
            return 0.0
        step = (samples[-1][0] - samples[0][0]) / (len(samples) - 1)
        return sum(step for _, v in samples if v >= AUDIBLE_RMS)

    def last_audible(self, since: float, until: float) -> float | None:
        """The last moment with bot audio on the page in [since, until)."""
        times = [t / 1000 for t, v in self.levels if since <= t / 1000 < until and v >= AUDIBLE_RMS]
        return times[-1] if times else None

    def speaking_at(self, t: float) -> bool:
        starts = self.events("bot-started-speaking", until=t)
        if not starts:
            return False
        return not self.events("bot-stopped-speaking", since=starts[-1]["t"], until=t)

    def dump(self) -> str:
        t0 = self.mic_started_at / 1000
        lines = [f"--- browser session (seconds from mic start; clips at {self.mic.onsets}) ---"]
        quiet = {"bot-tts-text", "bot-output", "metrics", "bot-llm-text", "bot-transcription", "user-transcription"}
        for m in self.log:
            if m["type"] in quiet or (m["type"] == "user-input" and not (m.get("data") or {}).get("final")):
                continue
            data = m.get("data")
            if m["type"] == "bot-ready":
                data = None
            lines.append(f"{m['t'] / 1000 - t0:8.3f}  {m['type']}  {json.dumps(data) if data else ''}")
        answer = self.first("bot-started-speaking", since=self.at(TURN))
        if answer:
            lines.append(
                f"answer: bot-started-speaking {answer['t'] - self.end(TURN):.2f}s after the question "
                f"ended; 'yeah' {self.at(BACKCHANNEL) - answer['t']:.2f}s into it"
            )
        runs = _audible_runs(self.levels)
        lines.append("bot audio (audible runs): " + ", ".join(f"{a - t0:.2f}-{b - t0:.2f}" for a, b in runs))
        lines.append(f"page errors: {self.errors}; console errors: {self.console_errors}")
        lines.append(f"requests outside the page: {self.foreign_requests}")
        lines.append(f"screenshot: {self.screenshot}; bot log: {self.bot_log}")
        return "\n".join(lines)


def _audible_runs(levels, gap: float = 0.3):
    runs: list[list[float]] = []
    for t, v in levels:
        t /= 1000
        if v < AUDIBLE_RMS:
            continue
        if runs and t - runs[-1][1] <= gap:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    return [(a, b) for a, b in runs]


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Session:
    _require_setup()
    from playwright.sync_api import sync_playwright

    work = tmp_path_factory.mktemp("browser")
    mic = build_mic_wav(work / "mic.wav")
    screenshot = Path(os.environ.get("SOFTACK_E2E_SCREENSHOT") or work / "browser-session.png").resolve()
    with NetNs() as ns, BotServer(ns, work / "bot.log") as server:
        # Playwright starts this instead of Chromium: Debian's Chromium, in the namespace.
        wrapper = work / "chromium-in-netns"
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.join([*ns.exec_prefix(), CHROMIUM])} "$@"\n')
        wrapper.chmod(0o755)
        foreign, console_errors = [], []
        origin = f"http://localhost:{server.port}/"
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(wrapper),
                args=[
                    *CHROMIUM_ARGS,
                    f"--use-file-for-fake-audio-capture={mic.path}",
                ],  # and a fresh --user-data-dir: Playwright makes one per launch
            )
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 600})
                page.on("request", lambda r: None if r.url.startswith((origin, "data:")) else foreign.append(r.url))
                page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: console_errors.append(str(e)))
                # Mic off until the greeting is over, so the file starts at a known moment.
                page.goto(server.url + "?mic=0")
                page.click("#connect")
                page.wait_for_function(
                    "window.softack.log.some(m => m.type === 'bot-stopped-speaking')",
                    timeout=MAX_GREETING * 1000,
                )
                page.click("#mic")  # the file starts playing
                page.wait_for_function("window.softack.micStartedAt !== null", timeout=10_000)
                # Until shortly after the interruption (plus time to stop and settle).
                page.wait_for_timeout((mic.ends[INTERRUPT] + 4.0) * 1000)
                page.screenshot(path=str(screenshot))
                state = page.evaluate(
                    """() => ({
                        log: window.softack.log, levels: window.softack.levels,
                        micStartedAt: window.softack.micStartedAt, errors: window.softack.errors,
                        status: document.getElementById('status').textContent,
                        panel: [...document.querySelectorAll('#decisions li')]
                            .map(li => ({cls: li.className, text: li.textContent})),
                        transcript: [...document.querySelectorAll('#transcript li')]
                            .map(li => ({cls: li.className, text: li.textContent})),
                    })"""
                )
                page.click("#connect")  # disconnect
                page.wait_for_timeout(500)
            finally:
                browser.close()
    result = Session(
        mic=mic,
        log=state["log"],
        levels=[tuple(x) for x in state["levels"]],
        mic_started_at=state["micStartedAt"],
        errors=state["errors"],
        foreign_requests=foreign,
        console_errors=console_errors,
        panel=state["panel"],
        transcript=state["transcript"],
        status=state["status"],
        screenshot=screenshot,
        bot_log=server.log_path,
    )
    print(result.dump())
    return result


# --------------------------------------------------------------------------- #
# Checks
# --------------------------------------------------------------------------- #


def test_page_works_offline(session: Session):
    """The page loads only from the bot's server, connects, and shows no error."""
    assert session.foreign_requests == [], f"requests beyond the bot's server\n{session.dump()}"
    assert session.errors == [], session.dump()
    assert session.console_errors == [], session.dump()
    assert session.first("bot-ready") is not None, f"no bot-ready: not connected\n{session.dump()}"
    assert "error" not in session.status.lower(), session.dump()
    assert session.screenshot.is_file()


def test_bot_hears_the_user(session: Session):
    """The turn's transcript reaches the page as an RTVI user-input (and the page shows it)."""
    finals = session.events("user-input", since=session.at(TURN), input_type="transcription", final=True)
    heard = [f["text"] for f in finals if "dog" in f["text"] and "story" in f["text"]]
    assert heard, f"no final transcript of {TURN}\n{session.dump()}"
    assert any(
        line["cls"] == "user" and "dog" in line["text"] for line in session.transcript
    ), f"the transcript panel does not show the turn: {session.transcript}"


def test_bot_audio_reaches_the_page(session: Session):
    """The bot answers: bot-started-speaking after the turn, and its audio is heard on the page."""
    answer = session.first("bot-started-speaking", since=session.at(TURN))
    assert answer is not None, f"the bot never answered\n{session.dump()}"
    stopped = session.first("bot-stopped-speaking", since=answer["t"])
    until = stopped["t"] if stopped else answer["t"] + 10
    assert session.audible_secs(answer["t"], until) >= 1.0, f"no bot audio on the page\n{session.dump()}"
    assert any(line["cls"].startswith("bot") for line in session.transcript), session.transcript


def test_backchannel_keeps_the_bot_talking(session: Session):
    """"yeah" while the bot talks: RTVI user-input of type backchannel, no interruption,
    the bot's audio goes on, and the decision panel shows it."""
    bc_at, next_at = session.at(BACKCHANNEL), session.at(INTERRUPT)
    answer = session.first("bot-started-speaking", since=session.at(TURN))
    assert answer is not None, session.dump()
    assert session.speaking_at(bc_at), (
        f"the bot was not speaking when 'yeah' was said: its answer started "
        f"{answer['t'] - session.end(TURN):.1f}s after the question ended; 'yeah' comes "
        f"{TURN_END_TO_BACKCHANNEL}s after it (TURN_END_TO_BACKCHANNEL)\n{session.dump()}"
    )
    backchannels = session.events("user-input", since=bc_at, until=next_at, input_type="backchannel")
    assert [b["text"] for b in backchannels] == ["yeah"], f"no backchannel user-input\n{session.dump()}"
    assert session.events("bot-interrupted", since=answer["t"], until=next_at) == [], session.dump()
    assert session.events("bot-stopped-speaking", since=answer["t"], until=next_at) == [], (
        f"the bot stopped on the backchannel\n{session.dump()}"
    )
    bc_t = backchannels[0]["t"]
    assert session.audible_secs(bc_t, next_at) >= 1.0, f"the bot's audio did not go on\n{session.dump()}"
    decisions = session.decisions("backchannel", since=bc_at, until=next_at)
    assert decisions and decisions[0]["text"] == "yeah", session.dump()
    assert 0 < decisions[0]["held_secs"] < 3.0, decisions
    assert any("backchannel ignored" in d["text"] and "yeah" in d["text"] for d in session.panel), session.panel
    assert any("backchannel" in line["cls"] and "yeah" in line["text"] for line in session.transcript), (
        session.transcript
    )


def test_interruption_stops_the_bot(session: Session):
    """The interruption ("hold on") while the bot talks: interruption released, bot-stopped-speaking soon, audio quiet."""
    at = session.at(INTERRUPT)
    assert session.speaking_at(at), f"the bot was not speaking when the interruption was said\n{session.dump()}"
    interrupted = session.first("bot-interrupted", since=at)
    stopped = session.first("bot-stopped-speaking", since=at)
    assert interrupted and interrupted["t"] - at < MAX_INTERRUPT_TO_STOP, (
        f"no bot-interrupted in time\n{session.dump()}"
    )
    assert stopped and stopped["t"] - at < MAX_INTERRUPT_TO_STOP, (
        f"the bot did not stop in time\n{session.dump()}"
    )
    decisions = session.decisions("interruption", since=at)
    assert decisions and decisions[0]["text"], session.dump()
    assert any("interruption released" in d["text"] and decisions[0]["text"] in d["text"] for d in session.panel), session.panel
    # The page goes quiet: the last bot audio before the bot answers it (its audio
    # cannot reach the page before its bot-started-speaking message does).
    restart = session.first("bot-started-speaking", since=stopped["t"])
    until = restart["t"] if restart else stopped["t"] + 3.0
    silent_at = session.last_audible(since=at, until=until)
    silent_at = at if silent_at is None else silent_at  # no bot audio after the onset at all
    assert silent_at - at < MAX_INTERRUPT_TO_SILENCE, (
        f"bot audio went on after the interruption\n{session.dump()}"
    )
    print(
        f"\ninterruption onset -> bot-stopped-speaking {stopped['t'] - at:.3f}s, "
        f"-> page audio silent {silent_at - at:.3f}s"
    )
