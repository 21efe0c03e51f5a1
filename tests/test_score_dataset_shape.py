"""`bbm data score` on a file in the dataset's shape (no `id` field): its records are matched to the
gold traces by task and input, as the README says, and read through `mistake_index`."""
from __future__ import annotations

import json
import random

from typer.testing import CliRunner

from bigbench_mistake.dataset import load_task, shipped_data_dir
from cli import app

runner = CliRunner()


def score(path):
    r = runner.invoke(app, ["data", "score", str(path), "--json"])
    return r, (json.loads(r.output) if r.exit_code == 0 else None)


def test_a_shipped_task_file_scores_as_its_own_gold():
    r, out = score(shipped_data_dir() / "word_sorting.jsonl")
    assert r.exit_code == 0, r.output
    assert out["key"] == "mistake_index"
    assert out["scores"]["tasks"]["word_sorting"]["accuracy_overall"] == 100.0
    assert out["scores"]["tasks"]["word_sorting"]["n"] == 300


def test_records_without_id_are_matched_by_input_in_any_order(tmp_path):
    traces = load_task("multistep_arithmetic")[:40]
    random.Random(0).shuffle(traces)
    rows = [{k: v for k, v in t.to_record().items() if k != "id"} for t in traces]
    for row in rows[:10]:  # predict "no mistake" for ten of them
        row["mistake_index"] = None
    p = tmp_path / "mine.jsonl"  # the file name names no task: records carry `task`
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    r, out = score(p)
    assert r.exit_code == 0, r.output
    block = out["scores"]["tasks"]["multistep_arithmetic"]
    assert block["n"] == 40 and block["missing"] == 260  # the other traces of the task have no prediction
    right = sum(t.mistake_index is None for t in traces[:10]) + 30
    assert block["accuracy_overall"] == round(100 * right / 40, 2)


def test_an_input_the_gold_data_does_not_hold_is_an_error(tmp_path):
    t = load_task("word_sorting")[0].to_record()
    del t["id"]
    p = tmp_path / "word_sorting.jsonl"
    p.write_text(json.dumps({**t, "input": "zebra apple"}) + "\n" + json.dumps({"mistake_index": 1}) + "\n",
                 encoding="utf-8")
    r, _ = score(p)
    assert r.exit_code == 1
    assert f"{p}:1: field 'input'" in r.output and "no gold trace" in r.output
    assert f"{p}:2: field 'id'" in r.output
