"""The outcome cache's key holds everything that decides an outcome besides the trace and the
sampling settings: the generator's full name, its device, the libraries that compute it and the
task's prompt text. Entries keyed the old way simply miss."""
from __future__ import annotations

import hashlib
import json
from importlib.metadata import version

from backtrack.methods.backtracking import BacktrackConfig
from backtrack.runs.cache import OutcomeCache, outcome_key
from backtrack.runs.experiment import backtrack_with_cache
from bigbench_mistake.tasks import get_task
from tests.test_backtrack_tiny import WRONG

SAMPLING = BacktrackConfig().sampling_key()
CPU = {"name": "m@float32", "device": "cpu", "libraries": {"torch": "2.13.0", "transformers": "5.24.0"}}


def test_the_key_changes_with_the_device_and_the_library_versions():
    base = outcome_key(WRONG, 1, 0, CPU, SAMPLING)
    assert base == outcome_key(WRONG, 1, 0, dict(CPU), SAMPLING)
    others = [outcome_key(WRONG, 1, 0, {**CPU, "device": "cuda:0"}, SAMPLING),
              outcome_key(WRONG, 1, 0, {**CPU, "libraries": {**CPU["libraries"], "torch": "2.14.0"}}, SAMPLING),
              outcome_key(WRONG, 1, 0, {**CPU, "name": "m@bfloat16"}, SAMPLING)]
    assert base not in others and len(set(others)) == 3


def test_the_key_changes_when_the_tasks_prompt_is_edited(monkeypatch):
    base = outcome_key(WRONG, 1, 0, CPU, SAMPLING)
    spec = get_task(WRONG.task)
    monkeypatch.setitem(spec.__dict__, "few_shot_prompt", spec.few_shot_prompt + "\nOne more example.")
    assert outcome_key(WRONG, 1, 0, CPU, SAMPLING) != base


def test_a_transformers_generator_names_its_device_and_libraries(tiny_generator):
    from backtrack.lm.generator import generator_identity
    from backtrack.lm.wrappers import CountingLM

    ident = generator_identity(CountingLM(tiny_generator))  # wrappers are seen through
    assert ident == {"name": tiny_generator.name, "device": "cpu",
                     "libraries": {"torch": version("torch"), "transformers": version("transformers")}}


def test_outcomes_are_not_reused_after_a_prompt_edit_and_old_entries_miss(tiny_generator, tmp_path, monkeypatch):
    path = tmp_path / "outcomes.jsonl"
    old_key = hashlib.sha256(json.dumps(  # how keys were made before they held device, libraries and prompt
        {"id": WRONG.id, "task": WRONG.task, "input": WRONG.input, "steps": list(WRONG.steps), "location": 1,
         "round": 0, "generator": tiny_generator.name, "sampling": SAMPLING}, sort_keys=True).encode()).hexdigest()
    path.write_text(json.dumps({"key": old_key, "value": {"location": 1, "steps": ["stale"]}}) + "\n"
                    + "[1, 2]\n" + json.dumps({"value": {}}) + "\n", encoding="utf-8")
    config = BacktrackConfig(n_samples=2, max_step_tokens=8, max_steps=4)

    def outcome():
        (o,) = backtrack_with_cache([WRONG], [1], tiny_generator, config, OutcomeCache(path))
        return o

    first = outcome()
    assert not first["cached"] and first["steps"] != ["stale"]
    assert outcome()["cached"]
    spec = get_task(WRONG.task)
    monkeypatch.setitem(spec.__dict__, "few_shot_prompt", "Q: 1 + 1 =\nThought 1: 1 + 1 = 2. So the answer is 2")
    assert not outcome()["cached"]
