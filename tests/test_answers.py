from bigbench_mistake.answers import Invalid
from bigbench_mistake.tasks import TASKS, format_step, get_task, render_steps


def test_extract_and_score_exact_match():
    spec = get_task("multistep_arithmetic")
    assert spec.score(["x", "So the answer is -219 "], "-219").correct
    assert not spec.score(["So the answer is 219"], "-219").correct
    s = spec.score(["I am not sure."], "1")
    assert s.status == "invalid" and s.invalid_reason


def test_multiple_choice_scored_on_letter():
    spec = get_task("tracking_shuffled_objects")
    assert spec.score(["So the answer is (A) yellow ball"], "(A)").correct
    assert spec.score_stored(" (C)", "(C)").correct
    assert spec.score_stored("(A), (B), (C), or (D).", "(A)").status == "invalid"
    assert spec.score_stored(None, "(A)").status == "invalid"


def test_empty_answer_is_invalid_not_wrong():
    assert get_task("dyck_languages").score(["So the answer is "], "]").status == "invalid"
    assert isinstance(get_task("dyck_languages").extract_answer([]), Invalid)


def test_prompt_format_matches_shipped_prompts():
    for spec in TASKS.values():
        head = spec.few_shot_prompt
        assert "Thought 1:" in head and not head.endswith("\n")
        p = spec.prompt("INPUT", ["first", "second"])
        assert p.startswith(head + "\n\n")
        assert p.endswith("\nThought 1: first\nThought 2: second\nThought 3:")
    assert get_task("word_sorting").question("a b").startswith("Q: Sort the following words alphabetically: List: ")
    # the shipped prompt asks its questions the same way the spec does
    assert "\nQ: Sort the following words alphabetically: List: " in get_task("word_sorting").few_shot_prompt
    assert "\nQ: Complete the rest of the sequence" in get_task("dyck_languages").few_shot_prompt
    assert format_step(0, "a") == "Thought 1: a" and render_steps(["a", "b"]) == "Thought 1: a\nThought 2: b"
