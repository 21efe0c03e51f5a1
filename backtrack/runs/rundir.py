"""One directory per run: config.json, samples.jsonl (one record per finished item), results.json.

Rerunning the same command on the same directory resumes: records already in samples.jsonl are
skipped by key. A line cut short by Ctrl-C or a crash is detected, reported and dropped (it was not
finished), never silently merged. A different config for an existing directory is an error: a
run directory holds exactly one experiment. config.json and results.json are written through a
temporary file and one rename (a crash leaves the old file or the new one, never part of one); a
damaged one is an error naming the file and the way out.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from backtrack.lm.cache_files import write_text_atomic

CONFIG, SAMPLES, RESULTS = "config.json", "samples.jsonl", "results.json"


class RunDirError(ValueError):
    pass


# keys renamed since run directories were first written: old name -> new name (the value is the same)
RENAMED_KEYS = {"generator": "model"}


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """A config.json written before a key was renamed, read under today's names (so the run resumes)."""
    out = dict(config)
    for old, new in RENAMED_KEYS.items():
        if old in out and new not in out:
            out[new] = out.pop(old)
    return out


def config_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """'field: X in the directory, Y now' for every differing leaf (nested configs by dotted path), so a
    user can resume an older run by passing its values."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {json.dumps(a)} in the directory, {json.dumps(b)} now")
    return out


def read_run_file(path: str | Path) -> dict[str, Any]:
    """A run directory's config.json or results.json as a dict; a damaged one raises RunDirError."""
    path = Path(path)
    how = (f"delete {path.parent} to start that run over, or pass another --out" if path.name == CONFIG
           else "rerun the run's command to write it again")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        problem = "not UTF-8 text"
    except json.JSONDecodeError as e:
        problem = f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
    else:
        if isinstance(obj, dict):
            return obj
        problem = f"a JSON {type(obj).__name__}, not an object"
    raise RunDirError(f"{path}: {problem}; the file is damaged (cut short by a crash, or edited). {how}")


def write_json(path: str | Path, obj: Any, **dump: Any) -> Path:
    """obj as indented JSON, written atomically (see the module doc)."""
    return write_text_atomic(path, json.dumps(obj, indent=2, **dump) + "\n")


def finished_records(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """The records of a run directory's samples.jsonl that are complete, read without writing
    anything, so it is safe on a run still going: a last line without its newline (being written)
    is left out and counted. Returns (records, lines left out); a damaged line before the last is
    an error naming the file and line."""
    p = Path(path) / SAMPLES
    if not p.exists():
        return [], 0
    records, partial = [], 0
    lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not line.endswith("\n") and number == len(lines):
            partial += 1
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise RunDirError(f"{p}:{number}: not valid JSON ({e.msg})") from None
    return records, partial


class RunDir:
    def __init__(self, path: str | Path, config: dict[str, Any], key_field: str = "key"):
        self.path = Path(path)
        self.key_field = key_field
        self.path.mkdir(parents=True, exist_ok=True)
        cfg_path = self.path / CONFIG
        canonical = json.loads(json.dumps(config, sort_keys=True))
        if cfg_path.exists():
            old = upgrade_config(read_run_file(cfg_path))
            if old != canonical:
                diff = config_diff(old, canonical)
                raise RunDirError(f"{self.path} holds a run with a different config ({'; '.join(diff)}); "
                                  "use another --out or the same options")
        else:
            write_json(cfg_path, canonical, sort_keys=True)
        self.config = canonical
        self.dropped_partial_lines = self._drop_partial_tail()

    @property
    def samples_path(self) -> Path:
        return self.path / SAMPLES

    def _drop_partial_tail(self) -> int:
        """Cut a last line that is not complete JSON (an interrupted write); returns 0 or 1."""
        p = self.samples_path
        if not p.exists() or p.stat().st_size == 0:
            return 0
        data = p.read_bytes()
        cut = data.rfind(b"\n", 0, len(data) - 1) + 1 if not data.endswith(b"\n") else len(data)
        tail = data[cut:]
        if tail:
            try:
                json.loads(tail)
                with open(p, "ab") as f:  # complete record that only lacked its newline
                    f.write(b"\n")
                return 0
            except json.JSONDecodeError:
                with open(p, "r+b") as f:
                    f.truncate(cut)
                return 1
        return 0

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.samples_path.exists():
            return
        with open(self.samples_path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as e:
                        raise RunDirError(f"{self.samples_path}:{number}: not valid JSON ({e.msg})") from None

    def done_keys(self) -> set[str]:
        return {r[self.key_field] for r in self.records()}

    def append(self, record: dict[str, Any]) -> None:
        """Write one finished record and flush it to disk before returning."""
        if self.key_field not in record:
            raise KeyError(f"record lacks its key field {self.key_field!r}")
        with open(self.samples_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def write_results(self, results: dict[str, Any]) -> Path:
        return write_json(self.path / RESULTS, results, ensure_ascii=False)
