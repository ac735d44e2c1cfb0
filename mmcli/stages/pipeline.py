"""run: the whole chain from one pipeline file, skipping the stages that are up to date.

A pipeline file (YAML or TOML) names the manifest and an output folder, and holds one
section per stage whose keys are that stage's ``--config`` keys::

    manifest: sample_data/manifest.csv
    out: work
    preprocess: {image-size: 64}
    train: {model: mlp, epochs: 100}
    evaluate: {fail-under: [macro_f1=0.5]}

Paths are relative to the pipeline file. With ``train: {model: e2e}`` the chain skips
extract-features and fuse and trains on the preprocess artifact. A pretrained image
encoder named in extract-features sets preprocess's image size to the one it reads,
unless preprocess sets its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmcli import config as cfgs
from mmcli.errors import UsageError
from mmcli.messages import did_you_mean
from mmcli.metrics import check_gate_names, parse_gates
from mmcli.stages import Progress, no_progress

STAGES = ("preprocess", "extract-features", "fuse", "train", "evaluate")
_CLASSES = {
    "preprocess": cfgs.PreprocessConfig,
    "extract-features": cfgs.ExtractConfig,
    "fuse": cfgs.FuseConfig,
    "train": cfgs.TrainConfig,
    "evaluate": cfgs.EvaluateConfig,
}


def plan(path: Path) -> list[tuple[str, Any]]:
    """(stage, config) for every stage of the pipeline file, all validated up front."""
    raw = cfgs.read_config_file(path)
    spec = {k.replace("_", "-") if k.replace("_", "-") in STAGES else k: v for k, v in raw.items()}
    unknown = sorted(set(spec) - {"manifest", "out", *STAGES})
    if unknown:
        raise UsageError(
            f"{path}: unknown key {unknown[0]!r}"
            + did_you_mean(unknown[0], ["manifest", "out", *STAGES]),
            hint=f"a pipeline has manifest, out and sections {', '.join(STAGES)}",
        )
    if "manifest" not in spec:
        raise UsageError(f"{path}: no manifest")
    base = Path(os.path.normpath(path.parent))
    out = Path(os.path.normpath(base / str(spec.get("out", "work"))))
    sections = {s: _section(path, s, spec.get(s) or {}) for s in STAGES}
    _encoder_image_size(sections)
    e2e = sections["train"].get("model") == "e2e"
    data = out / ("prep" if e2e else "fused")
    paths: dict[str, dict[str, Any]] = {
        "preprocess": {
            "manifest": Path(os.path.normpath(base / str(spec["manifest"]))),
            "out": out / "prep",
        },
        "extract-features": {"prep": out / "prep", "out": out / "feats"},
        "fuse": {"feats": out / "feats", "out": out / "fused"},
        "train": {"data": data, "out": out / "model"},
        "evaluate": {"model": out / "model", "data": data, "out": out / "eval"},
    }
    if "data_root" in sections["preprocess"]:
        sections["preprocess"]["data_root"] = base / str(sections["preprocess"]["data_root"])
    stages = [s for s in STAGES if not (e2e and s in ("extract-features", "fuse"))]
    configs, problems = [], []
    for stage in stages:
        try:
            cfg = cfgs.build(_CLASSES[stage], {**sections[stage], **paths[stage]}, None)
            if stage == "evaluate":  # a typo in a gate is found now, not after training
                task = sections["preprocess"].get("task", "auto")
                task = None if task == "auto" else task
                check_gate_names(parse_gates(cfg.fail_under), task)
            configs.append((stage, cfg))
        except UsageError as exc:
            problems.append(f"{stage}: {exc.message}")
    if problems:
        raise UsageError(f"{path}: " + "; ".join(problems))
    return configs


def _encoder_image_size(sections: dict[str, dict[str, Any]]) -> None:
    """Images stored at the size the named image (or video) encoder reads, unless the
    preprocess section sets its own: ``extract-features: {image: efficientnet-lite0}``
    alone preprocesses at 224 px, not the 64 px default the network would see upscaled."""
    from mmcli import encoders

    if "image_size" in sections["preprocess"]:
        return
    sizes = []
    for key in ("image", "video"):
        name = sections["extract-features"].get(key)
        known = isinstance(name, str) and name in encoders.names("image")
        if known and (size := encoders.spec("image", name).input_size):
            sizes.append(size)
    if sizes:
        sections["preprocess"]["image_size"] = max(sizes)


def _section(path: Path, stage: str, values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise UsageError(f"{path}: section {stage!r} must be a mapping of keys to values")
    section = {str(k).replace("-", "_"): v for k, v in values.items()}
    fixed = sorted(set(section) & (set(_CLASSES[stage].PATH_FIELDS) - {"data_root"}))
    if fixed:
        raise UsageError(
            f"{path}: {stage} sets {fixed}, which the pipeline decides",
            hint="set manifest and out at the top of the file",
        )
    return section


def run(
    path: Path,
    *,
    dry_run: bool = False,
    until: str | None = None,
    force: bool = False,
    progress: Progress = no_progress,
    on_stage: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run (or with ``dry_run`` only plan) the chain; one summary per stage, each also
    given to ``on_stage`` as soon as its stage ends (the command prints it then). Progress
    tasks are named after their stage (``preprocess: decoding media``)."""
    from mmcli.stages import evaluate, extract_features, fuse, preprocess, train

    modules = {
        "preprocess": preprocess,
        "extract-features": extract_features,
        "fuse": fuse,
        "train": train,
        "evaluate": evaluate,
    }
    if until is not None and until not in STAGES:
        raise UsageError(f"--until {until!r}: choose one of {', '.join(STAGES)}")
    results: list[dict[str, Any]] = []
    upstream_changes = False
    for stage, cfg in plan(path):
        if dry_run and upstream_changes:
            results.append(
                {
                    "stage": stage,
                    "out": str(cfg.out),
                    "status": "would-build",
                    "why": "its upstream will be rebuilt",
                }
            )
        else:

            def staged(task: str, done: int, total: int | None, stage: str = stage) -> None:
                progress(f"{stage}: {task}", done, total)

            summary = modules[stage].run(cfg, progress=staged, force=force, dry_run=dry_run)
            upstream_changes = upstream_changes or summary["status"] == "would-build"
            results.append(summary)
        if on_stage is not None:
            on_stage(results[-1])
        if stage == until:
            break
    gates = next((r["gates"] for r in results if r.get("gates")), None)
    return {
        "stage": "run",
        "pipeline": str(path),
        "dry_run": dry_run,
        "stages": results,
        "gates": gates,
    }
