"""A real sharded `bbm generate` (tiny model): two shards merged equal one unsharded run."""
import json

from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def test_two_generate_shards_merge_to_the_unsharded_run(tmp_path, tiny_model_dir):
    qs = tmp_path / "q.jsonl"
    qs.write_text("".join(json.dumps({"task": "multistep_arithmetic", "id": f"q{i}", "input": f"{i} + 2 =",
                                      "target": str(i + 2)}) + "\n" for i in range(5)), encoding="utf-8")

    def gen(out, *extra):
        r = runner.invoke(app, ["generate", "--questions", str(qs), "--model", str(tiny_model_dir), "--dtype", "float32",
                                "--max-steps", "3", "--max-step-tokens", "16", "--out", str(out), *extra])
        assert r.exit_code == 0, r.output

    gen(tmp_path / "whole")
    gen(tmp_path / "s0", "--shard", "0/2")
    gen(tmp_path / "s1", "--shard", "1/2")
    r = runner.invoke(app, ["merge", str(tmp_path / "s1"), str(tmp_path / "s0"), "--out", str(tmp_path / "merged")])
    assert r.exit_code == 0, r.output

    def records(d):
        return [{k: v for k, v in json.loads(x).items() if k != "generation"} | {"tokens": json.loads(x)["generation"]["tokens"]}
                for x in (d / "samples.jsonl").read_text(encoding="utf-8").splitlines()]

    whole = sorted(records(tmp_path / "whole"), key=lambda r: r["item_index"])
    assert records(tmp_path / "merged") == whole
    assert json.loads((tmp_path / "merged" / "config.json").read_text(encoding="utf-8")) == \
        json.loads((tmp_path / "whole" / "config.json").read_text(encoding="utf-8"))
    merged = json.loads((tmp_path / "merged" / "results.json").read_text(encoding="utf-8"))
    assert merged["overall"] == json.loads((tmp_path / "whole" / "results.json").read_text(encoding="utf-8"))["overall"]
