"""Options declared once: a config dataclass's field carries its command-line help, and one adapter
(backtrack/runs/typer_options.py) turns such fields into typer options, as HfArgumentParser does for TRL.

A field without help is internal (computed by the command, never a flag). The flag is the field name
with dashes unless given; every command that takes the field takes it under that one name, with that
one default and meaning.
"""
from __future__ import annotations

from dataclasses import MISSING, field
from typing import Any

REQUIRED = MISSING


def option(default: Any = REQUIRED, help: str = "", flag: str | None = None, short: str | None = None,
           envvar: str | None = None, default_factory: Any = MISSING) -> Any:
    """A dataclass field that is also a command-line option (default REQUIRED: the option must be given)."""
    meta = {"help": help, "flag": flag, "short": short, "envvar": envvar}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def require_positive(config: Any, *names: str, flags: bool = False) -> None:
    """Refuse a config whose named integer fields are below 1, naming the field (as its flag when asked)."""
    for name in names:
        if getattr(config, name) < 1:
            label = "--" + name.replace("_", "-") if flags else name
            raise ValueError(f"{label} must be >= 1, got {getattr(config, name)}")
