"""`mmcli encoders`: every registered encoder, its width without loading weights, its extra."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import invoke

from mmcli import encoders


def test_lists_every_encoder_as_json():
    result = invoke("encoders", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    rows = json.loads(result.stdout)["encoders"]
    assert [(r["modality"], r["name"]) for r in rows] == [
        (s.modality, s.name) for s in encoders.REGISTRY
    ]
    by_name = {r["name"]: r for r in rows}
    assert by_name["efficientnet-lite0"]["dim"] == 1280
    assert by_name["minilm"]["dim"] == 384 and by_name["resemblyzer"]["dim"] == 256
    assert by_name["stats"]["extra"] is None and by_name["minilm"]["extra"] == "pretrained"
    assert by_name["tfidf"]["dim"] is None and "2048" in by_name["tfidf"]["dim_note"]
    assert all(r["installed"] == (r["missing"] == []) for r in rows)


@pytest.mark.parametrize("spec", [s for s in encoders.REGISTRY if s.dim], ids=lambda s: s.name)
def test_declared_width_is_the_encoders_width(spec):
    if spec.missing():
        pytest.skip("the pretrained extra is not installed")
    options = {"sample_rate": 16000} if spec.modality == "audio" else {}
    # Creating an encoder loads no weights (they load on the first transform).
    assert encoders.create(spec.modality, spec.name, **options).dim == spec.dim


def test_table_and_modality_filter():
    table = invoke("encoders")
    assert table.exit_code == 0
    for spec in encoders.REGISTRY:
        assert spec.name in table.stdout
    only = invoke("encoders", "--modality", "audio", "--json")
    assert {r["modality"] for r in json.loads(only.stdout)["encoders"]} == {"audio"}
    bad = invoke("encoders", "--modality", "smell")
    assert bad.exit_code == 2 and "choose one of" in bad.stderr


@pytest.mark.parametrize("args", [["encoders"], ["encoders", "--json"], ["--help"]])
def test_listing_loads_no_torch(args):
    code = (
        "import sys, runpy, json\n"
        f"sys.argv = ['mmcli', *{args!r}]\n"
        "try:\n    runpy.run_module('mmcli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = ('torch', 'onnxruntime', 'tokenizers', 'numpy', 'librosa')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
