"""Writing into a cache folder that several processes may fill at once (shards started together,
two commands on one machine).

Three rules, used by the packaged-model assembly (embedded.py) and the default reward model:
- everything is built under a unique temporary name beside the target and published with one
  atomic rename, so a reader never sees half a file or half a folder;
- a folder counts as done only through a mark written after everything else;
- a builder holds an exclusive `fcntl.flock` on a lock file beside the target (`.NAME.lock`), so a
  second process waits, then finds the first one's result and reuses it instead of building it
  again or deleting what the first one is writing.
The lock file is never deleted: removing it while another process waits on it would let a third
process lock a new file of the same name and build alongside.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # Windows: no flock; the atomic renames alone still keep readers safe
    fcntl = None  # type: ignore[assignment]


def lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.lock")


@contextmanager
def file_lock(target: str | Path) -> Iterator[None]:
    """Hold an exclusive lock for `target` (blocking until any other holder is done)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(target), "ab") as f:
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` through a unique temporary file and one rename: the file holds
    either its old content or all of the new one, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def publish_dir(target: str | Path, done_mark: str, build: Callable[[Path], None]) -> Path:
    """The folder `target`, built once by `build(tmp)` into a temporary folder that must end up
    holding `done_mark` (written last), then renamed into place. Returns at once when it is done."""
    target = Path(target)
    if (target / done_mark).exists():
        return target
    with file_lock(target):
        if (target / done_mark).exists():  # another process built it while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
        try:
            build(tmp)
            if not (tmp / done_mark).exists():
                raise RuntimeError(f"building {target} wrote no {done_mark}")
            if target.exists():  # left unfinished by a crash (nobody else builds: we hold the lock)
                shutil.rmtree(target)
            os.rename(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target
