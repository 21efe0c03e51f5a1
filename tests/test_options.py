"""Options declared once: one name, one default and one meaning in every run command, and every
argument checked before a model loads or a run directory is written."""
from __future__ import annotations

import json

import typer.main
from typer.testing import CliRunner

from backtrack.methods.decoding import MAX_STEP_TOKENS, MAX_STEPS
from backtrack.lm.backends import BackendConfig
from backtrack.runs.options import (BATCH_SIZE, BacktrackOptions, Batching, DecodeOptions, FinderOptions,
                                    LocateOptions, QuestionBatch, QuestionsFile, RunOptions, Selection, TracesFile)
from backtrack.runs.rundir import RunDir
from backtrack.runs.typer_options import cli_fields
from cli import app

RUN_COMMANDS = ("generate", "backtrack", "simulate", "pipeline", "compare", "find")
GROUPS = (RunOptions, Selection, QuestionsFile, TracesFile, DecodeOptions, Batching, FinderOptions, LocateOptions,
          BacktrackOptions, BackendConfig)


def params(name: str) -> dict:
    cmd = typer.main.get_command(app).commands[name]
    return {p.name: p for p in cmd.params}


def test_each_option_is_declared_in_one_group():
    names = [f.name for g in GROUPS for f in cli_fields(g)]
    assert len(names) == len(set(names))
    # compare's --batch-size counts questions: the same flag and check, its own default and help
    [mine], [theirs] = cli_fields(QuestionBatch), cli_fields(Batching)
    assert mine.name == theirs.name and (mine.default, theirs.default) == (1, BATCH_SIZE)


def test_shared_options_have_one_name_and_default_everywhere():
    for name in RUN_COMMANDS:
        p = params(name)
        assert p["limit"].opts == ["--limit"] and p["limit"].default is None, name
        assert p["out"].required, name
        assert "max_tokens" not in p and "k" not in p, name
        assert p["batch_size"].opts == ["--batch-size"], name
        assert p["batch_size"].default == (1 if name == "compare" else BATCH_SIZE), name
        if name != "find":
            assert (p["max_steps"].default, p["max_step_tokens"].default) == (MAX_STEPS, MAX_STEP_TOKENS), name
            assert p["max_step_tokens"].opts == ["--max-step-tokens"], name


def test_bad_arguments_fail_before_anything_is_written(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    for args, message in [(["--locator", "simulated:1.5"], "accuracy in [0, 1]"),
                          (["--locator", "trained:/nonexistent"], "no trained model at /nonexistent"),
                          (["--locator", "prompt:nope"], "method must be one of"),
                          (["--limit", "0"], "--limit must be >= 1"),
                          (["--limit", "-1"], "--limit must be >= 1"),
                          (["--device", "nope"], "--device must be cpu"),
                          (["--shard", "3/2"], "shard index"),
                          (["--task", "nope"], "unknown task")]:
        r = runner.invoke(app, ["backtrack", "--out", str(out), *args])
        assert r.exit_code == 1 and message in r.output, (args, r.output)
        assert not out.exists(), args
    for command, args, message in [("find", ["--batch-size", "0"], "--batch-size must be >= 1"),
                                   ("generate", ["--task", "dyck_languages", "--batch-size", "0"], "--batch-size must be >= 1"),
                                   ("find", ["--method", "nope"], "method must be one of"),
                                   ("find", ["--mode", "nope"], "mode must be one of"),
                                   ("find", ["--reasoning-tokens", "0"], "--reasoning-tokens must be >= 1"),
                                   ("compare", ["--batch-size", "0"], "--batch-size must be >= 1")]:
        r = runner.invoke(app, [command, "--out", str(out), *args])
        assert r.exit_code == 1 and message in r.output and not out.exists(), (command, args, r.output)


def test_a_changed_config_names_each_field_with_both_values(tmp_path):
    old = {"kind": "backtrack", "locator": "gold", "backtrack": {"max_steps": 64, "n_samples": 8}}
    RunDir(tmp_path, old)
    try:
        RunDir(tmp_path, {**old, "backtrack": {"max_steps": 40, "n_samples": 8}})
    except ValueError as e:
        assert "backtrack.max_steps: 64 in the directory, 40 now" in str(e)
    else:
        raise AssertionError("a different config was accepted")
    assert RunDir(tmp_path, json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))).config == old  # same values resume


def test_empty_inputs_and_folder_outputs_are_refused_with_a_message(tmp_path):
    runner = CliRunner()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    r = runner.invoke(app, ["generate", "--questions", str(empty), "--out", str(tmp_path / "g")])
    assert r.exit_code == 1 and "no questions selected" in r.output and not (tmp_path / "g").exists()
    r = runner.invoke(app, ["rm", "locate", str(empty), "--locator", "gold", "--out", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 1 and "no traces to locate" in r.output and "None%" not in r.output
    r = runner.invoke(app, ["rm", "locate", str(empty), "--locator", "gold", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "is a folder" in r.output
    r = runner.invoke(app, ["data", "export", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "is a folder" in r.output


def test_a_run_directory_from_before_the_rename_resumes(tmp_path):
    old = {"kind": "find", "command": "find", "generator": "gemma-3-270m@float32", "n_traces": 3}
    (tmp_path / "config.json").write_text(json.dumps(old), encoding="utf-8")
    new = {**{k: v for k, v in old.items() if k != "generator"}, "model": "gemma-3-270m@float32"}
    assert RunDir(tmp_path, new).config == new


def test_compare_backtracks_with_the_variant_given_and_old_configs_keep_their_keys(tmp_path):
    from backtrack.methods.strategies import StrategyConfig

    p = params("compare")
    assert {"selection", "accept", "samples", "temperature", "rounds"} <= set(p)
    r = CliRunner().invoke(app, ["compare", "--out", str(tmp_path / "run"), "--rounds", "2"])
    assert r.exit_code == 1 and "--rounds 1" in r.output and not (tmp_path / "run").exists()
    paper = StrategyConfig().to_json()
    assert not {"bt_selection", "bt_accept", "bt_samples", "bt_temperature"} & set(paper)
    guarded = StrategyConfig(bt_selection="verifier", bt_accept="verified", bt_samples=4).to_json()
    assert (guarded["bt_selection"], guarded["bt_accept"], guarded["bt_samples"]) == ("verifier", "verified", 4)
