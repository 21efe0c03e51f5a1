"""Self-consistency's vote pipeline and least-to-most's parsing: pure functions, no model."""
import pytest

from backtrack.methods.least_to_most import exemplars, parse_subquestions, solve_prompt
from backtrack.methods.self_consistency import (decide, extract_ballots, located_weights, majority_vote, step_seed, tally,
                                        weighted_vote, winning_sample)
from backtrack.methods.strategies import StrategyConfig, get_strategy, items_from_traces, read_questions, STRATEGIES
from bigbench_mistake.records import DataError
from bigbench_mistake.tasks import TASKS, get_task

ARITH = get_task("multistep_arithmetic")
MC = get_task("tracking_shuffled_objects")


def trace(answer_text):
    return ["Let's think.", answer_text]


def test_majority_picks_the_most_common_answer_and_counts_invalid():
    traces = [trace("So the answer is 5"), trace("So the answer is 7"), trace("I give up"),
              trace("So the answer is  7 "), trace("So the answer is")]
    vote = majority_vote(ARITH, traces)
    assert vote.answer == "7"
    assert vote.counts == {"5": 1, "7": 2}
    assert vote.n_valid == 3 and vote.n_invalid == 2
    assert sum(vote.invalid_reasons.values()) == 2
    assert vote.tied == ()


def test_tie_goes_to_the_answer_seen_first_and_is_reported():
    traces = [trace("So the answer is 9"), trace("So the answer is 4"), trace("So the answer is 4"),
              trace("So the answer is 9")]
    vote = majority_vote(ARITH, traces)
    assert vote.answer == "9" and set(vote.tied) == {"9", "4"}
    flipped = majority_vote(ARITH, list(reversed(traces)))
    assert flipped.answer == "9"  # reversed: 9 is still first
    other = majority_vote(ARITH, traces[1:])
    assert other.answer == "4" and other.tied == ()


def test_multiple_choice_votes_on_the_option_letter():
    traces = [trace("So the answer is (A) yellow ball"), trace("So the answer is (A)"), trace("So the answer is (B)"),
              trace("So the answer is (A) or (B)")]
    vote = majority_vote(MC, traces)
    assert vote.answer == "(A)" and vote.counts == {"(A)": 2, "(B)": 1} and vote.n_invalid == 1


def test_all_invalid_gives_no_answer():
    vote = majority_vote(ARITH, [trace("hmm"), trace("hmm")])
    assert vote.answer is None and vote.n_invalid == 2 and vote.n_valid == 0


def test_weighted_vote_discounts_located_traces():
    traces = [trace("So the answer is 1"), trace("So the answer is 1"), trace("So the answer is 2")]
    assert majority_vote(ARITH, traces).answer == "1"
    # Both "1" traces have a located mistake: 0.3 + 0.3 < 1.0
    vote = weighted_vote(ARITH, traces, [0, 1, None], located_weight=0.3)
    assert vote.answer == "2" and vote.totals == {"1": 0.6, "2": 1.0}
    # 0.5 + 0.5 == 1.0: a tie, broken towards the answer seen first
    tie = weighted_vote(ARITH, traces, [0, 1, None], located_weight=0.5)
    assert tie.answer == "1" and set(tie.tied) == {"1", "2"}
    with pytest.raises(ValueError):
        located_weights(extract_ballots(ARITH, traces), [None], 0.5)


def test_pipeline_steps_compose():
    traces = [trace("So the answer is 3"), trace("no answer")]
    ballots = extract_ballots(ARITH, traces)
    assert [b.answer for b in ballots] == ["3", None] and ballots[1].invalid_reason
    vote = decide(*tally(ballots))
    assert vote.answer == "3" and winning_sample(ARITH, traces, vote) == 0


def test_step_seeds_are_distinct_and_stable():
    seeds = {step_seed(0, q, s, k) for q in ("a", "b") for s in range(4) for k in range(5)}
    assert len(seeds) == 40
    assert step_seed(0, "a", 1, 2) == step_seed(0, "a", 1, 2) != step_seed(1, "a", 1, 2)


def test_least_to_most_parsing_and_prompts():
    assert parse_subquestions(" What is A? | What is B? |  ", 8) == ["What is A?", "What is B?"]
    assert parse_subquestions("a | b | c", 2) == ["a", "b"]
    p = solve_prompt(ARITH, "1 + 1 =", ["What is A?", "What is B?"], ["A = 1."])
    assert p.endswith("Q: 1 + 1 =\nSub-question 1: What is A?\nThought 1: A = 1.\nSub-question 2: What is B?\nThought 2:")
    final = solve_prompt(ARITH, "1 + 1 =", ["What is A?"], ["A = 1."])
    assert final.endswith("Thought 1: A = 1.\nThought 2:")


@pytest.mark.parametrize("task", list(TASKS))
def test_least_to_most_exemplars_are_in_step_format(task):
    solve = exemplars(task, "solve")
    decompose = exemplars(task, "decompose")
    blocks = solve.split("\n\n")[1:]
    dblocks = decompose.split("\n\n")[1:]
    assert len(blocks) == len(dblocks) >= 2
    spec = get_task(task)
    for block, dblock in zip(blocks, dblocks):
        subs = parse_subquestions(dblock.split("Sub-questions:")[1], 99)
        lines = block.split("\n")
        asked = [ln.split(": ", 1)[1] for ln in lines if ln.startswith("Sub-question ")]
        thoughts = [ln.split(": ", 1)[1] for ln in lines if ln.startswith("Thought ")]
        assert asked == subs  # the solve exemplar answers exactly the decomposition's sub-questions
        assert len(thoughts) == len(subs) + 1  # one Thought per sub-question, then the final one
        assert isinstance(spec.normalised_answer(thoughts), str)


def test_config_validation_and_registry():
    with pytest.raises(ValueError):
        StrategyConfig(sc_samples=0)
    with pytest.raises(ValueError):
        StrategyConfig(sc_temperature=0)
    assert {"cot", "self-consistency", "sc-weighted", "least-to-most"} <= set(STRATEGIES)
    with pytest.raises(ValueError):
        get_strategy("nope")


def test_read_questions_reports_file_line_field(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text('{"task": "word_sorting", "input": "b a", "target": "a b"}\n{"task": "x", "input": "1", "target": "1"}\n'
                 '{"task": "word_sorting", "input": 3, "target": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_questions(p)
    text = str(e.value)
    assert f"{p}:2: field 'task'" in text and f"{p}:3: field 'input'" in text
    p.write_text('{"task": "word_sorting", "input": "b a", "target": "a b"}\n', encoding="utf-8")
    assert read_questions(p)[0].id == "word_sorting-0000"


def test_items_are_distinct_questions_limited_per_task():
    from bigbench_mistake.dataset import load_all

    items = items_from_traces(load_all(), limit=3)
    assert len(items) == 15 and len({(i.task, i.input) for i in items}) == 15


def test_compare_takes_tasks_in_turn_and_digest_ignores_order():
    from backtrack.runs.compare import questions_digest, round_robin
    from backtrack.methods.strategies import Item

    items = [Item("word_sorting", f"w{i}", f"w{i}", "x") for i in range(3)] + [Item("dyck_languages", "d0", "(", ")")]
    assert [i.id for i in round_robin(items)] == ["w0", "d0", "w1", "w2"]
    assert questions_digest(items) == questions_digest(list(reversed(items)))
    assert questions_digest(items) != questions_digest(items[:3])


def test_compare_batches_share_a_task_and_keep_the_tasks_in_turn():
    from backtrack.runs.compare import round_robin, same_task_batches
    from backtrack.methods.strategies import Item

    tasks = ("dyck_languages", "word_sorting", "multistep_arithmetic")
    items = round_robin([Item(t, f"{t[0]}{i}", f"{t}{i}", "x") for t in tasks for i in range(3)])
    pairs = [(i, None) for i in items]
    assert [i.id for i, _ in same_task_batches(pairs, 2)] == ["d0", "d1", "w0", "w1", "m0", "m1", "d2", "w2", "m2"]
    assert same_task_batches(pairs, 1) == pairs  # one at a time: the run's own order
    assert sorted(i.id for i, _ in same_task_batches(pairs, 4)) == sorted(i.id for i in items)


def test_summary_counts_only_questions_every_strategy_finished():
    from backtrack.runs.compare import summarise_compare

    def rec(strategy, qid, correct, tokens):
        return {"strategy": strategy, "task": "word_sorting", "id": qid, "correct": correct, "answer": "a" if correct else None,
                "tokens": tokens, "calls": 2, "seconds": 1.0}

    records = [rec("cot", "q1", True, 10), rec("sc", "q1", False, 40), rec("cot", "q2", True, 10)]
    s = summarise_compare(records, ["cot", "sc"])
    assert s["questions_complete"] == 1 and s["questions_partial"] == 1
    assert s["all"]["cot"]["n"] == 1 and s["all"]["cot"]["accuracy"] == 100.0 and s["all"]["sc"]["invalid"] == 1
    assert s["tasks"]["word_sorting"]["sc"]["mean_tokens"] == 40
