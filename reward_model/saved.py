"""Reading a saved locator folder defensively: a file that is cut short, damaged, of another format
or holding NaN is refused at load time with an error naming the file and the problem, before any
step is scored (otherwise a NaN weight scores every step NaN, which reads as "no mistake found").

`ModelFileError` is a ValueError, which the CLI prints as one line (cli.guarded)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

RETRAIN = "train it again (bbm rm train) or copy the folder again"


class ModelFileError(ValueError):
    pass


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; {RETRAIN}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ModelFileError(f"{path}: not UTF-8 text; the file is damaged: {RETRAIN}") from None
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); the file is "
                             f"damaged or cut short: {RETRAIN}") from None


def read_config(model_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """(path, content) of the folder's config.json, which must be a JSON object."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: no config.json (not a saved model folder)")
    meta = read_json(path)
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: expected a JSON object, got {type(meta).__name__}; {RETRAIN}")
    return path, meta


def field(meta: dict[str, Any], path: Path, name: str, kind: type | tuple[type, ...]) -> Any:
    """meta[name], which must be of `kind` (bool never counts as a number)."""
    value = meta.get(name)
    if name not in meta or not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ModelFileError(f"{path}: field {name!r} is {value!r}, expected {expected}; {RETRAIN}")
    return value


def check_finite(path: Path, name: str, values: Any) -> None:
    bad = int(np.size(values) - np.isfinite(values).sum())
    if bad:
        raise ModelFileError(f"{path}: {name} holds {bad} NaN or infinite value(s); the model is damaged: {RETRAIN}")


def load_arrays(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named float arrays of a safetensors file, each present, one-dimensional and finite."""
    from safetensors.numpy import load_file

    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; {RETRAIN}")
    try:
        arrays = load_file(str(path))
    except Exception as e:  # safetensors raises its own SafetensorError (not an OSError) on a damaged file
        raise ModelFileError(f"{path}: cannot be read ({e}); the file is damaged or cut short: {RETRAIN}") from None
    for name in names:
        if name not in arrays or arrays[name].ndim != 1:
            raise ModelFileError(f"{path}: no one-dimensional tensor {name!r}; {RETRAIN}")
        check_finite(path, f"tensor {name!r}", arrays[name])
    return arrays
