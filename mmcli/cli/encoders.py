"""mmcli encoders"""

from __future__ import annotations

from typing import Annotated

import typer

from mmcli.cli._common import DebugOpt, JsonOpt, execute


def command(
    modality: Annotated[
        str | None,
        typer.Option(
            help="Only this modality: image, audio, text, number or category.",
            metavar="MODALITY",
        ),
    ] = None,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List the encoders each modality can use: output width, and whether an extra is needed and installed."""

    def action(progress):  # type: ignore[no-untyped-def]
        from mmcli import encoders
        from mmcli.errors import UsageError

        rows = encoders.catalogue()
        if modality is not None:
            known = sorted({r["modality"] for r in rows} | {"video"})
            if modality not in known:
                raise UsageError(f"--modality {modality!r}: choose one of {', '.join(known)}")
            rows = [r for r in rows if r["modality"] == modality]
        return {
            "encoders": rows,
            "install_extra": encoders.INSTALL_HINT,
            "video": "frames through any image encoder, pooled over time; soundtrack as audio",
        }

    summary = execute("encoders", action, json_out=json_out, quiet=True, debug=debug)
    if json_out:
        return
    header = ("modality", "encoder", "width", "extra", "installed", "what it computes")
    lines = [header]
    for r in summary["encoders"]:
        width = str(r["dim"]) if r["dim"] is not None else r["dim_note"].split(":")[0]
        lines.append(
            (
                r["modality"],
                r["name"] + (" (default)" if r["default"] else ""),
                width,
                r["extra"] or "-",
                "yes" if r["installed"] else "no",
                r["summary"],
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines if len(lines) > 1 else []:
        print(
            "  ".join(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)) + "  " + line[-1]
        )
    if modality in (None, "video"):
        if len(lines) > 1:
            print()
        print(
            "video: the frames go through any image encoder (--video, default stats), pooled"
            " over time (--video-pool); the soundtrack through the --audio encoder."
        )
    if any(not r["installed"] for r in summary["encoders"]):
        print(f"\nEncoders marked 'no' need the extra: {summary['install_extra']}")
