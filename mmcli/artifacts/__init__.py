"""Artifacts: folders published atomically, recorded in mmcli.json, identified by content."""

from mmcli.artifacts.locks import locked, reading
from mmcli.artifacts.publish import Builder, exclusive
from mmcli.artifacts.record import RECORD_NAME, Artifact, cache_key, load, read_record

__all__ = [
    "RECORD_NAME",
    "Artifact",
    "Builder",
    "cache_key",
    "exclusive",
    "load",
    "locked",
    "read_record",
    "reading",
]
