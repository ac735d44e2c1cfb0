"""Reading manifests (CSV, Parquet, JSONL) and writing tables.

Every cell comes back as a Python object with ``None`` for missing. CSV cells stay
strings: ``NA``, ``None`` or ``null`` in a text or path column are data, never
silently turned into missing values (pandas' default would).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from mmcli.errors import DataError, MissingInputError, UsageError

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def table_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"{path}: unknown table format {path.suffix!r}",
            hint=f"use one of {', '.join(sorted(FORMATS))}",
        )
    return fmt


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a manifest into a DataFrame of object columns, missing cells as None."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: no such file")
    fmt = table_format(path)
    try:
        if fmt in ("csv", "tsv"):
            df = pd.read_csv(
                path,
                sep="\t" if fmt == "tsv" else ",",
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                encoding="utf-8",
            )
            # One column at a time: a whole-frame conversion holds several copies at once;
            # one frame built at the end: setting columns one by one is quadratic in them.
            columns = {}
            for position in range(df.shape[1]):
                values = df.iloc[:, position].to_numpy(dtype=object)
                values[values == ""] = None
                columns[position] = values
            names = list(df.columns)
            del df
            df = pd.DataFrame(columns, dtype=object)
            df.columns = names
        elif fmt == "parquet":
            df = pd.read_parquet(path)
        else:
            df = _read_jsonl(path)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})",
            hint="re-save the file as UTF-8",
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise DataError(f"{path}: cannot parse as {fmt}: {str(exc).splitlines()[0]}") from None
    if len(df.columns) == 0:
        raise DataError(f"{path}: no columns")
    df.columns = [str(c) for c in df.columns]
    dupes = sorted(c for c, n in Counter(df.columns).items() if n > 1)
    if dupes:
        raise DataError(f"{path}: duplicate column names {dupes}")
    if fmt in ("csv", "tsv"):
        return df  # already object columns with None for missing
    # One representation of "missing" whatever the format: None.
    df = df.astype(object)
    return df.where(pd.notna(df), None).reset_index(drop=True)


#: Lone UTF-16 surrogates, which JSON's ``\\udXXX`` escapes can produce and no UTF-8 file
#: (nor Parquet) can hold.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _read_jsonl(path: Path) -> pd.DataFrame:
    """One JSON object per line (blank lines skipped), keys in order of first appearance.

    A string holding a lone surrogate is read with U+FFFD in its place: written anywhere
    later (Parquet, UTF-8) it would fail, and a path holding one names no file anyway.
    """
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise DataError(
                    f"{path}: line {number} is not JSON ({type(exc).__name__})"
                ) from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {number} is not a JSON object")
            rows.append({str(k): _valid_text(v) for k, v in row.items()})
    if not rows:
        raise pd.errors.EmptyDataError
    return pd.DataFrame.from_records(rows)


def _valid_text(value: object) -> object:
    if isinstance(value, str) and not value.isascii():
        return _LONE_SURROGATE.sub("\ufffd", value)
    return value


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write a table in the format its extension names; CSV cells that a spreadsheet would
    run as formulas are prefixed with a quote."""
    path = Path(path)
    fmt = table_format(path)
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        write_csv(df, path, sep="\t" if fmt == "tsv" else ",")


def write_csv(df: pd.DataFrame, target: Any, sep: str = ",") -> None:
    """CSV to a path or an open text stream (``sys.stdout``), formula-like cells quoted."""
    safe = df.map(_neutralise) if len(df) else df
    safe.to_csv(target, index=False, sep=sep)


def read_stdin_table(scratch: Path) -> pd.DataFrame:
    """A table piped in on stdin: JSONL when it starts with ``{``, else CSV. It is spooled
    to ``scratch`` first and read as that file is (the same checks, any size)."""
    import shutil
    import sys

    if sys.stdin.isatty():  # waiting for a person to type a table is never what was meant
        raise UsageError(
            "TABLE - reads the table from stdin, which is a terminal here",
            hint="pipe one in: `... | mmcli predict MODEL - ...` or `< rows.csv`",
        )
    spool = scratch / "stdin"
    with open(spool, "wb") as f:
        shutil.copyfileobj(sys.stdin.buffer, f)
    with open(spool, "rb") as f:
        head = f.read(4096).lstrip()
    named = spool.rename(scratch / ("stdin.jsonl" if head.startswith(b"{") else "stdin.csv"))
    try:
        return read_table(named)
    except (DataError, MissingInputError) as exc:
        raise type(exc)(exc.message.replace(str(named), "stdin"), hint=exc.hint) from None


def _neutralise(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
