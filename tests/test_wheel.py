"""The built wheel installs one namespaced package and works outside the repository.

Builds the wheel with pip, checks its top-level names and data files, installs it into
a fresh virtualenv in a temporary directory (Pipecat and its base dependencies come
from the package index) and runs a copy of tests/wheel_smoke.py there, from that directory.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
    )
    (path,) = out.glob("pipecat_softack-*.whl")
    return path


def test_wheel_holds_one_namespaced_package_with_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"pipecat_softack"}, top  # no processors/, configs/, bot/, bench/
    for data in ("pipecat_softack/py.typed", "pipecat_softack/configs/en.toml", "pipecat_softack/configs/es.toml",
                 "pipecat_softack/configs/model_en.json"):
        assert data in names, data


def test_wheel_works_in_a_fresh_virtualenv_outside_the_repo(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True)
    smoke = tmp_path / "wheel_smoke.py"  # run from outside the repository
    smoke.write_text((REPO / "tests" / "wheel_smoke.py").read_text())
    result = subprocess.run(
        [str(python), str(smoke)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wheel smoke test passed" in result.stdout
