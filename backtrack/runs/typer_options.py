"""The one adapter from option dataclasses (fields made with bigbench_mistake.options.option) to typer
commands, in the spirit of TRL's HfArgumentParser: a command names the config classes it takes, and
typer sees one option per field, with the field's flag, default and help. The command body receives
the built (validated, frozen) configs, so every argument is checked before anything costly runs.
"""
from __future__ import annotations

import inspect
import types
import typing
from dataclasses import MISSING, fields
from typing import Any, Callable, List, Optional

import typer


def _cli_type(t: Any) -> Any:
    """What typer understands for a field's type: X | None -> Optional[X], tuple[X, ...] -> List[X]."""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        [inner] = [a for a in args if a is not type(None)]
        return Optional[_cli_type(inner)]
    if origin in (tuple, list):
        return List[args[0]]
    return t


def cli_fields(cls: type) -> list:
    return [f for f in fields(cls) if f.metadata.get("help")]


def parameters(cls: type) -> list[inspect.Parameter]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in cli_fields(cls):
        meta = f.metadata
        names = [meta["flag"] or "--" + f.name.replace("_", "-")] + ([meta["short"]] if meta["short"] else [])
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = ...
        if isinstance(default, tuple):
            default = list(default) or None
        typ = _cli_type(hints[f.name])
        if default is None and typing.get_origin(typ) is not typing.Union:
            typ = Optional[typ]
        option = typer.Option(default, *names, help=meta["help"], envvar=meta["envvar"], show_default=default is not None)
        out.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=typ))
    return out


def build(cls: type, values: dict[str, Any], **computed: Any) -> Any:
    """An instance of cls (validated in its __post_init__) from the command-line values of its fields."""
    def value(f: Any) -> Any:
        v = values[f.name]
        if isinstance(v, list) or (v is None and isinstance(f.default, tuple)):  # repeatable: a tuple, () if absent
            return tuple(v or ())
        return v

    return cls(**{f.name: value(f) for f in cli_fields(cls)}, **computed)


def command(app: Any, name: str, *configs: type, **extra: Any) -> Callable:
    """Register fn(values) as command `name` of app, where values maps every option to its value. The
    options are the fields of every config class (each field name once across them) plus `extra`, a
    name -> (type, typer.Option or typer.Argument) map; fn builds its configs with build()."""
    def register(fn: Callable) -> Callable:
        params = [p for cls in configs for p in parameters(cls)]
        params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=typ)
                   for k, (typ, opt) in extra.items()]
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise TypeError(f"{name}: option(s) declared twice: {sorted({n for n in names if names.count(n) > 1})}")

        def wrapper(**values: Any) -> Any:
            return fn(values)

        wrapper.__doc__ = fn.__doc__
        wrapper.__signature__ = inspect.Signature(params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        app.command(name)(wrapper)
        return fn
    return register
