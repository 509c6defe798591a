#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine: system packages, a virtual environment in
# .venv, and this project with its test and offline extras. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# portaudio19-dev: PyAudio for --transport local. chromium, iproute2: the browser
# test (tests/e2e). npm: builds the browser client. espeak-ng, sox: regenerate the
# synthetic test clips (tests/audio/make_clips.py, tests/audio/open/make_clips.py).
# pulseaudio, pulseaudio-utils, libasound2-plugins: the virtual sound card of
# tests/test_local_soundcard.py (PyAudio -> ALSA -> a private PulseAudio server).
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq portaudio19-dev chromium iproute2 espeak-ng sox \
    pulseaudio pulseaudio-utils libasound2-plugins >/dev/null
command -v npm >/dev/null || $SUDO apt-get install -y -qq npm >/dev/null

python3 -m venv .venv
# llama-cpp-python (the offline LLM) builds from source here: build it for generic
# x86-64 with AVX2, not for the build machine's own CPU (GGML_NATIVE), whose build
# died in libggml-cpu with a general protection fault on a CPU with AMX (2026-12-02).
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[bot,test,offline,bench,train]"
# The browser client served at /client (client/dist), from the committed lockfile.
(cd client && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
echo "Set up. Run the bot: .venv/bin/python run.py    Run the tests: .venv/bin/python -m pytest"
