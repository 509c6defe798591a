"""Pipecat's own STT services, each talking to a scripted stand-in for its vendor.

Every family in tests/test_stt_families.py runs the service class of the installed
Pipecat 1.14 (site-packages/pipecat/services/...): its own message handling builds the
frames the filter sees (type, direction, text, ``result``, ``finalized``, ``language``,
the turn frames it broadcasts, the ``STTMetadataFrame`` with the user turn strategies
it recommends), and its own ``process_frame`` reacts to the VAD frames it receives.
Only the far end is scripted: a server that hears the audio the service really sends
and answers in the vendor's wire format, at the moments the vendor answers:

- Deepgram nova-3 (``DeepgramSTTService``): the SDK's own socket client
  (``deepgram.listen.v1.socket_client.AsyncV1SocketClient``) over a fake websocket;
- Deepgram Flux (``DeepgramFluxSTTService``) and AssemblyAI (``AssemblyAISTTService``):
  a fake websocket behind ``WebsocketService._websocket_connect``;
- Speechmatics (``SpeechmaticsSTTService``): its SDK (``speechmatics.agent_stt``) is not
  installed here, so a stub of the few SDK names the service imports, with a scripted
  ``AgentSttAsyncClient``;
- WhisperSTTService: a scripted ``WhisperModel`` patched in while the service loads it;
- OpenAISTTService (segmented, cloud): a scripted ``AsyncOpenAI`` transcription call.

A server hears "speech" where the audio is not silent (as tests/shapes.py's
``LoudnessVAD`` does), and takes the utterances of its script (:class:`Said`) in
order, one per stretch of speech.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import string
import sys
import time
import types
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from unittest.mock import patch

from openai.types.audio import Transcription
from websockets.protocol import State

from pipecat.frames.frames import Frame
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.services.assemblyai.stt import AssemblyAISTTService
from pipecat.services.deepgram.flux.stt import DeepgramFluxSTTService
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.openai.stt import OpenAISTTService

SAMPLE_RATE = 16000  # tests/shapes.py
BYTES_PER_SEC = SAMPLE_RATE * 2


@dataclass(frozen=True)
class Said:
    """One utterance as the service spells it.

    Attributes:
        final: The final transcript, in the service's casing and punctuation.
        interims: The interim (partial) transcripts, in order, each a little more
            of the utterance than the one before.
    """

    final: str
    interims: tuple[str, ...] = ()


NOTHING = Said("")  # speech the server hears no words in


def _words(text: str) -> list[str]:
    return text.split()


def _bare(word: str) -> str:
    return word.strip(string.punctuation).lower()


# -- the far end --------------------------------------------------------------


class ScriptedServer:
    """A vendor's server hearing the service's audio and answering from a script.

    Subclasses implement the vendor's protocol in the hooks: ``on_connect``,
    ``on_onset`` (speech begins while no utterance is open), ``on_voiced``,
    ``on_silence`` (silence while an utterance is open), ``on_audio`` (every chunk) and
    ``on_control`` (a JSON message from the service). ``end_utterance`` closes the open
    utterance: the next speech takes the next :class:`Said` of the script.
    """

    def __init__(self, *said: Said):
        self.script = list(said)
        self.current: Said | None = None
        self.voiced = 0.0  # seconds of speech heard in the open utterance
        self.silent = 0.0  # seconds of silence since the last speech
        self.audio_secs = 0.0  # seconds of audio heard in all
        self.controls: list[dict] = []  # control messages received, in order
        self.urls: list[str] = []
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()

    # the service's side
    def connect(self, url: str = "") -> FakeWebSocket:
        self.urls.append(url)
        socket = FakeWebSocket(self)
        self.on_connect()
        return socket

    def hear(self, chunk: bytes):
        secs = len(chunk) / BYTES_PER_SEC
        self.audio_secs += secs
        if any(chunk):
            if self.current is None:
                self.current = self.script.pop(0) if self.script else NOTHING
                self.voiced = 0.0
                self.on_onset()
            self.voiced += secs
            self.silent = 0.0
            self.on_voiced()
        elif self.current is not None:
            self.silent += secs
            self.on_silence()
        self.on_audio(secs)

    def receive_control(self, message: dict):
        self.controls.append(message)
        self.on_control(message)

    # the server's side
    def reply(self, message: dict, delay: float = 0.0):
        """Send ``message`` to the service, ``delay`` seconds from now."""
        text = json.dumps(message)
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._outbox.put_nowait, text)
        else:
            self._outbox.put_nowait(text)

    def close(self):
        self._outbox.put_nowait(None)

    def end_utterance(self):
        self.current = None

    async def next_message(self) -> str | None:
        return await self._outbox.get()

    # protocol hooks
    def on_connect(self):
        pass

    def on_onset(self):
        pass

    def on_voiced(self):
        pass

    def on_silence(self):
        pass

    def on_audio(self, secs: float):
        pass

    def on_control(self, message: dict):
        pass


class FakeWebSocket:
    """The client end of a websocket to a :class:`ScriptedServer` (the subset of
    ``websockets.asyncio.client.ClientConnection`` the services use)."""

    def __init__(self, server: ScriptedServer):
        self._server = server
        self.state = State.OPEN
        self.response = None

    async def send(self, data):
        if self.state is not State.OPEN:
            return
        if isinstance(data, (bytes, bytearray)):
            self._server.hear(bytes(data))
        else:
            self._server.receive_control(json.loads(data))

    async def close(self, code: int = 1000, reason: str = ""):
        if self.state is State.OPEN:
            self.state = State.CLOSED
            self._server.close()

    async def recv(self):
        return await self.__anext__()

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.state is not State.OPEN:
            raise StopAsyncIteration
        message = await self._server.next_message()
        if message is None:
            self.state = State.CLOSED
            raise StopAsyncIteration
        return message


# -- Deepgram nova-3 ------------------------------------------------------------


class DeepgramServer(ScriptedServer):
    """Deepgram's ``/v1/listen`` as ``DeepgramSTTService`` opens it (services/deepgram/
    stt.py ``__init__``: nova-3-general, ``interim_results=true``, ``punctuate=true``,
    ``smart_format=false``, no ``endpointing`` parameter so Deepgram's default 10 ms
    endpointing applies).

    - An interim ``Results`` (``is_final=false``) for every ``interim_every`` seconds
      of speech, with the utterance so far, punctuated and capitalised (``punctuate``
      adds punctuation and casing to every result).
    - Endpointing: ``endpointing`` seconds of silence after speech (plus its latency)
      finalise the utterance with ``is_final=true, speech_final=true``; None models
      speech whose pause Deepgram does not endpoint before the VAD stops.
    - ``Finalize`` (sent by the service on ``VADUserStoppedSpeakingFrame``) is answered
      with ``is_final=true, from_finalize=true``: the rest of the utterance, or an empty
      transcript if endpointing already finalised it.
    """

    def __init__(
        self,
        *said: Said,
        endpointing: float | None = 0.06,
        interim_every: float = 0.12,
        latency: float = 0.04,
    ):
        super().__init__(*said)
        self.endpointing = endpointing
        self.interim_every = interim_every
        self.latency = latency
        self._interims: list[str] = []
        self._start = 0.0

    def on_onset(self):
        self._interims = list(self.current.interims)
        self._start = self.audio_secs

    def on_voiced(self):
        due = int(self.voiced / self.interim_every)
        sent = len(self.current.interims) - len(self._interims)
        if self._interims and due > sent:
            self.reply(self._results(self._interims.pop(0), is_final=False), self.latency)

    def on_silence(self):
        if self.endpointing is not None and self.silent >= self.endpointing:
            if self.current.final:
                self.reply(self._results(self.current.final, speech_final=True), self.latency)
            self.end_utterance()

    def on_control(self, message: dict):
        if message.get("type") == "Finalize":
            text = self.current.final if self.current is not None else ""
            self.reply(self._results(text, from_finalize=True), self.latency)
            self.end_utterance()
        elif message.get("type") == "CloseStream":
            self.close()

    def _results(
        self, text: str, *, is_final: bool = True, speech_final: bool = False, from_finalize=False
    ) -> dict:
        words = _words(text)
        step = 0.3
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(self.audio_secs - self._start, 3),
            "start": round(self._start, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [
                    {
                        "transcript": text,
                        "confidence": 0.98 if words else 0.0,
                        "words": [
                            {
                                "word": _bare(w),
                                "start": round(self._start + i * step, 3),
                                "end": round(self._start + (i + 1) * step, 3),
                                "confidence": 0.98,
                                "punctuated_word": w,
                            }
                            for i, w in enumerate(words)
                        ],
                    }
                ]
            },
            "metadata": {
                "request_id": "00000000-0000-4000-8000-000000000000",
                "model_info": {"name": "general-nova-3", "version": "2025-04-17.21547", "arch": "nova-3"},
                "model_uuid": "40bd3654-e622-47c4-a111-63a61b23bfe4",
            },
        }


class _DeepgramClient:
    """Stands in for ``deepgram.AsyncDeepgramClient``: ``listen.v1.connect(**query)``
    yields the SDK's own ``AsyncV1SocketClient`` over a fake websocket, so the SDK
    parses the server's JSON into ``ListenV1Results`` as it does in production."""

    def __init__(self, server: DeepgramServer):
        from deepgram.listen.v1.socket_client import AsyncV1SocketClient

        @asynccontextmanager
        async def connect(**query):
            # A label only: no socket is opened, the fake websocket is in memory.
            url = "wss://scripted-deepgram.invalid/v1/listen?" + "&".join(f"{k}={v}" for k, v in query.items())
            yield AsyncV1SocketClient(websocket=server.connect(url))

        self.listen = types.SimpleNamespace(v1=types.SimpleNamespace(connect=connect))


class ScriptedDeepgramSTTService(DeepgramSTTService):
    """``DeepgramSTTService`` (services/deepgram/stt.py) connected to a
    :class:`DeepgramServer`; everything from ``_connection_handler`` on is Pipecat's."""

    def __init__(self, server: DeepgramServer, **kwargs):
        super().__init__(api_key="test-key", **kwargs)
        self._client = _DeepgramClient(server)
        self.server = server


# -- Deepgram Flux ---------------------------------------------------------------


class FluxServer(ScriptedServer):
    """Deepgram Flux (``/v2/listen``, flux-general-en) as ``DeepgramFluxSTTService``
    uses it (services/deepgram/flux/stt.py, stt_base.py ``_handle_turn_info``):

    - ``Connected`` once the socket opens;
    - a ``TurnInfo`` ``Update`` for every 0.25 s of audio ("regardless of transcript
      updates", Deepgram's Flux state machine), empty outside a turn;
    - ``StartOfTurn`` once the first words are recognised (``start_after`` seconds
      of speech; "every StartOfTurn is guaranteed to contain a non-empty transcript");
    - ``EndOfTurn`` with the final transcript ``eot_silence`` seconds after the speech
      ends (Flux: ~260 ms end-of-turn detection at the default ``eot_threshold``);
    - with ``eager_silence`` (the service's ``enable_eager_end_of_turn``, which sets
      ``eager_eot_threshold``), ``EagerEndOfTurn`` with the same transcript that many
      seconds into the silence, before ``EndOfTurn``.

    Transcripts are capitalised and not punctuated, as in Deepgram's turn lifecycle
    example ("Hi I"); each word carries a confidence.
    """

    update_every = 0.25

    def __init__(
        self,
        *said: Said,
        start_after: float = 0.16,
        eot_silence: float = 0.26,
        eager_silence: float | None = None,
    ):
        super().__init__(*said)
        self.start_after = start_after
        self.eot_silence = eot_silence
        self.eager_silence = eager_silence
        self._eager_sent = False
        self._turn_index = 0
        self._sequence = itertools.count(1)
        self._in_turn = False
        self._transcript = ""
        self._interims: list[str] = []
        self._next_update = self.update_every

    def on_connect(self):
        self.reply({"type": "Connected", "request_id": "flux-test", "sequence_id": 0})

    def on_onset(self):
        self._interims = list(self.current.interims) or [self.current.final]
        self._in_turn = False
        self._eager_sent = False

    def on_voiced(self):
        if not self._in_turn and self.voiced >= self.start_after and self.current.final:
            self._in_turn = True
            self._transcript = self._interims[0]
            self._turn_info("StartOfTurn", self._transcript)

    def on_silence(self):
        eager = self.eager_silence
        if self._in_turn and eager is not None and not self._eager_sent and self.silent >= eager:
            self._eager_sent = True
            self._turn_info("EagerEndOfTurn", self.current.final, eot=0.6)
        if self._in_turn and self.silent >= self.eot_silence:
            self._turn_info("EndOfTurn", self.current.final, eot=0.9)
            self._turn_index += 1
            self._in_turn = False
            self.end_utterance()
        elif not self._in_turn and self.silent >= self.eot_silence:
            self.end_utterance()  # speech Flux heard no words in: no turn

    def on_audio(self, secs: float):
        if self.audio_secs + 1e-9 >= self._next_update:
            self._next_update += self.update_every
            if self._in_turn:
                if len(self._interims) > 1 and self._transcript == self._interims[0]:
                    self._interims.pop(0)
                self._transcript = self._interims[0]
            self._turn_info("Update", self._transcript if self._in_turn else "")

    def on_control(self, message: dict):
        if message.get("type") == "CloseStream":
            self.close()

    def _turn_info(self, event: str, transcript: str, eot: float = 0.1):
        self.reply(
            {
                "type": "TurnInfo",
                "request_id": "flux-test",
                "sequence_id": next(self._sequence),
                "event": event,
                "turn_index": self._turn_index,
                "audio_window_start": 0.0,
                "audio_window_end": round(self.audio_secs, 3),
                "transcript": transcript,
                "words": [{"word": w, "confidence": 0.95} for w in _words(transcript)],
                "end_of_turn_confidence": eot,
            }
        )


class ScriptedDeepgramFluxSTTService(DeepgramFluxSTTService):
    """``DeepgramFluxSTTService`` whose websocket leads to a :class:`FluxServer`."""

    def __init__(self, server: FluxServer, **kwargs):
        super().__init__(api_key="test-key", **kwargs)
        self.server = server

    async def _websocket_connect(self, uri: str, **kwargs):
        return self.server.connect(uri)


# -- AssemblyAI -------------------------------------------------------------------


class AssemblyAIServer(ScriptedServer):
    """AssemblyAI's v3 streaming API (universal-3-6-pro) as ``AssemblyAISTTService``
    uses it (services/assemblyai/stt.py ``_handle_message``):

    - ``Begin`` on connect; ``SpeechStarted`` once speech is heard (U3 Pro; the
      service only acts on it in turn detection mode, ``_handle_speech_started``);
    - a partial ``Turn`` (``end_of_turn=false``) every ``partial_every`` seconds of
      speech (U3 Pro sends continuous partials), lower case without punctuation;
    - the end of the turn, ``Turn`` with ``end_of_turn=true, turn_is_formatted=true``
      and the formatted transcript, after ``turn_silence`` seconds of silence (in
      Pipecat mode the service sets ``min_turn_silence = max_turn_silence = 100 ms``,
      ``_configure_pipecat_turn_mode``) or at once on ``ForceEndpoint`` (sent by the
      service on ``VADUserStoppedSpeakingFrame`` in Pipecat mode);
    - ``Termination`` in answer to ``Terminate``.
    """

    def __init__(
        self,
        *said: Said,
        turn_silence: float = 0.1,
        partial_every: float = 0.1,
        latency: float = 0.03,
    ):
        super().__init__(*said)
        self.turn_silence = turn_silence
        self.partial_every = partial_every
        self.latency = latency
        self._turn_order = 0
        self._partials: list[str] = []
        self._speech_started = False

    def on_connect(self):
        self.reply({"type": "Begin", "id": "aai-test", "expires_at": int(time.time()) + 600})

    def on_onset(self):
        self._partials = list(self.current.interims)
        self._speech_started = False
        self._sent = 0

    def on_voiced(self):
        if not self._speech_started:
            self._speech_started = True
            self.reply({"type": "SpeechStarted", "timestamp": int(self.audio_secs * 1000)})
        if self._partials and int(self.voiced / self.partial_every) > self._sent:
            self._sent += 1
            self.reply(self._turn(self._partials.pop(0), end_of_turn=False), self.latency)

    def on_silence(self):
        if self.silent >= self.turn_silence:
            self._end_turn()

    def on_control(self, message: dict):
        kind = message.get("type")
        if kind == "ForceEndpoint" and self.current is not None:
            self._end_turn()
        elif kind == "Terminate":
            self.reply(
                {
                    "type": "Termination",
                    "audio_duration_seconds": round(self.audio_secs, 2),
                    "session_duration_seconds": round(self.audio_secs, 2),
                }
            )
            self.close()

    def _end_turn(self):
        if self.current.final:
            self.reply(self._turn(self.current.final, end_of_turn=True), self.latency)
            self._turn_order += 1
        self.end_utterance()

    def _turn(self, text: str, *, end_of_turn: bool) -> dict:
        return {
            "type": "Turn",
            "turn_order": self._turn_order,
            "turn_is_formatted": end_of_turn,
            "end_of_turn": end_of_turn,
            "transcript": text,
            "end_of_turn_confidence": 0.9 if end_of_turn else 0.1,
            "words": [
                {
                    "start": 100 * i,
                    "end": 100 * (i + 1),
                    "text": w,
                    "confidence": 0.93,
                    "word_is_final": end_of_turn,
                }
                for i, w in enumerate(_words(text))
            ],
        }


class ScriptedAssemblyAISTTService(AssemblyAISTTService):
    """``AssemblyAISTTService`` whose websocket leads to an :class:`AssemblyAIServer`."""

    def __init__(self, server: AssemblyAIServer, **kwargs):
        super().__init__(api_key="test-key", **kwargs)
        self.server = server

    async def _websocket_connect(self, uri: str, **kwargs):
        return self.server.connect(uri)


# -- Speechmatics ------------------------------------------------------------------


class SpeechmaticsServer(ScriptedServer):
    """Speechmatics' Agent STT session as ``SpeechmaticsSTTService`` drives it
    (services/speechmatics/stt.py ``_handle_message``, ``process_frame``), through the
    scripted ``AgentSttAsyncClient`` of :func:`speechmatics_stt`:

    - ``AddPartialSegment`` every ``partial_every`` seconds of speech (punctuated);
    - turn detection mode ``EXTERNAL`` (the service's default): the final
      ``AddSegment`` answers ``client.finalize()``, which the service calls on
      ``VADUserStoppedSpeakingFrame``;
    - mode ``VAD`` (the service closes turns): ``StartOfTurn`` once speech is heard,
      and ``AddSegment`` then ``EndOfTurn`` after ``end_of_turn_silence`` seconds of
      silence; ``finalize()`` is never called.
    """

    def __init__(
        self,
        *said: Said,
        service_vad: bool = False,
        partial_every: float = 0.12,
        end_of_turn_silence: float = 0.3,
        latency: float = 0.05,
    ):
        super().__init__(*said)
        self.service_vad = service_vad
        self.partial_every = partial_every
        self.end_of_turn_silence = end_of_turn_silence
        self.latency = latency
        self.listeners: dict[str, Any] = {}
        self._partials: list[str] = []
        self._sent = 0

    def emit(self, message: dict, delay: float = 0.0):
        callback = self.listeners.get(message["message"])
        if callback is None:
            return  # the service did not subscribe to this message type
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, callback, message)
        else:
            callback(message)

    def on_onset(self):
        self._partials = list(self.current.interims)
        self._sent = 0
        if self.service_vad and self.current.final:
            self.emit({"message": "StartOfTurn", "turn_id": 1})

    def on_voiced(self):
        if self._partials and int(self.voiced / self.partial_every) > self._sent:
            self._sent += 1
            self.emit(self._segment("AddPartialSegment", self._partials.pop(0)), self.latency)

    def on_silence(self):
        if self.service_vad and self.silent >= self.end_of_turn_silence:
            if self.current.final:
                self.emit(self._segment("AddSegment", self.current.final), self.latency)
                self.emit({"message": "EndOfTurn", "turn_id": 1}, self.latency)
            self.end_utterance()

    def finalize(self):
        if self.current is not None and self.current.final:
            self.emit(self._segment("AddSegment", self.current.final), self.latency)
        self.end_utterance()

    def _segment(self, kind: str, text: str) -> dict:
        return {
            "message": kind,
            "segment": {"speaker_id": None, "text": text, "start_time": 0.0, "is_active": True},
            "metadata": {"start_time": 0.0, "end_time": round(self.audio_secs, 2)},
        }


def _speechmatics_sdk_stub() -> dict[str, types.ModuleType]:
    """The names ``pipecat.services.speechmatics.stt`` imports from
    ``speechmatics.agent_stt`` (not installed here), with the values the service
    relies on. The message types are the Agent STT server messages the service
    matches in ``_handle_message``."""
    sdk = types.ModuleType("speechmatics.agent_stt")

    class ServerMessageType(StrEnum):
        ADD_PARTIAL_SEGMENT = "AddPartialSegment"
        ADD_SEGMENT = "AddSegment"
        START_OF_TURN = "StartOfTurn"
        END_OF_TURN = "EndOfTurn"
        SPEAKERS_RESULT = "SpeakersResult"
        ERROR = "Error"
        WARNING = "Warning"

    class ClientMessageType(StrEnum):
        FORCE_END_OF_UTTERANCE = "ForceEndOfUtterance"

    class TurnDetectionMode(StrEnum):
        VAD = "vad"
        EXTERNAL = "external"

    class AudioEncoding(StrEnum):
        PCM_S16LE = "pcm_s16le"

    class Model(StrEnum):
        LINDEN_1 = "linden-1"

    class _Config:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)

    @dataclass
    class Segment:
        transcript: str
        speaker: str | None = None
        start_time: float = 0.0

        @classmethod
        def from_message(cls, message: dict) -> "Segment":
            segment = message["segment"]
            return cls(segment["text"], segment.get("speaker_id"), segment.get("start_time", 0.0))

    @dataclass
    class SpeakerIdentifier:
        label: str = ""
        speaker_identifiers: list[str] = field(default_factory=list)

    @dataclass
    class AdditionalVocabEntry:
        content: str = ""
        sounds_like: list[str] = field(default_factory=list)

    errors = {name: type(name, (Exception,), {}) for name in (
        "AuthenticationError", "ConfigurationError", "SessionError", "TranscriptionError")}
    names = dict(
        DEFAULT_CHUNK_SIZE=160,
        DEFAULT_MODEL=Model.LINDEN_1,
        SUPPORTED_SAMPLE_RATES=(8000, 16000),
        AdditionalVocabEntry=AdditionalVocabEntry,
        AgentSttAsyncClient=None,  # replaced per service by speechmatics_stt()
        AudioEncoding=AudioEncoding,
        AudioFormat=_Config,
        Model=Model,
        Segment=Segment,
        SpeakerDiarizationConfig=_Config,
        SpeakerIdentifier=SpeakerIdentifier,
        TranscriptionConfig=_Config,
        TurnConfig=_Config,
        ClientMessageType=ClientMessageType,
        ServerMessageType=ServerMessageType,
        TurnDetectionMode=TurnDetectionMode,
        **errors,
    )
    sdk.__dict__.update(names)
    package = types.ModuleType("speechmatics")
    package.agent_stt = sdk
    return {"speechmatics": package, "speechmatics.agent_stt": sdk}


def _import_with_stub(module: str, stub: dict[str, types.ModuleType]):
    """Import ``module`` with the stub modules in ``sys.modules`` for the duration of
    the import only (nothing else in the test session sees them)."""
    import importlib

    if module in sys.modules:
        return sys.modules[module]
    with patch.dict(sys.modules, stub):
        imported = importlib.import_module(module)
    sys.modules[module] = imported  # patch.dict dropped it along with the stubs
    return imported


class _AgentSttClient:
    """The scripted ``speechmatics.agent_stt.AgentSttAsyncClient``: what the service
    calls (``on``, ``connect``, ``send_audio``, ``finalize``, ``disconnect``)."""

    def __init__(self, server: SpeechmaticsServer, **config):
        self._server = server
        self.config = config
        self.is_ready_for_audio = True
        self.session_error = None
        self.session_info = types.SimpleNamespace(session_id="sm-test")

    def on(self, message_type, callback):
        self._server.listeners[str(message_type)] = callback

    async def connect(self):
        self._server.urls.append(str(self.config.get("url")))

    async def send_audio(self, audio: bytes):
        self._server.hear(audio)

    def finalize(self):
        self._server.controls.append({"message": "finalize"})
        self._server.finalize()

    async def send_message(self, payload):
        self._server.receive_control(payload)

    async def disconnect(self):
        self.is_ready_for_audio = False


def speechmatics_stt(server: SpeechmaticsServer, **kwargs):
    """A ``SpeechmaticsSTTService`` (services/speechmatics/stt.py) whose Agent STT
    client is scripted by ``server``; ``server.service_vad`` picks the turn detection
    mode (``VAD``) or leaves the service's default (``EXTERNAL``)."""
    module = _import_with_stub("pipecat.services.speechmatics.stt", _speechmatics_sdk_stub())
    if server.service_vad:
        kwargs.setdefault(
            "settings",
            module.SpeechmaticsSTTService.Settings(
                turn_detection_mode=module.TurnDetectionMode.VAD
            ),
        )
    service = module.SpeechmaticsSTTService(api_key="test-key", **kwargs)
    module.AgentSttAsyncClient = lambda **config: _AgentSttClient(server, **config)
    service.server = server
    return service


# -- segmented: WhisperSTTService, OpenAISTTService --------------------------------


class SegmentModel:
    """The model behind a segmented STT: one call per VAD segment, in order.

    ``latency`` is the seconds a call takes (model inference or the HTTP round trip).
    A segment with no voiced sample gets no words, as a model gives on silence.
    """

    def __init__(self, *said: Said, latency: float = 0.2):
        self.script = list(said)
        self.latency = latency
        self.segments: list[int] = []  # samples in each segment received

    def next_text(self, voiced: bool) -> str:
        said = self.script.pop(0) if (self.script and voiced) else NOTHING
        return said.final


class _WhisperModel:
    """Stands in for ``faster_whisper.WhisperModel``: ``transcribe`` returns Whisper
    segments whose text starts with a space, as faster-whisper's do."""

    def __init__(self, model: SegmentModel):
        self._model = model

    def transcribe(self, audio, language=None, hotwords=None, initial_prompt=None):
        # Runs in the service's worker thread (asyncio.to_thread in run_stt).
        time.sleep(self._model.latency)
        self._model.segments.append(len(audio))
        text = self._model.next_text(bool(abs(audio).max() > 0))
        segments = [types.SimpleNamespace(text=text, no_speech_prob=0.02)] if text else []
        return segments, types.SimpleNamespace(language=language)


def whisper_stt(model: SegmentModel, **kwargs):
    """A ``WhisperSTTService`` (services/whisper/stt.py, a ``SegmentedSTTService``)
    running on :class:`SegmentModel`; its own ``run_stt`` builds the frames."""
    # faster-whisper is installed (the offline extra): the real module, with only
    # WhisperModel patched while the service loads it, so later tests get the real one.
    import pipecat.services.whisper.stt as module

    with patch.object(module, "WhisperModel", lambda *a, **k: _WhisperModel(model)):
        service = module.WhisperSTTService(**kwargs)
    service.model = model
    return service


class _Transcriptions:
    def __init__(self, model: SegmentModel):
        self._model = model

    async def create(self, *, file, model, language, **kwargs):
        await asyncio.sleep(self._model.latency)
        wav = file[1]
        self._model.segments.append((len(wav) - 44) // 2)
        return Transcription(text=self._model.next_text(any(wav[44:])))


class ScriptedOpenAISTTService(OpenAISTTService):
    """``OpenAISTTService`` (services/openai/stt.py on services/whisper/base_stt.py, a
    ``SegmentedSTTService``) whose transcription request is answered by a
    :class:`SegmentModel`: ``_transcribe`` and ``run_stt`` are Pipecat's."""

    def __init__(self, model: SegmentModel, **kwargs):
        super().__init__(api_key="test-key", **kwargs)
        self._client = types.SimpleNamespace(audio=types.SimpleNamespace(transcriptions=_Transcriptions(model)))
        self.model = model


# -- what the service pushed ----------------------------------------------------------


class PushedBy(BaseObserver):
    """Records every frame ``processor`` pushes, with its direction."""

    def __init__(self, processor):
        super().__init__()
        self._processor = processor
        self.frames: list[tuple[Frame, Any]] = []

    async def on_push_frame(self, data: FramePushed):
        if data.source is self._processor:
            self.frames.append((data.frame, data.direction))

    def of(self, frame_type, direction=None) -> list:
        return [
            f
            for f, d in self.frames
            if isinstance(f, frame_type) and (direction is None or d == direction)
        ]
