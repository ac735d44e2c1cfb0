"""A stage's command, made from its config model: every option is declared once, there.

Each field of the stage's config (``mmcli/config.py``) becomes an option or argument:
its name, help, shown default and choices are read from the field, so the help cannot
drift from what the stage validates, and the flags given become the config's values
(None: not given, so the ``--config`` file or the default applies). A field whose shell
spelling is not its type (``--weights image=1,text=0.5``) names a small :class:`Hook`.

The options are built when the command is parsed, not at import: ``mmcli.config``
imports pydantic and builds every model (about 140 ms on its own, 30 ms once Typer has
loaded pydantic for a command's own parsing), and ``mmcli --help`` needs only each
command's docstring.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
from typer.core import TyperCommand
from typer.main import get_command_from_info
from typer.models import CommandInfo

from mmcli.cli._common import (
    ConfigOpt,
    DebugOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    Reporter,
    WaitOpt,
    execute,
)
from mmcli.cli._help import METAVARS, Command

#: The options stage commands share (mmcli/cli/_common.py), by parameter name.
COMMON: dict[str, tuple[Any, Any]] = {
    "config": (ConfigOpt, None),
    "force": (ForceOpt, False),
    "wait": (WaitOpt, False),
    "json_out": (JsonOpt, False),
    "quiet": (QuietOpt, False),
    "debug": (DebugOpt, False),
}

_PLAIN = (str, int, float, Path)


@dataclass(frozen=True)
class Hook:
    """A field typed one way in the shell and another in the config."""

    #: What Typer parses, e.g. ``list[str]`` for a repeatable ``NAME=VALUE`` option.
    annotation: Any
    #: (what was given, the flag's name for messages) -> the config field's value.
    parse: Callable[[Any, str], Any]


@dataclass(frozen=True)
class Option:
    """One config field as the command line sees it."""

    field: str
    flags: tuple[str, ...]
    annotation: Any  # the Typer parameter's full annotation
    default: Any  # inspect.Parameter.empty when required
    hook: Hook | None

    def value(self, given: Any) -> Any:
        if given is None or self.hook is None:
            return given
        return self.hook.parse(given, self.flags[0])


@dataclass(frozen=True)
class Stage:
    """A stage command: which config it builds, which stage it runs, what it shares."""

    name: str
    #: The config model's name in mmcli.config (imported only when the command is parsed).
    config: str
    doc: str
    hooks: Mapping[str, Hook] = field(default_factory=dict)
    common: tuple[str, ...] = tuple(COMMON)
    #: Called with the summary once it is rendered (evaluate's quality gates).
    finish: Callable[[dict[str, Any]], None] | None = None

    def command(self) -> Callable[[], None]:
        """What the app registers: this docstring, and no parameters until it is parsed."""

        def listed() -> None:
            raise AssertionError(f"{self.name} runs through StageCommand")  # pragma: no cover

        listed.__doc__ = self.doc
        listed.stage = self  # type: ignore[attr-defined]
        return listed

    def function(self) -> Callable[..., None]:
        """The command itself: one keyword parameter per option, as Typer reads them."""
        from mmcli import config as cfgs

        model = getattr(cfgs, self.config)
        options = self._options(model)

        def command(**given: Any) -> None:
            def action(progress: Reporter) -> dict[str, Any]:
                flags = {o.field: o.value(given[o.field]) for o in options}
                if "wait" in self.common:
                    flags["wait"] = given["wait"] or None
                cfg = cfgs.build(model, flags, given.get("config"))
                from mmcli import api  # the stage runs as it does from Python

                return api.run(self.name, cfg, progress, given.get("force", False))

            summary = execute(
                self.name,
                action,
                json_out=given["json_out"],
                quiet=given["quiet"],
                debug=given["debug"],
            )
            if self.finish is not None:
                self.finish(summary)

        kw = inspect.Parameter.KEYWORD_ONLY
        params = [
            inspect.Parameter(o.field, kw, annotation=o.annotation, default=o.default)
            for o in options
        ] + [
            inspect.Parameter(name, kw, annotation=COMMON[name][0], default=COMMON[name][1])
            for name in self.common
        ]
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__doc__ = self.doc
        return command

    def _options(self, model: Any) -> list[Option]:
        # Without --config, flags are all there is; with it, the paths (arguments) are
        # still given on the command line, and other required values may be in the file.
        required = "config" not in self.common
        own = model.__dict__.get("__annotations__", {})
        names = sorted(model.model_fields, key=lambda name: name not in own)  # own first
        return [
            _option(name, model.model_fields[name], self.hooks.get(name), required)
            for name in names
            if _is_flag(name, model.model_fields[name])
        ]


class StageCommand(TyperCommand):
    """Listed by its docstring; parsed by the command its config model's fields make."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        return self._built.make_context(info_name, args, parent=parent, **extra)

    @functools.cached_property
    def _built(self) -> Any:
        assert self.callback is not None
        stage: Stage = self.callback.__wrapped__.stage  # type: ignore[attr-defined]
        info = CommandInfo(
            name=self.name,
            cls=Command,
            callback=stage.function(),
            context_settings=self.context_settings,
            epilog=self.epilog,
        )
        return get_command_from_info(
            info, pretty_exceptions_short=True, rich_markup_mode=self.rich_markup_mode
        )


def _is_flag(name: str, info: Any) -> bool:
    """Whether a config field is set on the command line (``wait`` is a shared option)."""
    return name != "wait" and not _extra(info).get("config_only", False)


def _flags_of(name: str, info: Any) -> tuple[str, ...]:
    """The option's spellings: ``--field-name`` unless the field names its own."""
    return tuple(_extra(info).get("flags", [f"--{name.replace('_', '-')}"]))


def _shown_default(info: Any) -> str | None:
    """The default as the help shows it; None when there is nothing worth showing."""
    extra = _extra(info)
    if "default_text" in extra:
        return str(extra["default_text"])
    if info.is_required():
        return None
    value = info.get_default(call_default_factory=True)
    if value is None or value == [] or value == {}:
        return None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)  # how a list option is typed: 16,32,64
    return str(value)


def _choices_of(annotation: Any) -> list[str] | None:
    annotation = _without_none(annotation)
    return [str(c) for c in get_args(annotation)] if get_origin(annotation) is Literal else None


def _option(name: str, info: Any, hook: Hook | None, required: bool) -> Option:
    extra = _extra(info)
    choices = _choices_of(info.annotation)
    if hook is not None:
        cli_type = hook.annotation
    elif choices is not None:
        cli_type = str  # pydantic checks the choice, with every other problem at once
    else:
        cli_type = _without_none(info.annotation)
        if cli_type not in _PLAIN and get_origin(cli_type) is not list:
            raise TypeError(f"{name}: {cli_type} has no shell spelling; give it a Hook")
    placeholder = METAVARS.get(cli_type, "VALUE")
    if cli_type in (int, float, Path):
        cli_type = str  # pydantic converts it, in plain words when it cannot (mmcli.messages)
    help_text = info.description or ""
    shown = _shown_default(info)
    if shown is not None:
        help_text += f" (default: {shown})"
    metavar = extra.get("metavar") or (f"[{'|'.join(choices)}]" if choices else placeholder)
    flags = _flags_of(name, info)
    required = (required or bool(extra.get("argument"))) and info.is_required()
    if extra.get("argument"):
        param: Any = typer.Argument(help=help_text, metavar=extra.get("metavar", name.upper()))
    else:
        param = typer.Option(*flags, help=help_text, metavar=metavar)
    annotation = Annotated[cli_type if required else cli_type | None, param]  # type: ignore[operator]
    default = inspect.Parameter.empty if required else None
    return Option(name, flags, annotation, default, hook)


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _extra(info: Any) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}
