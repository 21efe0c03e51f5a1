"""--shard on simulate, compare and find (tiny model): n shards joined by bbm merge equal one
unsharded run, records, results and plot."""
import json

from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def invoke(args):
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return r


def strip_seconds(x):
    """Without wall-clock times and paths; floats to 4 places (a shard batches other traces together,
    which moves fp32 log-probs in the 7th digit)."""
    if isinstance(x, dict):
        return {k: strip_seconds(v) for k, v in x.items() if "seconds" not in k and k not in ("run_dir", "plot", "dropped_partial_lines")}
    if isinstance(x, list):
        return [strip_seconds(v) for v in x]
    return round(x, 4) if isinstance(x, float) else x


def rows(d):
    return [strip_seconds(r) for r in map(json.loads, (d / "samples.jsonl").read_text(encoding="utf-8").splitlines())]


def whole_and_merged(tmp_path, command, n=2):
    command(tmp_path / "whole", tmp_path / "c")
    for i in range(n):
        command(tmp_path / f"s{i}", tmp_path / f"c{i}", "--shard", f"{i}/{n}")
    invoke(["merge", *(str(tmp_path / f"s{i}") for i in reversed(range(n))), "--out", str(tmp_path / "merged")])
    whole, merged = tmp_path / "whole", tmp_path / "merged"
    assert rows(merged) == sorted(rows(whole), key=lambda r: r["item_index"])
    assert json.loads((merged / "config.json").read_text(encoding="utf-8")) == \
        json.loads((whole / "config.json").read_text(encoding="utf-8"))
    assert strip_seconds(json.loads((merged / "results.json").read_text(encoding="utf-8"))) == \
        strip_seconds(json.loads((whole / "results.json").read_text(encoding="utf-8")))
    return whole, merged


def test_simulate_shards_merge_to_the_unsharded_run(tmp_path, tiny_model_dir):
    def simulate(out, cache, *extra):
        invoke(["simulate", "--accuracies", "0,0.5,1", "--task", "multistep_arithmetic", "--limit", "3",
                "--model", str(tiny_model_dir), "--dtype", "float32", "--max-steps", "7", "--max-step-tokens", "8",
                "--samples", "2", "--batch-size", "2", "--cache-dir", str(cache), "--out", str(out), *extra])

    whole, merged = whole_and_merged(tmp_path, simulate)
    records = rows(whole)
    assert len(records) == 3 and all(r["key"] == r["id"] for r in records)  # one record per trace
    assert any(r["backtracked"] for r in records)
    assert (merged / "figure2.png").is_file()


def test_compare_shards_merge_to_the_unsharded_run(tmp_path, tiny_model_dir):
    q = tmp_path / "q.jsonl"
    q.write_text("".join(json.dumps({"task": "multistep_arithmetic", "id": f"q{i}", "input": f"({i} + 2) =",
                                     "target": str(i + 2)}) + "\n" for i in range(3)), encoding="utf-8")

    def compare(out, cache, *extra):
        invoke(["compare", "--strategies", "cot,self-consistency", "--sc-samples", "2", "--questions", str(q), "--max-steps", "2",
                "--max-step-tokens", "8", "--model", str(tiny_model_dir), "--dtype", "float32", "--out", str(out), *extra])

    whole, merged = whole_and_merged(tmp_path, compare, n=3)
    assert len(rows(whole)) == 6  # (question, strategy) pairs are the sharded items
    assert json.loads((merged / "results.json").read_text(encoding="utf-8"))["questions_complete"] == 3
    assert (merged / "accuracy_vs_tokens.png").is_file()


def test_find_shards_merge_to_the_unsharded_run(tmp_path, tiny_model_dir):
    def find(out, cache, *extra):
        invoke(["find", "--method", "direct-step", "--task", "multistep_arithmetic", "--task", "word_sorting",
                "--limit", "2", "--model", str(tiny_model_dir), "--dtype", "float32", "--out", str(out), *extra])

    whole, _ = whole_and_merged(tmp_path, find)
    assert json.loads((whole / "results.json").read_text(encoding="utf-8"))["scores"]["overall"]["n"] == 4
