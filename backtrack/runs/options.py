"""The options every run command shares, declared once (field = flag, default, help): where the run
goes, which items it takes, how traces are decoded, where the mistake is and how it is corrected.
Each is validated when built, before a model loads or a run directory is written."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from backtrack.methods.backtracking import ACCEPTS, SELECTIONS
from backtrack.methods.decoding import MAX_STEP_TOKENS, MAX_STEPS, STEP_CAP_FACTOR, STOP_REPEATS, check_stops
from backtrack.runs.shard import parse_shard
from bigbench_mistake.options import REQUIRED, option, require_positive
from bigbench_mistake.questions import Question, first_per_task, questions_from_traces, read_questions
from bigbench_mistake.records import Trace

if TYPE_CHECKING:
    from reward_model.prompt_finders import FinderConfig

BATCH_SIZE = 4  # traces decoded (bbm find: checked) together: --batch-size of every command but compare's (QuestionBatch)


@dataclass(frozen=True)
class RunOptions:
    out: Path = option(REQUIRED, "Run directory (rerun the same command to resume).")
    shard: str | None = option(None, "Run only slice i/n (0-based) of the items; join the slices with bbm merge.")
    seed: int = option(0, "Sampling seed (stored in config.json).")
    as_json: bool = option(False, "Print the result as JSON.", flag="--json")

    def __post_init__(self) -> None:
        parse_shard(self.shard)
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {self.out} is a file; a run writes a directory")


@dataclass(frozen=True)
class Selection:
    tasks: tuple[str, ...] = option((), "Only this task (repeatable; default: every task).", flag="--task", short="-t")
    limit: int | None = option(None, "The first N items (questions, or traces) of each task, in file order.")
    data_dir: Path | None = option(None, "Folder with the five task JSONL files (default: the copy shipped in the "
                                   "package).", envvar="BBM_DATA_DIR")

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1 (or left out for every item), got {self.limit}")

    def questions(self, questions_file: Path | None) -> list[Question]:
        """The selected questions: from a JSONL file, else each distinct dataset question once."""
        from bigbench_mistake.dataset import load_all

        items = read_questions(questions_file) if questions_file else questions_from_traces(load_all(self.data_dir, self.tasks))
        return _nonempty(first_per_task(items, self.tasks, self.limit))

    def traces(self, traces_files: tuple[Path, ...] = ()) -> list[Trace]:
        """The selected traces: from JSONL files in the dataset's shape, else the dataset's."""
        from bigbench_mistake.dataset import load_traces

        return _nonempty(first_per_task(load_traces(traces_files, self.data_dir, self.tasks), self.tasks, self.limit))


def _nonempty(items: list) -> list:
    if not items:
        raise ValueError("no items selected (check --task, --limit and the input file)")
    return items


@dataclass(frozen=True)
class QuestionsFile:
    questions: Path | None = option(None, "JSONL questions (task, input, target; id optional) instead of the dataset's.")


@dataclass(frozen=True)
class TracesFile:
    traces: tuple[Path, ...] = option((), "JSONL traces in the dataset's shape (repeatable; default: the dataset).")


@dataclass(frozen=True)
class DecodeOptions:
    max_steps: int = option(MAX_STEPS, "Cap on the Thoughts of one trace (the dataset's longest, dyck, has 126).")
    max_step_tokens: int = option(MAX_STEP_TOKENS, "Cap on the tokens of one step (word sorting's first step runs to "
                                  "~280).")
    stop_repeats: int = option(STOP_REPEATS, "Stop a trace whose last steps are one step, or one cycle of up "
                               "to 4 steps, written this many times in a row (a greedy loop; stop reason "
                               "'loop'); 0: never.")
    step_cap_factor: float = option(STEP_CAP_FACTOR, "Stop a trace of one of the five tasks at this many times the "
                                    "steps of the task's longest trace in the dataset (a cycle of several steps); "
                                    "0: --max-steps only.")

    def __post_init__(self) -> None:
        require_positive(self, "max_steps", "max_step_tokens", flags=True)
        check_stops(self, flags=True)


@dataclass(frozen=True)
class Batching:
    batch_size: int = option(BATCH_SIZE, "Traces decoded together (2 Sapphire Rapids cores, Qwen 1.5B: 1 stream 12.5 "
                             "tokens/s, 8 traces 21.6; benchmarks/bench_backends.py measures yours); bbm find: "
                             "traces checked together, each model call holding the next check of every one not "
                             "yet decided.")

    def __post_init__(self) -> None:
        require_positive(self, "batch_size", flags=True)


@dataclass(frozen=True)
class QuestionBatch(Batching):
    """bbm compare's --batch-size: the same flag and check as Batching, counting questions, default 1."""
    batch_size: int = option(1, "Questions run together, each through its strategies, every model call holding "
                             "the next request of each (for a server that batches; on 2 CPU cores with llama.cpp "
                             "it was no faster: benchmarks/bench_compare.py).")


@dataclass(frozen=True)
class FinderOptions:
    method: str = option("direct-step", "direct-trace | direct-step | cot-step (the paper's three prompts).")
    mode: str = option("logprob", "logprob (compare the answers' log-probabilities; base models) | generate (free "
                       "text; chat models).")
    reasoning_tokens: int = option(96, "cot-step: tokens for the reasoning line.")

    def __post_init__(self) -> None:
        require_positive(self, "reasoning_tokens", flags=True)
        self.finder_config()  # refuses an unknown method or mode

    def finder_config(self) -> FinderConfig:
        from reward_model.prompt_finders import FinderConfig

        return FinderConfig(method=self.method, mode=self.mode, reasoning_tokens=self.reasoning_tokens)


@dataclass(frozen=True)
class LocateOptions:
    locator: str = option("trained", "Where the mistake is: trained (the default classifier, trained once and cached) "
                          "| trained:DIR | checks[:generic] | gold | random | random:dist | simulated:X "
                          "| prompt:METHOD[:MODE] (the run's own model).")
    threshold: float | None = option(None, "Locator score threshold (default: the locator's own; a trained locator's "
                                     "is the one it fitted, others use 0.5).")
    verifier: str | None = option(None, "Locator judging samples and new traces for --selection verifier / --accept "
                                  "verified (default: --locator if it reads text, else trained).")

    def __post_init__(self) -> None:
        from reward_model.registry import check_locator_spec

        for spec in filter(None, (self.locator, self.verifier)):
            check_locator_spec(spec)


@dataclass(frozen=True)
class BacktrackOptions:
    samples: int = option(8, "Samples drawn at the mistaken step.")
    temperature: float = option(1.0, "Sampling temperature at the mistaken step.")
    selection: str = option("logprob", "logprob (highest sum; the paper) | mean_logprob (length-normalised) | "
                            "verifier (the sample the verifier scores least likely wrong).")
    accept: str = option("always", "always (the paper: keep what comes back) | answered (keep the original unless "
                         "the new trace has an answer) | verified (also no mistake at or before the replaced step, "
                         "per the verifier); a rejected sample makes way for the next-best.")
    rounds: int = option(1, "Locate and backtrack again on the new trace R times.")

    def __post_init__(self) -> None:
        if self.selection not in SELECTIONS:
            raise ValueError(f"--selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")
        if self.accept not in ACCEPTS:
            raise ValueError(f"--accept must be one of {', '.join(ACCEPTS)}, got {self.accept!r}")
        if self.samples < 1 or self.rounds < 1 or self.temperature <= 0:
            raise ValueError("--samples and --rounds must be >= 1 and --temperature > 0")
