"""mmcli from Python (a notebook, a script): the same stages, checks and artifacts as
the command line, which calls ``run_stage`` too.

    from mmcli import api

    api.run_stage("preprocess", manifest="sample_data/manifest.csv", out="work/prep")
    api.run_stage("extract-features", prep="work/prep", out="work/feats")
    api.run_stage("fuse", feats="work/feats", out="work/fused")
    api.run_stage("train", data="work/fused", out="work/model", epochs=50)
    summary = api.run_stage("evaluate", model="work/model", data="work/fused", out="work/eval")

    model = api.load("work/model")          # an Artifact: .record, .table(), .json(), .array()
    predictions = api.predict("work/model", new_rows_df, data_root="sample_data")

Keyword arguments are a stage's parameters, named as its config keys (``image_size``;
``image-size`` works too). A bad value raises ``mmcli.errors.UsageError``, bad data
``DataError``; each has ``.message``, ``.hint`` and ``.exit_code``. Nothing here
prints or touches matplotlib's global state (figures are drawn without pyplot).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmcli.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from mmcli.artifacts import Artifact
    from mmcli.stages import Progress

#: Each stage: its config model (in mmcli.config) and its module (in mmcli.stages).
STAGES = {
    "preprocess": ("PreprocessConfig", "preprocess"),
    "extract-features": ("ExtractConfig", "extract_features"),
    "fuse": ("FuseConfig", "fuse"),
    "train": ("TrainConfig", "train"),
    "tune": ("TuneConfig", "tune"),
    "evaluate": ("EvaluateConfig", "evaluate"),
    "merge": ("MergeConfig", "merge"),
    "predict": ("PredictConfig", "predict"),
}


def config(stage: str, config_file: Path | None = None, **params: Any) -> Any:
    """The validated config of ``stage``: defaults < ``config_file`` < ``params``."""
    from mmcli import config as cfgs
    from mmcli.messages import did_you_mean

    if stage not in STAGES:
        raise UsageError(f"no stage {stage!r}{did_you_mean(stage, STAGES)}")
    model = getattr(cfgs, STAGES[stage][0])
    values = {key.replace("-", "_"): value for key, value in params.items()}
    return cfgs.build(model, values, config_file)


def run(
    stage: str, cfg: Any, progress: Progress | None = None, force: bool = False
) -> dict[str, Any]:
    """Run ``stage`` with a config ``config`` made; returns its summary."""
    import importlib

    from mmcli.stages import no_progress

    module = importlib.import_module(f"mmcli.stages.{STAGES[stage][1]}")
    kwargs: dict[str, Any] = {"progress": progress or no_progress}
    if stage != "predict":  # predict has no up-to-date check to force past
        kwargs["force"] = force
    return module.run(cfg, **kwargs)  # type: ignore[no-any-return]


def run_stage(
    stage: str,
    *,
    config_file: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Run one stage (``preprocess`` ... ``evaluate``, ``merge``, ``predict``) and return
    its summary: what the command prints, as a dict. An up-to-date stage does nothing."""
    return run(stage, config(stage, config_file, **params), progress, force)


def load(path: str | Path) -> Artifact:
    """An artifact, its record checked (``.record``, ``.table(name)``, ``.json(name)``)."""
    from mmcli import artifacts

    return artifacts.load(path)


def predict(
    model: str | Path, rows: pd.DataFrame, data_root: str | Path | None = None, **params: Any
) -> pd.DataFrame:
    """Predictions for the rows of a DataFrame, as ``mmcli predict`` writes them (``row``,
    ``id``, ``prediction``, ``prob_<class>``, ``error``, ``warnings``). File paths in the
    rows resolve against ``data_root`` (default: the current folder)."""
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="mmcli-api-") as scratch:
        table, out = Path(scratch) / "rows.parquet", Path(scratch) / "predictions.parquet"
        rows.to_parquet(table, index=False)
        cfg = config(
            "predict",
            model=Path(model),
            table=table,
            out=out,
            data_root=Path(data_root) if data_root is not None else Path.cwd(),
            **params,
        )
        run("predict", cfg)
        return pd.read_parquet(out)
