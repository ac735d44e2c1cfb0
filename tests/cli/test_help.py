"""Every command has help; `mmcli --help` loads no heavy library; the installed script runs."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from conftest import invoke

from mmcli import __version__
from mmcli.cli import COMMANDS, _help, app

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


def test_top_help_groups_commands_with_their_whole_first_sentence():
    text = invoke("--help").stdout
    sections = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert sections[-5:] == [
        "Pipeline stages:",
        "Choosing a model:",
        "Using a model:",
        "Running and checking the chain:",
        "Tools:",
    ]
    listed = [name for _, names in _help.SECTIONS for name in names]
    assert sorted(listed) == sorted(name for name, _ in COMMANDS)
    commands = text.split("Pipeline stages:")[1]
    assert "..." not in commands  # no first sentence cut short
    assert "--install-completion" in text


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_help_shows_no_python_types_and_ends_with_examples(name):
    text = invoke(name, "--help").stdout
    assert not re.search(r"<(str|int|float|path|file|dir)>", text), text
    examples = text.split("Examples:")[1].split()
    assert examples.count("mmcli") == len(_help.EXAMPLES[name]) >= 1


@pytest.mark.parametrize("example", [e for examples in _help.EXAMPLES.values() for e in examples])
def test_every_example_parses(example):
    """Each example's flags exist and its values have the right shape (nothing runs)."""
    name, *args = shlex.split(example)[1:]
    command = typer.main.get_command(app).get_command(None, name)
    # make_context parses every flag and argument; --help exits before any work.
    command.make_context(name, args, resilient_parsing=False)


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_workers_is_spelled_the_same_everywhere(name):
    text = invoke(name, "--help").stdout
    if "--workers" in text:
        assert "-j, --workers N" in text and "results do not depend on it" in text
