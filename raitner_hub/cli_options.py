"""How a stage config becomes ``raitner`` options: one option per dataclass field, ``--config FILE.yaml``.

The machinery behind :mod:`raitner_hub.cli`'s ``@command`` (see that module's docstring for the rules): a
parameter annotated with a config dataclass expands into the field's option (flag, help from the class
docstring, default, choices and completion), and the command receives the built config. Also the one-line
error handling every command shares.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from raitner_hub import config as configs
from raitner_hub.errors import EXTRAS, ConfigError, RaitnerError, missing_extra, require


def _untyped_flags(command, ctx) -> None:
    """A flag takes no value: show none (Typer labels every option with its type, flags as <bool>)."""
    for param in command.get_params(ctx):
        if getattr(param, "is_flag", False):
            param.metavar = ""


class _Group(TyperGroup):
    def format_help(self, ctx, formatter) -> None:
        _untyped_flags(self, ctx)
        super().format_help(ctx, formatter)


# command name -> {parameter name: config class}, for the config expansion, the help and the tests
CONFIGS: dict[str, dict[str, type]] = {}
CONFIG_HELP = "YAML file of settings (the option names with _, e.g. top_k: 64); flags override it."


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


# Optional packages a command always needs (errors.EXTRAS names the extra); others are caught on import.
COMMAND_NEEDS = {
    "train": ("trl", "peft", "accelerate"),
    "annotate": ("openai",),
    "serve": ("gradio",),
    "evaluate": ("matplotlib",),
}


def handles_errors(fn: Callable, needs: tuple[str, ...] = ()) -> Callable:
    """Turn user-fixable errors into one line + exit 1 (never a traceback dump); a missing extra is one too."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            for module in needs:  # before any work (train may hand off to `accelerate launch`)
                require(module)
            return fn(*args, **kwargs)
        except RaitnerError as exc:
            fail(str(exc))
        except ModuleNotFoundError as exc:  # a lazy import of an optional dependency: say which extra
            if (exc.name or "").split(".")[0] not in EXTRAS:
                raise
            fail(str(missing_extra(exc.name or "")))
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


# ---- options from config fields ----


def _spec(field: dataclasses.Field) -> dict[str, Any]:
    return field.metadata.get("cli") or configs.cli()["cli"]


def cli_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of ``cls`` that are command-line options (all but ``hidden`` ones)."""
    return [f for f in dataclasses.fields(cls) if not _spec(f)["hidden"]]


def field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def choices_of(field: dataclasses.Field) -> tuple[str, ...]:
    """The field's closed set (``module:ATTR`` items import that registry now)."""
    out: list[str] = []
    for item in _spec(field)["choices"] or ():
        if ":" in item:
            module, attr = item.split(":")
            out.extend(getattr(importlib.import_module(module), attr))
        else:
            out.append(item)
    return tuple(out)


def _cli_type(cls: type, field: dataclasses.Field) -> tuple[Any, bool]:
    """(the option's value type, repeatable?) from the field's type."""
    spec = _spec(field)
    # (config.py names TeacherSpec for type checkers only: importing teacher.py would slow every command)
    hint = typing.get_type_hints(cls, localns={"TeacherSpec": Any})[field.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    base = args[0] if optional and len(args) == 1 else hint
    if spec["type"] is not None:
        return spec["type"], False
    if typing.get_origin(base) is tuple:
        return typing.get_args(base)[0], True
    return base, False


def cli_value(field: dataclasses.Field, value: Any) -> Any:
    """A parsed CLI value -> the field's value (tuples for repeatable options, inverted flags, parse=)."""
    spec = _spec(field)
    if spec["invert"]:
        return not value
    if spec["parse"] is not None:
        return spec["parse"](value)
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, Path):
        return str(value)
    return value


def _flag(field: dataclasses.Field) -> str:
    return _spec(field)["flag"] or "--" + field.name.replace("_", "-")


def _parameter(cls: type, field: dataclasses.Field, helps: dict[str, str]) -> inspect.Parameter:
    spec = _spec(field)
    value_type, repeatable = _cli_type(cls, field)
    default = field_default(field)
    required = default is dataclasses.MISSING
    text = helps.get(field.name, "").replace("[", "\\[")  # [@revision] is text, not rich markup
    if spec["invert"]:  # the field reads as the positive setting; the flag switches it off
        text = f"Turn off {field.name}: {text[:1].lower()}{text[1:]}"
    if repeatable:
        text += " Repeatable."
    if required:
        text += " Required (here or in --config)."
    names = [n for n in (_flag(field), spec["short"]) if n]
    complete = _completer(field) if spec["choices"] or spec["suggest"] else None
    if spec["invert"]:
        value_type, default = bool, False
    elif required or default is None:
        default = None
    elif repeatable:
        default = list(default)
    annotation = list[value_type] if repeatable else value_type
    if default is None and not spec["invert"]:
        annotation = Optional[annotation]
    if spec["argument"]:
        info = typer.Argument(help=text, show_default=not required, metavar=field.name.upper(), autocompletion=complete)
    else:
        info = typer.Option(
            *names,
            help=text,
            show_default=not required and default is not None and default is not False,
            autocompletion=complete,
        )
    return inspect.Parameter(
        field.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[annotation, info]
    )


def _completer(field: dataclasses.Field) -> Callable[[str], list[str]]:
    """Shell completion of a field's choices (or suggestions), imported only when completing."""

    def complete(incomplete: str) -> list[str]:
        values = choices_of(field) if _spec(field)["choices"] else _spec(field)["suggest"]
        return [v for v in values if v.startswith(incomplete)]

    return complete


class _Command(TyperCommand):
    """Typer's command, plus choices listed in --help (resolved only when help is shown) and flags
    without a ``<bool>`` type label."""

    def format_help(self, ctx, formatter) -> None:
        _untyped_flags(self, ctx)
        fields = {f.name: f for cls in CONFIGS.get(self.name, {}).values() for f in cli_fields(cls)}
        for param in self.get_params(ctx):
            field = fields.get(param.name)
            if field is not None and _spec(field)["choices"] and "One of:" not in (param.help or ""):
                param.help = f"{param.help} One of: {', '.join(choices_of(field))}."
        super().format_help(ctx, formatter)


def _read_settings(path: Path | None, classes: dict[str, type]) -> dict[str, Any]:
    if path is None:
        return {}
    data = configs.read_yaml(path)
    known = {f.name for cls in classes.values() for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")
    return data


def _build_configs(
    ctx: typer.Context, classes: dict[str, type], values: dict[str, Any], settings: dict[str, Any], where: str
) -> dict[str, Any]:
    """One config per class: YAML settings, then the flags given on the command line (or the environment)."""
    built = {}
    for pname, cls in classes.items():
        data = {f.name: settings[f.name] for f in dataclasses.fields(cls) if f.name in settings}
        for field in cli_fields(cls):
            value = values.pop(field.name)
            source = ctx.get_parameter_source(field.name)
            if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT", "PROMPT"):
                data[field.name] = cli_value(field, value)
            if field_default(field) is dataclasses.MISSING and data.get(field.name) is None:
                what = "argument" if _spec(field)["argument"] else "option"
                name = field.name.upper() if _spec(field)["argument"] else _flag(field)
                ctx.fail(f"Missing {what} '{name}' (give it, or set {field.name}: in --config).")
        built[pname] = configs.from_dict(cls, data, where=where)
    return built


def config_command(app: typer.Typer, name: str, *, panel: str, **kwargs: Any) -> Callable:
    """``app.command`` + config expansion + error handling + help panel, in one decorator.

    Parameters annotated with a config class become that class's options (see the module docstring);
    the function receives the built configs under those parameter names.
    """

    def decorate(fn: Callable) -> Callable:
        hints = typing.get_type_hints(fn, include_extras=True)
        signature = inspect.signature(fn)
        classes = {p: hints[p] for p in signature.parameters if dataclasses.is_dataclass(hints.get(p))}
        CONFIGS[name] = classes
        if not classes:
            return app.command(name, rich_help_panel=panel, cls=_Command, **kwargs)(
                handles_errors(fn, COMMAND_NEEDS.get(name, ()))
            )
        params = [
            inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
            inspect.Parameter(
                "config",
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[Path | None, typer.Option("--config", "-c", help=CONFIG_HELP)],
            ),
        ]
        for cls in classes.values():
            helps = configs.field_help(cls)
            params += [_parameter(cls, f, helps) for f in cli_fields(cls)]
        own = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation))
            for n, p in signature.parameters.items()
            if n not in classes
        ]
        names = [p.name for p in params + own]
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:  # a programming error: caught at import, by every test
            raise TypeError(f"command {name}: option name(s) {clashes} used twice")

        @functools.wraps(fn)
        def run(*, ctx: typer.Context, config: Path | None = None, **values: Any) -> Any:
            settings = _read_settings(config, classes)
            built = _build_configs(ctx, classes, values, settings, where=str(config) if config else "options")
            return fn(**built, **values)

        run.__signature__ = inspect.Signature(params + own)
        run.__annotations__ = {p.name: p.annotation for p in params + own}  # resolved, not fn's strings
        del run.__wrapped__  # Typer must read the generated signature, not fn's
        return app.command(name, rich_help_panel=panel, cls=_Command, **kwargs)(
            handles_errors(run, COMMAND_NEEDS.get(name, ()))
        )

    return decorate
