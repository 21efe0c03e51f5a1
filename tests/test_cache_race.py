"""Two processes setting up the same fresh cache at once: both succeed, one builds, the other waits
and reuses its result (real processes, real files; no timing is measured)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(procs: list[subprocess.Popen], limit_s: float = 240) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=limit_s)
        except subprocess.TimeoutExpired:  # a process stuck for good is a failure, not a hang of the suite
            p.kill()
            stdout, stderr = p.communicate()
        out.append((p.returncode, stdout, stderr))
    return out


def test_two_processes_assemble_one_file_from_a_chunk_that_can_be_read_once(tmp_path):
    # The chunk is a named pipe fed exactly once: a second process that assembled too would find
    # it empty (or share its bytes) and fail the sha256 check, or wait for ever.
    whole = bytes(range(256)) * (4 << 12)  # 4 MiB, far more than a pipe buffer
    digest = hashlib.sha256(whole).hexdigest()
    fifo, target = tmp_path / "part00.bin", tmp_path / "cache" / "m.gguf"
    os.mkfifo(fifo)
    code = ("from pathlib import Path; from backtrack.lm.embedded import assemble; "
            f"print(assemble([Path({str(fifo)!r})], Path({str(target)!r}), {len(whole)}, {digest!r}))")
    procs = [start(code), start(code)]

    def feed():
        with open(fifo, "wb") as f:  # blocks until a process opens the chunk
            f.write(whole)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    results = finish(procs, limit_s=120)
    if writer.is_alive():  # nobody read the chunk: unblock the writer
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    assert [r[0] for r in results] == [0, 0], results
    assert all(r[1].strip() == str(target) for r in results)
    assert target.read_bytes() == whole
    assert sorted(p.name for p in target.parent.iterdir() if not p.name.startswith(".")) == \
        ["m.gguf", "m.gguf.verified.json"]  # no partial file left behind


def tiny_data_dir(root: Path, per_task: int = 12) -> Path:
    from bigbench_mistake.dataset import load_task
    from bigbench_mistake.tasks import TASKS

    root.mkdir()
    for task in TASKS:
        lines = [json.dumps(t.to_record()) for t in load_task(task)[:per_task]]
        (root / f"{task}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


WORKER = """
import json, os, sys, time
from pathlib import Path
import reward_model.trained as trained
from reward_model.classifier import TrainConfig

cache, data, log, go = map(Path, sys.argv[1:5])
real_train = trained.train

def counted(*args, **kw):  # the real training, with a line per call in a shared log
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\\n")
    return real_train(*args, **kw)

trained.train = counted
(Path(str(go) + "." + sys.argv[5])).touch()
while not go.exists():  # both processes start the setup together
    time.sleep(0.01)
loc = trained.default_trained_model(cache, TrainConfig(features="generic", max_vocab=300, inner_folds=2), data)
print(json.dumps({"threshold": loc.threshold, "name": Path(loc.name.split(":", 1)[1]).name}))
"""


def test_two_processes_set_up_the_default_reward_model_once(tmp_path):
    data = tiny_data_dir(tmp_path / "data")
    cache, log, go = tmp_path / "rm", tmp_path / "trained.log", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(cache), str(data), str(log), str(go), str(i)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    while not all(Path(f"{go}.{i}").exists() for i in range(2)) and all(p.poll() is None for p in procs):
        time.sleep(0.05)
    go.touch()
    results = finish(procs)
    assert [r[0] for r in results] == [0, 0], results
    a, b = (json.loads(r[1]) for r in results)
    assert a == b
    assert len(log.read_text(encoding="utf-8").split()) == 1  # the second process reused the first one's model
    folders = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert [p.name for p in folders] == [a["name"]]
    assert sorted(p.name for p in folders[0].iterdir()) == ["config.json", "vocabulary.json", "weights.safetensors"]
    assert not [p for p in cache.iterdir() if p.name.endswith(".partial")]
