#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine: system packages, a virtual environment in
# .venv, and this project with its test and offline extras. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# portaudio19-dev: PyAudio for --transport local.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq portaudio19-dev >/dev/null

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[test,offline]"
echo "Set up. Run the bot: .venv/bin/python run.py    Run the tests: .venv/bin/python -m pytest"
