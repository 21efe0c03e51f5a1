"""First-mistake training data planted in correct GSM8K solutions: one labelled wrong step, the later
steps carry the error on, no question in both splits."""
import json
import random
from pathlib import Path

from bigbench_mistake.dataset import load_file
from bigbench_mistake.gsm8k import KINDS, correct_steps, plant, planted_traces, solution_steps

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"
NATALIA = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
           "How many clips did Natalia sell altogether in April and May?",
           "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether "
           "in April and May.\n#### 72")


def test_an_arithmetic_slip_is_labelled_and_carried_on():
    for seed in range(20):
        planted = plant(*NATALIA, "arithmetic", random.Random(seed))
        steps, index, final = planted
        if index == 0:
            break
    assert steps[0].startswith("Natalia sold 48/2 = ") and steps[0] != "Natalia sold 48/2 = 24 clips in May."
    wrong = int(steps[0].split("= ")[1].split()[0])
    assert steps[1] == f"Natalia sold 48+{wrong} = {48 + wrong} clips altogether in April and May."
    assert final == str(48 + wrong) != "72" and steps[-1] == f"So the answer is {final}."


def test_every_kind_keeps_the_steps_before_the_mistake(tmp_path):
    rows = [json.loads(line) for line in GSM8K.read_text(encoding="utf-8").splitlines()[:60]]
    seen = set()
    for kind in KINDS:
        for r in rows:
            planted = plant(r["question"], r["answer"], kind, random.Random(1))
            if planted is None:
                continue
            steps, index, final = planted
            lines, gold = solution_steps(r["answer"])
            correct = correct_steps(r["answer"])
            assert steps[:index] == correct[:index] and steps[index] != correct[index]
            assert steps[-1] == f"So the answer is {final}."
            seen.add(kind)
            break
    assert seen == set(KINDS)


def test_planted_files_load_and_share_no_question(tmp_path):
    small = tmp_path / "gsm8k.jsonl"
    small.write_text("".join(GSM8K.read_text(encoding="utf-8").splitlines(keepends=True)[:300]), encoding="utf-8")
    records = planted_traces(small, mistake_rate=0.5, seed=0, heldout_share=0.2)
    assert 0.35 < sum(r["mistake_index"] is not None for r in records) / len(records) < 0.65
    train = {r["input"] for r in records if r["split"] == "train"}
    heldout = {r["input"] for r in records if r["split"] == "heldout"}
    assert train and heldout and not train & heldout
    out = tmp_path / "p.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    traces = load_file(out)
    assert all(t.task == "gsm8k" for t in traces)
    assert planted_traces(small, 0.5, 0, 0.2) == records  # seeded
