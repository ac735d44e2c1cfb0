"""What importing mmcli sets in the environment before torch and pyarrow load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "ARROW_DEFAULT_MEMORY_POOL": "system"}


def _after_import(env: dict[str, str]) -> dict[str, str]:
    code = "import json, os, mmcli; print(json.dumps(dict(os.environ)))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_importing_mmcli_sets_its_default_and_a_users_own_setting_wins(name):
    bare = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    assert _after_import(bare)[name] == DEFAULTS[name]
    assert _after_import({**bare, name: "mine"})[name] == "mine"
