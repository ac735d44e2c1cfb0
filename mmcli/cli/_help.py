"""How ``--help`` reads: commands grouped (pipeline stages, then tools), each command's
whole first sentence, no Python type names beside arguments, and real examples at the
end of every command's help."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

#: The placeholder an option's value shows in --help, by type (no Python type names).
METAVARS = {str: "TEXT", int: "N", float: "NUMBER", Path: "PATH"}

#: ``mmcli --help``'s sections, in order; every command is in one.
SECTIONS = (
    ("Pipeline stages", ("preprocess", "extract-features", "fuse", "train", "evaluate")),
    ("Choosing a model", ("tune",)),
    ("Using a model", ("predict",)),
    ("Running and checking the chain", ("run", "status", "inspect", "compare")),
    ("Tools", ("merge", "encoders")),
)

#: 1-3 examples per command, shown at the end of its --help (every flag in them is
#: parsed by a test; those on work/ run after the README's stages).
EXAMPLES = {
    "preprocess": [
        "mmcli preprocess sample_data/manifest.csv --out work/prep",
        "mmcli preprocess data.parquet --target species --input scan:image --out work/prep",
    ],
    "extract-features": [
        "mmcli extract-features work/prep --out work/feats",
        "mmcli extract-features work/prep --text tfidf --image pixels --out work/feats",
    ],
    "fuse": [
        "mmcli fuse work/feats --out work/fused",
        "mmcli fuse work/feats --method weighted-sum --weights image=2,text=1 --out work/fused",
    ],
    "train": [
        "mmcli train work/fused --out work/model",
        "mmcli train work/fused --fusion gated --epochs 200 --out work/gated",
        "mmcli train work/prep --model e2e --out work/e2e",
    ],
    "tune": [
        "mmcli tune work/fused --trials 20 --out work/tuned",
        "mmcli train work/fused --config work/tuned/best.yaml --out work/model-tuned",
        "mmcli tune work/prep --model e2e --trials 10 --timeout 600 --out work/tuned-e2e",
    ],
    "evaluate": [
        "mmcli evaluate work/model work/fused --out work/eval --fail-under macro_f1=0.5",
        "mmcli evaluate work/model new_labelled.csv --out work/eval-new",
    ],
    "predict": [
        "mmcli predict work/model sample_data/new_rows.csv --out predictions.csv",
        "mmcli predict work/model rows.csv --data-root /data/media --out -",
    ],
    "run": [
        "mmcli run examples/pipeline.yaml --dry-run",
        "mmcli run examples/pipeline.yaml --until train",
    ],
    "status": ["mmcli status work/eval", "mmcli status work/prep work/model --json"],
    "inspect": ["mmcli inspect work/model", "mmcli inspect work/eval --json"],
    "compare": ["mmcli compare work/eval other/eval"],
    "merge": ["mmcli merge work/prep-1 work/prep-2 --out work/prep"],
    "encoders": ["mmcli encoders", "mmcli encoders --json"],
}


def epilog(name: str) -> str | None:
    """The examples block of command ``name``'s help (``\\b``: click keeps the lines)."""
    lines = EXAMPLES.get(name)
    if not lines:
        return None
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


class Group(TyperGroup):
    """``mmcli --help``: the commands in sections, each with its whole first sentence."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed = {name for _, names in SECTIONS for name in names}
        sections = [*SECTIONS]
        others = tuple(n for n in self.list_commands(ctx) if n not in listed)
        if others:  # a command added without a section still shows
            sections.append(("Other commands", others))
        for title, names in sections:
            rows = []
            for name in names:
                cmd = self.get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(limit=300)))
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class _Argument(TyperArgument):
    """An argument shown by its name alone (Typer adds ``<path>``, ``<str>``)."""

    def display_type_rich(self, ctx: click.Context) -> str | None:
        return None


class Command(TyperCommand):
    """A command whose help shows no Python type: arguments by their name, option values
    by a word (``N``, ``NUMBER``, ``TEXT``, ``PATH``) unless they name their own."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _Argument
                param.metavar = param.metavar or (param.name or "").upper()
            elif isinstance(param, TyperOption) and not param.is_flag and not param.metavar:
                described = param.type_descriptor
                if not described.is_choice:
                    param.metavar = METAVARS.get(described.annotation, "VALUE")
