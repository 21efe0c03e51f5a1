"""A run directory's config.json and results.json: written by one rename (never half a file), and
a damaged one is an error naming the file and how to recover."""
from __future__ import annotations

import json

import pytest

from backtrack.runs.rundir import RunDir, RunDirError

CONFIG = {"kind": "find", "method": "direct-trace", "n_traces": 3}


def test_a_cut_off_config_names_the_file_and_how_to_recover(tmp_path):
    RunDir(tmp_path / "run", CONFIG)
    cfg = tmp_path / "run" / "config.json"
    cfg.write_text(cfg.read_text(encoding="utf-8")[:20], encoding="utf-8")  # what a crash mid-write leaves
    with pytest.raises(RunDirError) as e:
        RunDir(tmp_path / "run", CONFIG)
    msg = str(e.value)
    assert str(cfg) in msg and "not valid JSON" in msg and "delete" in msg and "--out" in msg


@pytest.mark.parametrize("text", ["[]", "", "\x00\x00\x00"])
def test_a_config_that_is_not_a_json_object(tmp_path, text):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(text, encoding="utf-8")
    with pytest.raises(RunDirError, match=f"{tmp_path / 'run' / 'config.json'}.*--out"):
        RunDir(tmp_path / "run", CONFIG)


def test_config_and_results_are_written_by_rename(tmp_path):
    # A dangling link in the file's place: an in-place write would follow it and create its target;
    # a rename replaces the link itself.
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "results.json"):
        (run / name).symlink_to(tmp_path / f"elsewhere-{name}")
    r = RunDir(run, CONFIG)
    r.write_results({"overall": {"n": 3}})
    for name in ("config.json", "results.json"):
        assert not (run / name).is_symlink() and not (tmp_path / f"elsewhere-{name}").exists()
    assert json.loads((run / "config.json").read_text(encoding="utf-8")) == CONFIG
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "results.json"]  # no temporary file left


def test_report_names_a_damaged_results_file(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    r = RunDir(tmp_path / "run", CONFIG)
    r.write_results({"overall": {"n": 3}})
    (tmp_path / "run" / "results.json").write_text('{"overall": {"n"', encoding="utf-8")
    out = CliRunner().invoke(app, ["report", str(tmp_path / "run")])
    assert out.exit_code == 1, out.output
    assert str(tmp_path / "run" / "results.json") in out.output and "not valid JSON" in out.output
