"""bbm rm label: first-mistake labels from the checks, only where they agree with the human labels."""
import json

import pytest

from bigbench_mistake.dataset import load_all
from reward_model.checks import ChecksLocator
from reward_model.labelling import checks_agreement, label_with_checks
from reward_model.locator import first_mistake


@pytest.fixture(scope="module")
def reference():
    return load_all(tasks=["dyck_languages", "logical_deduction"])


@pytest.fixture(scope="module")
def clean_dyck(reference):
    """A human-labelled mistake-free dyck trace with a right answer on which no check fires."""
    dyck = [t for t in reference if t.task == "dyck_languages"][:60]
    scores = ChecksLocator("all").scores(dyck)
    return next(t for t, s in zip(dyck, scores)
                if t.mistake_index is None and first_mistake(s) is None and len(t.steps) > 5)


def test_agreement_is_measured_on_the_human_labels(reference):
    agreement = checks_agreement(reference)
    assert agreement["dyck_languages"][1] == 986 and agreement["logical_deduction"][1] == 300
    assert agreement["dyck_languages"][0] > 0.95 > 0.9 > agreement["logical_deduction"][0]


def test_labels_follow_the_checks_and_the_answer(reference, clean_dyck):
    k = 3
    assert " ; stack: " in clean_dyck.steps[k]
    symbol, _ = clean_dyck.steps[k].split(" ; stack: ")
    steps = clean_dyck.steps[:k] + (f"{symbol} ; stack: ( ( (",) + clean_dyck.steps[k + 1:]
    wrong_stack = clean_dyck.replace(id="broken", steps=steps)
    wrong_answer = clean_dyck.replace(id="wrong-target", target="] ] ]")  # checks silent, answer wrong
    no_target = clean_dyck.replace(id="no-target", target=None)
    deduction = next(t for t in reference if t.task == "logical_deduction").replace(id="deduction")
    other = clean_dyck.replace(id="gsm", task="gsm8k")
    mine = [clean_dyck.replace(id="clean", mistake_index=0), wrong_stack, wrong_answer, no_target, deduction, other]

    labelled, report = label_with_checks(mine, reference)
    by_id = {t.id: t for t in labelled}
    assert set(by_id) == {"clean", "broken"}
    assert by_id["clean"].mistake_index is None  # the file's own label is replaced
    assert by_id["broken"].mistake_index == k
    assert by_id["broken"].extra["label_source"] == "checks:all"
    dyck = report["per_task"]["dyck_languages"]
    assert dyck["skipped: no check fires but the answer is not right"] == 2
    assert report["per_task"]["logical_deduction"] == {"skipped: checks agree with 80.0% of the human labels": 1}
    assert report["per_task"]["gsm8k"] == {"skipped: no human labels to measure the checks on": 1}
    # a stricter bar than dyck's agreement labels nothing
    assert label_with_checks(mine, reference, min_agreement=1.0)[0] == []
    with pytest.raises(ValueError, match="min_agreement"):
        label_with_checks(mine, reference, min_agreement=0.0)


def test_cli_writes_training_data(tmp_path, clean_dyck):
    from typer.testing import CliRunner

    from cli import app

    src = tmp_path / "gen.jsonl"
    src.write_text(json.dumps({**clean_dyck.to_record(), "mistake_index": None}) + "\n", encoding="utf-8")
    out = tmp_path / "labelled.jsonl"
    result = CliRunner().invoke(app, ["rm", "label", str(src), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n_labelled"] == 1 and report["checks_agreement"]["dyck_languages"]["traces"] == 986
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1 and rows[0]["mistake_index"] is None and rows[0]["label_source"] == "checks:all"
    # --out naming a folder is refused before anything is read
    result = CliRunner().invoke(app, ["rm", "label", str(src), "--out", str(tmp_path)])
    assert result.exit_code != 0 and "is a folder" in result.output
