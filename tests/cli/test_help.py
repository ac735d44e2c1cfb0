"""Every command has help; `mmcli --help` loads no heavy library; the installed script runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import invoke

from mmcli import __version__
from mmcli.cli import COMMANDS

HEAVY = ("torch", "librosa", "pandas", "sklearn", "numpy", "PIL", "matplotlib")


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_every_command_has_help(name):
    result = invoke(name, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.stdout and len(result.stdout) > 200
    function = dict(COMMANDS)[name]
    assert function.__doc__ and function.__doc__.strip()


@pytest.mark.parametrize(
    "args", [["--help"], ["preprocess", "--help"], ["train", "--help"], ["evaluate", "--help"]]
)
def test_help_imports_nothing_heavy(args):
    code = (
        "import sys, runpy, json\n"
        f"sys.argv = ['mmcli', *{args!r}]\n"
        "try:\n    runpy.run_module('mmcli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"mmcli {__version__}"


def test_installed_script_runs_and_maps_errors(tmp_path):
    script = Path(sys.executable).parent / "mmcli"
    script = str(script) if script.exists() else shutil.which("mmcli")
    assert script, "the mmcli console script is not installed"
    ok = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "preprocess" in ok.stdout
    missing = subprocess.run(
        [script, "inspect", str(tmp_path / "nothing")], capture_output=True, text=True
    )
    assert missing.returncode == 4
    assert missing.stdout == "" and "no such artifact" in missing.stderr
    assert "Traceback" not in missing.stderr
    module = subprocess.run(
        [sys.executable, "-m", "mmcli", "--version"],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert module.returncode == 0 and __version__ in module.stdout


def test_unknown_flag_is_a_usage_error():
    result = invoke("preprocess", "x.csv", "--no-such-flag")
    assert result.exit_code == 2
