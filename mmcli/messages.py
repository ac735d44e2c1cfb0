"""Plain wording for what the validation library and typos produce.

pydantic checks configs and records; its messages ("Field required", "Extra inputs are
not permitted", "Input should be ...") are written for programmers. ``problem`` turns
one of its errors into the words mmcli prints, with the nearest valid key for a typo.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from typing import Any


def nearest(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to a mistyped ``name`` (difflib's ratio 0.6 or more), if any."""
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the nearest choice, or nothing."""
    match = nearest(name, choices)
    return f"; did you mean {match!r}?" if match else ""


def key_name(key: str) -> str:
    """A parameter as the user writes it: a flag's name, with dashes."""
    return key.replace("_", "-")


def problem(err: dict[str, Any], keys: Iterable[str] = (), dashes: bool = True) -> str:
    """One pydantic error as ``"where: what"``; ``keys`` are the valid keys (for typos).
    With ``dashes`` keys are shown as flags are written (``image-size``)."""
    loc = [key_name(str(p)) if dashes else str(p) for p in err.get("loc", ())]
    where = ".".join(loc) or "the config"
    kind = err.get("type", "")
    if kind == "missing":
        return f"{where}: required, and not given"
    if kind == "extra_forbidden":
        known = sorted(key_name(k) if dashes else k for k in keys)
        return f"{where}: unknown key{did_you_mean(loc[-1], known)}" if loc else where
    message = str(err.get("msg", "is not valid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    message = message.replace("Input should be", "should be").split(", unable to")[0]
    got = json.dumps(err.get("input"), default=str)
    if len(got) > 60:
        got = got[:57] + "..."
    return f"{where}: {message} (got {got})"
