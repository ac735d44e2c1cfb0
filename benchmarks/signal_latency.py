"""How long a stage takes to end after SIGTERM or SIGINT arrives in the middle of a
decode, over many tries (the goal: under 2 s every time, exit 143 / 130, nothing left).

    python benchmarks/signal_latency.py DATA_DIR/manifest.csv [--tries 20] [--workers 2]
        [--busy]

Each try starts `mmcli preprocess --force` with decoding slowed to 60 s per image (a hook
on PYTHONPATH, as tests/reliability/test_signals.py does), waits a random 0.2-3 s after
decoding begins, sends the signal (alternating SIGTERM and SIGINT) and times the exit.
``--busy`` keeps one core busy in a neighbour process meanwhile.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOOK = """\
import os, time
if os.environ.get("MMCLI_TEST_SLOW_DECODE"):
    from mmcli.stages import media
    _real = media.load_image
    def _slow(*args, **kwargs):
        time.sleep(float(os.environ["MMCLI_TEST_SLOW_DECODE"]))
        return _real(*args, **kwargs)
    media.load_image = _slow
"""


def _spin() -> None:
    while True:
        pass


def one_try(manifest: Path, folder: Path, workers: int, sig: int) -> tuple[float, int, bool]:
    out = folder / "prep"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder / "hooks"), os.environ.get("PYTHONPATH", "")]),
        "MMCLI_TEST_SLOW_DECODE": "60",
    }
    cmd = [sys.executable, "-m", "mmcli", "preprocess", str(manifest), "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--workers", str(workers), "--force", "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    while not list(folder.glob(".prep.tmp-*/arrays")):
        if proc.poll() is not None:
            raise SystemExit(f"preprocess ended before decoding: {proc.stderr.read()}")
        time.sleep(0.02)
    time.sleep(random.uniform(0.2, 3.0))
    sent = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=300)
    took = time.monotonic() - sent
    clean = not out.exists() and not list(folder.glob(".prep.tmp-*"))
    return took, proc.returncode, clean


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--busy", action="store_true")
    args = parser.parse_args()
    neighbour = multiprocessing.Process(target=_spin, daemon=True) if args.busy else None
    if neighbour:
        neighbour.start()
    times, bad = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "hooks").mkdir()
        (folder / "hooks" / "sitecustomize.py").write_text(HOOK)
        for i in range(args.tries):
            sig = signal.SIGTERM if i % 2 == 0 else signal.SIGINT
            took, code, clean = one_try(args.manifest.resolve(), folder, args.workers, sig)
            expected = 128 + sig
            ok = code == expected and clean and took < 2.0
            bad += not ok
            times.append(took)
            print(
                f"try {i + 1:2d} {signal.Signals(sig).name:7s} exit {code} "
                f"{took:5.2f} s {'clean' if clean else 'LEFT FILES'} {'' if ok else 'FAIL'}"
            )
    if neighbour:
        neighbour.terminate()
    print(
        f"{args.tries} tries, workers {args.workers}{', one busy core' if args.busy else ''}: "
        f"median {statistics.median(times):.2f} s, max {max(times):.2f} s, failures {bad}"
    )


if __name__ == "__main__":
    main()
