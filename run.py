"""Run the reference voice bot.

    python run.py                      # browser client on http://localhost:7860 (SmallWebRTC)
    python run.py -t daily             # join Daily (DAILY_API_KEY in .env)
    python run.py --transport local    # laptop microphone and speaker

Services: cloud (Deepgram, OpenAI, Cartesia) when their keys are in .env, else the
embedded offline stack; choose per service with --stt/--llm/--tts. Every other
option is Pipecat's development runner's (pipecat.runner.run), listed by --help.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from dotenv import load_dotenv
from loguru import logger

from bot.agents import AGENTS
from bot.services import CHOICES, ServiceChoice, choose_services

HELP_EPILOG = """\
transports:
  (default)           SmallWebRTC: open http://localhost:7860/client in a browser
  -t daily            Daily room (needs DAILY_API_KEY); -d joins directly
  --transport local   this machine's microphone and speaker (needs PyAudio, i.e.
                      Debian's portaudio19-dev) on one full-duplex stream, with WebRTC
                      acoustic echo cancellation so the bot does not hear itself
                      (--no-aec: Pipecat's LocalAudioTransport, e.g. with headphones);
                      SmallWebRTC and Daily need none: the browser cancels the echo

services (auto = cloud when its key is set, offline otherwise):
  STT  deepgram (DEEPGRAM_API_KEY)  | pocketsphinx (offline)
  LLM  openai   (OPENAI_API_KEY)    | local (SmolLM2 via llama.cpp, offline)
  TTS  cartesia (CARTESIA_API_KEY)  | piper (offline)
"""


def add_bot_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the reference bot's own options to ``parser``."""
    group = parser.add_argument_group("reference bot")
    group.add_argument("--stt", choices=CHOICES["stt"], default="auto", help="speech-to-text service")
    group.add_argument("--llm", choices=CHOICES["llm"], default="auto", help="LLM service")
    group.add_argument("--tts", choices=CHOICES["tts"], default="auto", help="text-to-speech service")
    group.add_argument(
        "--llm-base-url",
        default=None,
        help="OpenAI-compatible server for the LLM (Ollama, vLLM, llama.cpp), e.g. "
        "http://localhost:11434/v1; overrides --llm",
    )
    group.add_argument("--llm-model", default=None, help="model name to request from the LLM")
    group.add_argument(
        "--agent",
        choices=list(AGENTS),
        default="default",
        help="example behaviour: default (ignore backchannels, obey interruptions, resume "
        "on 'go on'), uninterruptible (a long notice nothing cuts), interrupt-user (cut in "
        "when you talk past three sentences)",
    )
    group.add_argument(
        "--no-aec",
        dest="aec",
        action="store_false",
        help="--transport local only: turn off acoustic echo cancellation (on by default there, "
        "so the bot does not interrupt itself on its own voice from the speaker; use with "
        "headphones). SmallWebRTC and Daily never use it: the browser cancels echo",
    )
    return parser


def choice_from_args(args: argparse.Namespace) -> ServiceChoice:
    """Resolve the services; exits with the missing variable's name if a key is missing."""
    from bot.services import MissingKeyError

    try:
        return choose_services(
            args.stt, args.llm, args.tts, llm_base_url=args.llm_base_url, llm_model=args.llm_model
        )
    except MissingKeyError as e:
        sys.exit(f"error: {e}")


_CHOICE: ServiceChoice | None = None  # resolved once per process, before the first session


async def bot(runner_args):
    """Entry point called by Pipecat's development runner for each session."""
    from pipecat.runner.utils import create_transport
    from pipecat.transports.base_transport import TransportParams
    from pipecat.transports.daily.transport import DailyParams

    from bot.pipeline import run_bot

    choice = _CHOICE or choice_from_args(runner_args.cli_args)
    transport = await create_transport(
        runner_args,
        {
            "daily": lambda: DailyParams(audio_in_enabled=True, audio_out_enabled=True),
            "webrtc": lambda: TransportParams(audio_in_enabled=True, audio_out_enabled=True),
        },
    )
    agent = AGENTS[runner_args.cli_args.agent if runner_args.cli_args else "default"]
    await run_bot(transport, choice, agent=agent, handle_sigint=runner_args.handle_sigint)


def check_sound_devices() -> None:
    """Exit with a clear message when there is no default microphone or speaker."""
    import pyaudio

    audio = pyaudio.PyAudio()
    try:
        for kind, probe in (
            ("microphone", audio.get_default_input_device_info),
            ("speaker", audio.get_default_output_device_info),
        ):
            try:
                probe()
            except OSError as e:
                sys.exit(f"error: --transport local needs a {kind}, and PyAudio finds none ({e})")
    finally:
        audio.terminate()


#: Seconds of bot speech at the start of a local session during which what the
#: microphone hears over the bot is taken for echo (the filter's ``echo_warmup_secs``):
#: LiveKit Agents' ``AgentSession(aec_warmup_duration=3.0)`` default.
AEC_WARMUP_SECS = 3.0


async def run_local(choice: ServiceChoice, agent: str = "default", *, aec: bool = True):
    """Talk to the bot through this machine's microphone and speaker.

    With ``aec`` (the default) the microphone goes through WebRTC acoustic echo
    cancellation with the bot's output as the reverse stream (``bot/echo_cancel.py``),
    on one full-duplex PortAudio stream (``bot/duplex_audio.py``; microphone and
    speaker at 16 kHz), so a laptop's speaker leaking into its microphone does not
    interrupt the bot; for the first ``AEC_WARMUP_SECS`` of bot speech, while the
    canceller converges, the filter takes what it hears over the bot for echo.
    """
    from pipecat.transports.local.audio import LocalAudioTransport, LocalAudioTransportParams

    from bot.pipeline import run_bot

    params = LocalAudioTransportParams(audio_in_enabled=True, audio_out_enabled=True)
    if aec:
        from bot.duplex_audio import DuplexAudioTransport
        from bot.echo_cancel import EchoCanceller

        transport = DuplexAudioTransport(params, EchoCanceller())
    else:
        transport = LocalAudioTransport(params)
    logger.info(f"Local audio: acoustic echo cancellation {'on' if aec else 'off (--no-aec)'}")
    await run_bot(
        transport,
        choice,
        agent=AGENTS[agent],
        has_clients=False,
        handle_sigint=True,
        # The canceller starts cold: LiveKit Agents' aec_warmup_duration default.
        echo_warmup_secs=AEC_WARMUP_SECS if aec else 0.0,
    )


def main(argv: list[str] | None = None):
    """Parse the options, load models once, then serve the bot."""
    global _CHOICE
    argv = sys.argv[1:] if argv is None else argv
    load_dotenv(override=False)

    # "local" is ours; Pipecat's runner handles every other transport.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("-t", "--transport", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.transport == "local":
        parser = add_bot_arguments(
            argparse.ArgumentParser(
                description=__doc__,
                epilog=HELP_EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
        parser.add_argument("-t", "--transport", choices=["local"], help="local audio")
        args = parser.parse_args(argv)
        _CHOICE = choice_from_args(args)
        check_sound_devices()
        from bot.services import preload

        preload(_CHOICE)
        asyncio.run(run_local(_CHOICE, args.agent, aec=args.aec))
        return

    from pipecat.runner.run import app, main as runner_main

    from bot.web_client import mount_web_client

    mount_web_client(app)  # our offline page at /client, when built (client/)

    parser = add_bot_arguments(
        argparse.ArgumentParser(
            description=__doc__,
            epilog=HELP_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    if not any(a in ("-h", "--help") for a in argv):
        bot_args, _ = parser.parse_known_args(argv)
        _CHOICE = choice_from_args(bot_args)
        from bot.services import preload

        preload(_CHOICE)
    sys.argv = [sys.argv[0], *argv]
    runner_main(parser)


if __name__ == "__main__":
    main()
