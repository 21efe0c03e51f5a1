"""`bbm generate` end to end with the tiny model: records in the dataset's shape, resume, bad input."""
import json

import pytest
from typer.testing import CliRunner

from backtrack.methods.decoding import DecodeConfig
from backtrack.runs.generate import GenerateConfig, generate, read_questions
from bigbench_mistake.records import DataError, read_traces
from bigbench_mistake.dataset import KNOWN_TASKS
from cli import app

QUESTIONS = [{"task": "multistep_arithmetic", "id": f"q{i}", "input": f"{i} + 1 =", "target": str(i + 1)} for i in range(4)]


def write_questions(path, rows=QUESTIONS):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_generate_writes_valid_records_and_resumes(tiny_generator, tmp_path):
    qfile = write_questions(tmp_path / "q.jsonl")
    config = GenerateConfig(model=tiny_generator.name, questions=str(qfile), limit=2, seed=1,
                            decode=DecodeConfig(max_steps=3, max_tokens=12, batch_size=2))
    out = tmp_path / "run"
    first = generate(config, tiny_generator, out)
    assert first["new_traces"] == 2 and first["overall"]["traces"] == 2
    traces, issues = read_traces(out / "samples.jsonl", default_task=None, known_tasks=KNOWN_TASKS)
    assert issues == [] and [t.id for t in sorted(traces, key=lambda t: t.id)] == ["q0", "q1"]
    rec = json.loads((out / "samples.jsonl").read_text(encoding="utf-8").splitlines()[0])
    g = rec["generation"]
    assert g["model"] == tiny_generator.name and g["seed"] == 1 and g["tokens"] == sum(g["step_tokens"]) > 0
    assert g["stop_reason"] in ("answer", "step_cap", "token_cap", "eos") and len(g["step_logprobs"]) == len(rec["steps"])
    assert rec["answer_status"] in ("correct", "wrong", "invalid") and rec["mistake_index"] is None
    # a bigger limit extends the same run; finished records are skipped, not redone
    more = generate(GenerateConfig(model=tiny_generator.name, questions=str(qfile), limit=4, seed=1,
                                   decode=DecodeConfig(max_steps=3, max_tokens=12, batch_size=2)), tiny_generator, out)
    assert more["new_traces"] == 2 and more["skipped_done"] == 2 and more["overall"]["traces"] == 4
    lines = (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and lines[:2] == (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()[:2]
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["overall"]["traces"] == 4
    # a different decoding config for the same directory is refused
    with pytest.raises(ValueError, match="different config"):
        generate(GenerateConfig(model=tiny_generator.name, questions=str(qfile), seed=2,
                                decode=DecodeConfig(max_steps=3, max_tokens=12)), tiny_generator, out)


def test_cli_generate_and_validate(tiny_model_dir, tmp_path):
    qfile = write_questions(tmp_path / "q.jsonl")
    out = tmp_path / "cli-run"
    args = ["generate", "--questions", str(qfile), "--limit", "2", "--model", str(tiny_model_dir), "--dtype", "float32",
            "--max-steps", "2", "--max-step-tokens", "6", "--out", str(out), "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert '"new_traces": 2' in r.output
    v = CliRunner().invoke(app, ["data", "validate", str(out / "samples.jsonl")])
    assert v.exit_code == 0 and "2 valid record(s), 0 error(s)" in v.output
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and '"new_traces": 0' in again.output and '"skipped_done": 2' in again.output


def test_bad_question_file_names_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(QUESTIONS[0]) + "\n" + json.dumps({"task": "nope", "input": "x", "target": "1"}) + "\n"
                   + json.dumps({"task": "word_sorting", "input": 3, "target": "a"}) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_questions(bad)
    text = str(e.value)
    assert f"{bad}:2: field 'task'" in text and f"{bad}:3: field 'input'" in text and f"{bad}:4: field '<json>'" in text
    r = CliRunner().invoke(app, ["generate", "--questions", str(bad), "--out", str(tmp_path / "o"), "--model", "unused"])
    assert r.exit_code == 1 and f"{bad}:2: field 'task'" in r.output


@pytest.mark.slow
def test_embedded_model_generates_multistep_arithmetic(tmp_path):
    """The Done criterion: `bbm generate --task multistep_arithmetic --limit 3` with the embedded model."""
    import os

    cache = os.environ.get("BBM_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["generate", "--task", "multistep_arithmetic", "--limit", "3", "--out", str(out),
                                 "--cache-dir", cache, "--json"])
    assert r.exit_code == 0, r.output
    v = CliRunner().invoke(app, ["data", "validate", str(out / "samples.jsonl")])
    assert v.exit_code == 0 and "3 valid record(s), 0 error(s)" in v.output
