"""Service selection of the reference bot: cloud by key, offline otherwise."""

import pytest

from bot.services import MissingKeyError, choose_services

KEYS = {"DEEPGRAM_API_KEY": "dg", "OPENAI_API_KEY": "sk", "CARTESIA_API_KEY": "ca"}


def test_no_keys_means_fully_offline():
    choice = choose_services(environ={})
    assert (choice.stt, choice.llm, choice.tts) == ("pocketsphinx", "local", "piper")
    assert choice.offline
    for ear in ("pocketsphinx", "whisper", "hybrid"):  # each offline ear stays selectable
        assert choose_services(ear, environ={}).offline


def test_keys_pick_cloud_services_one_by_one():
    choice = choose_services(environ={"DEEPGRAM_API_KEY": "dg"})
    assert (choice.stt, choice.llm, choice.tts) == ("deepgram", "local", "piper")
    choice = choose_services(environ=KEYS)
    assert (choice.stt, choice.llm, choice.tts) == ("deepgram", "openai", "cartesia")
    assert not choice.offline


def test_flags_override_keys():
    choice = choose_services("pocketsphinx", "local", "piper", environ=KEYS)
    assert choice.offline


@pytest.mark.parametrize(
    "kwargs, variable",
    [({"stt": "deepgram"}, "DEEPGRAM_API_KEY"), ({"llm": "openai"}, "OPENAI_API_KEY"), ({"tts": "cartesia"}, "CARTESIA_API_KEY")],
)
def test_cloud_service_without_key_names_the_variable(kwargs, variable):
    with pytest.raises(MissingKeyError, match=variable):
        choose_services(environ={}, **kwargs)


def test_llm_base_url_uses_the_openai_client_without_a_key():
    choice = choose_services(llm_base_url="http://127.0.0.1:11434/v1", llm_model="llama3", environ={})
    assert (choice.llm, choice.llm_base_url, choice.llm_model) == ("openai", "http://127.0.0.1:11434/v1", "llama3")


def test_unknown_choice_is_named():
    with pytest.raises(ValueError, match="'vosk'"):
        choose_services(stt="vosk", environ={})


def test_cloud_services_are_built_from_keys():
    from pipecat.services.cartesia.tts import CartesiaTTSService
    from pipecat.services.deepgram.stt import DeepgramSTTService
    from pipecat.services.openai.llm import OpenAILLMService

    from bot.services import create_llm, create_stt, create_tts

    choice = choose_services(environ=KEYS)
    assert isinstance(create_stt(choice, KEYS), DeepgramSTTService)
    assert isinstance(create_llm(choice, KEYS), OpenAILLMService)
    assert isinstance(create_tts(choice, KEYS), CartesiaTTSService)


def test_run_py_exits_naming_the_missing_key(monkeypatch):
    import run

    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(run, "load_dotenv", lambda **kw: None)
    with pytest.raises(SystemExit, match="OPENAI_API_KEY"):
        run.main(["--llm", "openai"])


def test_local_transport_without_a_sound_card_exits_naming_it(monkeypatch):
    """This CI machine has no sound card: --transport local stops with a clear message."""
    import pyaudio

    import run

    monkeypatch.setattr(run, "load_dotenv", lambda **kw: None)
    monkeypatch.setattr(run.asyncio, "run", lambda coro: pytest.fail("the bot ran"))

    class NoDevices:
        def get_default_input_device_info(self):
            raise OSError("No Default Input Device Available")

        def get_default_output_device_info(self):
            raise OSError("No Default Output Device Available")

        def terminate(self):
            pass

    monkeypatch.setattr(pyaudio, "PyAudio", NoDevices)
    with pytest.raises(SystemExit, match="needs a microphone"):
        run.main(["--transport", "local", "--stt", "pocketsphinx", "--llm-base-url", "http://127.0.0.1:9/v1", "--tts", "piper"])
