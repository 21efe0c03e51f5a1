"""Sharding and merge on run directories made with backtrack/rundir.RunDir: the merged run equals the
unsharded run; incomplete, missing, duplicated or mismatched shards are refused with a clear error."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from backtrack.runs.rundir import RunDir
from backtrack.runs import report
from backtrack.runs.kinds import KINDS, RunKind, merge
from backtrack.runs.shard import WHOLE, Shard, merge_runs, parse_shard, with_shard

ITEMS = [f"question {k}" for k in range(11)]
CONFIG = {"kind": "toy", "model": "m", "seed": 0, "samples_per_item": 2}


def toy_results(config, records):
    """Stands for a run kind's results function: depends on every record and on their order."""
    return {"n_records": len(records), "n_items": len({r["item_index"] for r in records}),
            "total_len": sum(len(o) for r in records for o in r["outputs"]),
            "order": [r["key"] for r in records], "seed": config["seed"]}


def toy_run(path, shard, config=CONFIG, items=ITEMS, stop_after=None):
    """A run in the way a long command runs one: its shard's items, one record per item, in order."""
    run = RunDir(path, with_shard(config, shard, len(items)))
    done = run.done_keys()
    written = 0
    for p, item in shard.select(items):
        if str(p) in done:
            continue
        if stop_after is not None and written >= stop_after:
            return run
        outputs = [item.upper() * (s + 1) for s in range(config["samples_per_item"])]
        run.append({"key": str(p), "item_index": p, "input": item, "outputs": outputs})
        written += 1
    run.write_results(toy_results(run.config, list(run.records())))
    return run


def read(path: Path, name: str):
    text = (path / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()] if name.endswith(".jsonl") else json.loads(text)


@pytest.fixture
def toy_kind(monkeypatch):
    monkeypatch.setitem(KINDS, "toy", RunKind("toy", toy_results, report.render_generic, summary=str))


def test_parse_shard():
    assert parse_shard("1/4") == Shard(1, 4) and str(Shard(1, 4)) == "1/4"
    assert parse_shard(None) == WHOLE == parse_shard("")
    for bad in ("4/4", "1-4", "a/4", "1/0", "-1/4", "1/4/2"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


def test_shards_partition_the_items():
    for n in (1, 2, 3, 5, 13):
        picked = [p for i in range(n) for p, _ in Shard(i, n).select(ITEMS)]
        assert sorted(picked) == list(range(len(ITEMS)))
    assert [p for p, _ in Shard(1, 4).select(ITEMS)] == [1, 5, 9] == list(Shard(1, 4).positions(len(ITEMS)))


def test_whole_run_records_no_shard():
    assert with_shard(CONFIG, WHOLE, 11) == CONFIG
    assert with_shard(CONFIG, Shard(2, 3), 11)["shard"] == {"index": 2, "count": 3, "n_items": 11}


@pytest.mark.parametrize("n", [1, 3, 4])
def test_merged_equals_unsharded(tmp_path, toy_kind, n):
    whole = toy_run(tmp_path / "whole", WHOLE)
    dirs = [toy_run(tmp_path / f"s{i}", Shard(i, n)).path for i in range(n)]
    if n == 1:  # a 0/1 "shard" is an ordinary run: nothing to merge
        with pytest.raises(ValueError, match="not a sharded run"):
            merge(tmp_path / "merged", dirs)
        return
    report = merge(tmp_path / "merged", list(reversed(dirs)))  # any order of arguments
    merged = tmp_path / "merged"
    assert report["records"] == len(ITEMS) and report["shards"] == n
    for name in ("config.json", "samples.jsonl", "results.json"):
        assert read(merged, name) == read(whole.path, name), name


def test_merge_refuses_unfinished_missing_duplicate_and_foreign_shards(tmp_path, toy_kind):
    s0 = toy_run(tmp_path / "s0", Shard(0, 3)).path
    s1 = toy_run(tmp_path / "s1", Shard(1, 3), stop_after=2).path  # interrupted
    s2 = toy_run(tmp_path / "s2", Shard(2, 3)).path
    with pytest.raises(ValueError, match=r"shard 1/3 is not finished: 2 of its items.*rerun it to resume"):
        merge(tmp_path / "m1", [s0, s1, s2])
    toy_run(s1, Shard(1, 3))  # resume, then it merges
    assert merge(tmp_path / "m2", [s0, s1, s2])["records"] == 11
    with pytest.raises(ValueError, match=r"shard\(s\) 2/3 missing"):
        merge(tmp_path / "m3", [s0, s1])
    with pytest.raises(ValueError, match="given twice"):
        merge(tmp_path / "m4", [s0, s0, s1, s2])
    other = toy_run(tmp_path / "o2", Shard(2, 3), config={**CONFIG, "seed": 1}).path
    with pytest.raises(ValueError, match="differ in seed"):
        merge(tmp_path / "m5", [s0, s1, other])
    four = toy_run(tmp_path / "f3", Shard(3, 4)).path
    with pytest.raises(ValueError, match="4 shards of 11 items"):
        merge(tmp_path / "m6", [s0, s1, s2, four])
    with pytest.raises(ValueError, match="already holds samples"):
        merge(tmp_path / "m2", [s0, s1, s2])


def test_merge_refuses_a_record_outside_its_shard(tmp_path, toy_kind):
    s0 = toy_run(tmp_path / "s0", Shard(0, 2)).path
    s1 = toy_run(tmp_path / "s1", Shard(1, 2))
    s1.append({"key": "stray", "item_index": 4, "input": "x", "outputs": ["X"]})
    with pytest.raises(ValueError, match=r"samples.jsonl:6: field 'item_index': item 4 does not belong to shard 1/2"):
        merge(tmp_path / "m", [s0, s1.path])
    s1b = toy_run(tmp_path / "s1b", Shard(1, 2))
    s1b.append({"key": "again", "item_index": 3, "input": "x", "outputs": ["X"]})
    with pytest.raises(ValueError, match=r"samples.jsonl:6: field 'item_index': item 3 has a second record"):
        merge(tmp_path / "m", [s0, s1b.path])


def test_execution_keys_may_differ_and_unknown_kind_is_refused(tmp_path, toy_kind):
    a = toy_run(tmp_path / "a", Shard(0, 2), config={**CONFIG, "base_url": "http://h1:8000/v1"}).path
    b = toy_run(tmp_path / "b", Shard(1, 2), config={**CONFIG, "base_url": "http://h2:8000/v1"}).path
    assert merge(tmp_path / "m", [a, b])["records"] == 11
    c = toy_run(tmp_path / "c", Shard(0, 2), config={**CONFIG, "kind": "mystery"}).path
    d = toy_run(tmp_path / "d", Shard(1, 2), config={**CONFIG, "kind": "mystery"}).path
    with pytest.raises(ValueError, match="unknown run kind .mystery."):
        merge(tmp_path / "m2", [c, d])
    assert merge_runs(tmp_path / "m3", [c, d], toy_results)["results"]["n_items"] == 11


def test_merge_command(tmp_path, toy_kind):
    from typer.testing import CliRunner

    from cli import app

    whole = toy_run(tmp_path / "whole", WHOLE)
    dirs = [str(toy_run(tmp_path / f"s{i}", Shard(i, 2)).path) for i in range(2)]
    runner = CliRunner()
    ok = runner.invoke(app, ["merge", *dirs, "--out", str(tmp_path / "m"), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["results"] == read(whole.path, "results.json")
    bad = runner.invoke(app, ["merge", dirs[0], "--out", str(tmp_path / "m2")])
    assert bad.exit_code == 1 and "shard(s) 1/2 missing" in bad.output
