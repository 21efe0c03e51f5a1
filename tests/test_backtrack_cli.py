"""`bbm backtrack` end to end with the tiny model: run directory, resume after an interruption, report."""
import json

from typer.testing import CliRunner

from cli import app

runner = CliRunner()
TRACES = [
    {"task": "multistep_arithmetic", "id": f"h{i}", "input": f"{a} + {b} =",
     "steps": [f"Let's add {a} and {b}.", f"{a} + {b} = {a + b + 1}.", f"So the answer is {a + b + 1}"],
     "answer": str(a + b + 1), "target": str(a + b), "mistake_index": 1}
    for i, (a, b) in enumerate([(2, 3), (4, 1), (6, 2)])
] + [{"task": "multistep_arithmetic", "id": "ok", "input": "1 + 1 =", "steps": ["1 + 1 = 2. So the answer is 2"],
      "answer": "2", "target": "2", "mistake_index": None}]


def invoke(args):
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return r


def test_backtrack_resumes_to_the_same_results(tmp_path, tiny_model_dir):
    src = tmp_path / "traces.jsonl"
    src.write_text("".join(json.dumps(t) + "\n" for t in TRACES), encoding="utf-8")

    def args(out, cache):
        return ["backtrack", "--locator", "gold", "--traces", str(src), "--model", str(tiny_model_dir),
                "--dtype", "float32", "--cache-dir", str(cache), "--out", str(out), "--max-steps", "5",
                "--max-step-tokens", "20", "--batch-size", "2", "--json"]

    full = json.loads(invoke(args(tmp_path / "full", tmp_path / "c1")).stdout)
    assert full["results"]["overall"]["n"] == 4 and full["results"]["overall"]["backtracked"] == 3

    # An interrupted run: two finished records, a third cut mid-line, no results.json.
    part = tmp_path / "part"
    invoke(args(part, tmp_path / "c2"))
    lines = (part / "samples.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (part / "samples.jsonl").write_text("".join(lines[:2]) + lines[2][:40], encoding="utf-8")
    (part / "results.json").unlink()
    resumed = json.loads(invoke(args(part, tmp_path / "c3")).stdout)  # fresh cache: really recomputed

    def strip(rs):
        return [{k: v for k, v in json.loads(x).items() if k not in ("seconds",)} | {"rounds": [
            {k: v for k, v in o.items() if k not in ("seconds", "cached")} for o in json.loads(x)["rounds"]]}
            for x in rs]

    a = sorted(strip((tmp_path / "full" / "samples.jsonl").read_text(encoding="utf-8").splitlines()), key=lambda r: r["id"])
    b = sorted(strip((part / "samples.jsonl").read_text(encoding="utf-8").splitlines()), key=lambda r: r["id"])
    assert a == b
    drop = lambda res: {k: {kk: vv for kk, vv in v.items() if kk != "seconds"} for k, v in res.items() if k != "tasks"}  # noqa: E731
    assert drop(resumed["results"]) == drop(full["results"])

    # Same command with other options on the same directory: refused, nothing lost.
    bad = runner.invoke(app, [*args(part, tmp_path / "c3")[:-1], "--samples", "4"])
    assert bad.exit_code == 1 and "different config" in bad.output

    report = invoke(["report", str(tmp_path / "full"), str(part)]).output
    assert "Table 6" in report and "| multistep_arithmetic |" in report


def test_pipeline_shards_merge_to_the_unsharded_run(tmp_path, tiny_model_dir):
    qs = tmp_path / "q.jsonl"
    qs.write_text("".join(json.dumps({"task": "multistep_arithmetic", "id": f"q{i}", "input": f"{i} + 3 =",
                                      "target": str(i + 3)}) + "\n" for i in range(4)), encoding="utf-8")

    def pipe(out, cache, *extra):
        return invoke(["pipeline", "--questions", str(qs), "--locator", "random", "--model", str(tiny_model_dir),
                       "--dtype", "float32", "--max-steps", "4", "--max-step-tokens", "16", "--batch-size", "2",
                       "--cache-dir", str(cache), "--out", str(out), "--json", *extra])

    whole = json.loads(pipe(tmp_path / "whole", tmp_path / "c0").stdout)
    assert whole["results"]["overall"]["n"] == 4 and whole["results"]["overall"]["backtracked"] == 4
    pipe(tmp_path / "s0", tmp_path / "c1", "--shard", "0/2")
    pipe(tmp_path / "s1", tmp_path / "c2", "--shard", "1/2")
    invoke(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "merged")])

    def rows(d):
        return [{k: v for k, v in r.items() if k not in ("seconds", "rounds", "generation")}
                for r in map(json.loads, (d / "samples.jsonl").read_text(encoding="utf-8").splitlines())]

    assert rows(tmp_path / "merged") == sorted(rows(tmp_path / "whole"), key=lambda r: r["item_index"])
    merged = json.loads((tmp_path / "merged" / "results.json").read_text(encoding="utf-8"))
    assert merged["overall"]["accuracy_after"] == whole["results"]["overall"]["accuracy_after"]
    assert merged["overall"]["tokens"] == whole["results"]["overall"]["tokens"]


def test_backtrack_with_a_prompt_based_finder_on_the_same_model(tmp_path, tiny_model_dir):
    src = tmp_path / "traces.jsonl"
    src.write_text("".join(json.dumps(t) + "\n" for t in TRACES[:2]), encoding="utf-8")
    out = json.loads(invoke(["backtrack", "--locator", "prompt:direct-step", "--traces", str(src), "--model",
                             str(tiny_model_dir), "--dtype", "float32", "--cache-dir", str(tmp_path / "c"),
                             "--out", str(tmp_path / "run"), "--max-steps", "5", "--max-step-tokens", "16",
                             "--json"]).stdout)
    assert out["results"]["overall"]["n"] == 2 and out["locator"] == "prompt:direct-step"
