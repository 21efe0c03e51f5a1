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
    src.write_text("".join(json.dumps(t) + "\n" for t in TRACES))

    def args(out, cache):
        return ["backtrack", "--locator", "gold", "--traces", str(src), "--model", str(tiny_model_dir),
                "--dtype", "float32", "--cache-dir", str(cache), "--out", str(out), "--max-steps", "5",
                "--max-step-tokens", "20", "--batch-size", "2", "--json"]

    full = json.loads(invoke(args(tmp_path / "full", tmp_path / "c1")).stdout)
    assert full["results"]["overall"]["n"] == 4 and full["results"]["overall"]["backtracked"] == 3

    # An interrupted run: two finished records, a third cut mid-line, no results.json.
    part = tmp_path / "part"
    invoke(args(part, tmp_path / "c2"))
    lines = (part / "samples.jsonl").read_text().splitlines(keepends=True)
    (part / "samples.jsonl").write_text("".join(lines[:2]) + lines[2][:40])
    (part / "results.json").unlink()
    resumed = json.loads(invoke(args(part, tmp_path / "c3")).stdout)  # fresh cache: really recomputed

    def strip(rs):
        return [{k: v for k, v in json.loads(x).items() if k not in ("seconds",)} | {"rounds": [
            {k: v for k, v in o.items() if k not in ("seconds", "cached")} for o in json.loads(x)["rounds"]]}
            for x in rs]

    a = sorted(strip((tmp_path / "full" / "samples.jsonl").read_text().splitlines()), key=lambda r: r["id"])
    b = sorted(strip((part / "samples.jsonl").read_text().splitlines()), key=lambda r: r["id"])
    assert a == b
    drop = lambda res: {k: {kk: vv for kk, vv in v.items() if kk != "seconds"} for k, v in res.items() if k != "tasks"}  # noqa: E731
    assert drop(resumed["results"]) == drop(full["results"])

    # Same command with other options on the same directory: refused, nothing lost.
    bad = runner.invoke(app, [*args(part, tmp_path / "c3")[:-1], "--samples", "4"])
    assert bad.exit_code == 1 and "different config" in bad.output

    report = invoke(["report", str(tmp_path / "full"), str(part)]).output
    assert "Table 6" in report and "| multistep_arithmetic |" in report
