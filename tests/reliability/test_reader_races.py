"""A reader racing a writer: `fuse` runs while `extract-features --force` republishes its
input. Every fuse either reads one whole version of its input (its X.npy and its record's
upstream fingerprint both from that version) or exits 7 (locked); never a mix."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

VERSIONS = ("tfidf", "hashing")


def _mmcli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mmcli", *map(str, args), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _manifest(path: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(3)
    words = ["red", "green", "blue", "round", "square", "tiny", "huge", "soft"]
    lines = ["label,text,size,shop"]
    for i in range(n):
        label = "ab"[i % 2]
        text = " ".join(rng.choice(words, size=4)) + (" alpha" if label == "a" else " beta")
        lines.append(f"{label},{text},{rng.normal(i % 2, 1):.4f},{'xyz'[i % 3]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fuse_never_reads_a_half_republished_input(tmp_path):
    manifest = _manifest(tmp_path / "m.csv")
    work = tmp_path / "work"
    assert _mmcli("preprocess", manifest, "--out", work / "prep").returncode == 0
    # Each version of feats, and the fuse output it gives (same bytes every time).
    expected = {}
    for text in VERSIONS:
        built = _mmcli("extract-features", work / "prep", "--out", work / "feats", "--text", text)
        assert built.returncode == 0, built.stderr
        fingerprint = json.loads((work / "feats" / "mmcli.json").read_text())["fingerprint"]
        assert _mmcli("fuse", work / "feats", "--out", work / f"ref-{text}").returncode == 0
        expected[fingerprint] = _sha(work / f"ref-{text}" / "X.npy")
    assert len(expected) == 2 and len(set(expected.values())) == 2

    writes: list[int] = []
    reads: list[tuple[int, str | None, str | None]] = []

    def writer() -> None:
        for i in range(10):
            text = VERSIONS[i % 2]
            args = ("--out", work / "feats", "--text", text, "--force")
            writes.append(_mmcli("extract-features", work / "prep", *args).returncode)

    def reader() -> None:
        for i in range(30):
            out = work / f"fused-{i}"
            code = _mmcli("fuse", work / "feats", "--out", out).returncode
            if code == 0:
                upstream = json.loads((out / "mmcli.json").read_text())["inputs"]["upstream"]
                reads.append((code, upstream["fingerprint"], _sha(out / "X.npy")))
            else:
                reads.append((code, None, None))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(writes) <= {0, 7}, writes
    assert {code for code, _, _ in reads} <= {0, 7}, reads
    done = [(fp, sha) for code, fp, sha in reads if code == 0]
    assert done, "no reader run succeeded"
    for fingerprint, sha in done:
        assert expected.get(fingerprint) == sha, "a fuse output matches no whole input version"
    assert not any(p.name.startswith(".fused-") and ".tmp-" in p.name for p in work.iterdir())
    assert os.path.isdir(work / "feats")
