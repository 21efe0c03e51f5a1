"""The shipped BIG-Bench Mistake data: loading, published figures, validation errors."""
import json

import pytest

from bigbench_mistake.dataset import group_key, load_all, load_file, load_task, to_hf_dataset_dict
from bigbench_mistake.records import DataError
from bigbench_mistake.stats import dataset_stats

PUBLISHED = {  # task: (traces, with a mistake, correct answers)
    "word_sorting": (300, 266, 45),
    "tracking_shuffled_objects": (300, 260, 45),
    "logical_deduction": (300, 294, 45),
    "multistep_arithmetic": (300, 238, 45),
    "dyck_languages": (986, 650, 482),
}


@pytest.fixture(scope="module")
def traces():
    return load_all()


def test_published_figures(traces):
    stats = dataset_stats(traces)
    assert stats["total"]["traces"] == 2186
    assert stats["total"]["label_noise_no_mistake_but_wrong"] == 30
    for task, (n, with_mistake, correct) in PUBLISHED.items():
        s = stats["tasks"][task]
        assert (s["traces"], s["with_mistake"], s["correct_answers"]) == (n, with_mistake, correct), task


def test_mistake_index_never_zero_and_ids_unique(traces):
    assert all(t.mistake_index != 0 for t in traces)
    assert len({t.id for t in traces}) == len(traces)


def test_hf_dataset_dict(traces):
    dd = to_hf_dataset_dict(traces)
    assert {k: len(v) for k, v in dd.items()} == {k: v[0] for k, v in PUBLISHED.items()}
    row = dd["word_sorting"][0]
    assert row["steps"] == list(load_task("word_sorting")[0].steps)


def test_logical_deduction_groups_share_statements(traces):
    ld = [t for t in traces if t.task == "logical_deduction"]
    groups = {group_key(t) for t in ld}
    assert len(groups) < len(ld)  # several questions per puzzle exist


def write(tmp_path, lines):
    p = tmp_path / "mine.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


GOOD = {"task": "multistep_arithmetic", "input": "1 + 1 =", "steps": ["1 + 1 = 2. So the answer is 2"],
        "answer": "2", "target": "2", "mistake_index": None}


def test_user_file_roundtrip(tmp_path):
    p = write(tmp_path, [json.dumps(GOOD), json.dumps({**GOOD, "id": "x", "model": "m"})])
    a, b = load_file(p)
    assert a.id == "multistep_arithmetic-0000" and b.id == "x" and b.extra == {"model": "m"}
    assert b.to_record()["model"] == "m"


def test_three_problems_reported_with_lines(tmp_path):
    missing = {k: v for k, v in GOOD.items() if k != "steps"}  # target may be left out (any source)
    p = write(tmp_path, ["{not json", json.dumps(missing), json.dumps({**GOOD, "mistake_index": 3})])
    with pytest.raises(DataError) as e:
        load_file(p)
    got = [(i.line, i.field) for i in e.value.issues]
    assert got == [(1, "<json>"), (2, "steps"), (3, "mistake_index")]
    assert f"{p}:3: field 'mistake_index'" in str(e.value)


@pytest.mark.parametrize("bad,field", [
    ({"steps": []}, "steps"), ({"steps": "x"}, "steps"), ({"task": 3}, "task"),
    ({"mistake_index": "1"}, "mistake_index"), ({"input": 3}, "input"),
])
def test_each_kind_of_problem(tmp_path, bad, field):
    p = write(tmp_path, [json.dumps({**GOOD, **bad})])
    with pytest.raises(DataError) as e:
        load_file(p)
    assert [i.field for i in e.value.issues] == [field]
