#!/usr/bin/env bash
# The strategy comparison of issue 15 on Qwen2.5-Coder-1.5B-Instruct (llama.cpp, 2 threads): 30 questions
# per task, every strategy on the same questions; 20 fresh questions for each of the three tasks whose questions
# can be generated exactly; the paper's three prompt-based finders on 20 traces per task. One run
# directory for the dataset's questions, one for the fresh ones, one per finder; every bbm run
# resumes where it stopped, so rerunning this script finishes what an earlier session left. On 2
# cores (Sapphire Rapids) a compare question costs 2 (dyck) to 14 (word sorting) minutes, ~6.7 on
# average (cot, 8 self-consistency traces, least-to-most, backtracking): ~17 hours for the 150. Usage, from the repository root:
#   OUT=results/qwen-compare bash results/qwen-compare/queue.sh
set -u
BBM=${BBM:-bbm}
OUT=${OUT:-results/qwen-compare}
MODEL="--model qwen2.5-coder-1.5b --threads 2"
STRATEGIES="cot,self-consistency,sc-weighted,least-to-most,backtrack"
# backtracking in the variant the Table 6 runs (results/qwen-table6) show best for the main job
BACKTRACK="--selection verifier --accept verified"
FRESH_TASKS="multistep_arithmetic dyck_languages word_sorting"
. "$(dirname "$0")/../run.sh"  # run NAME COMMAND...: one resumable run directory
mkdir -p "$OUT"
# the finders that cost least first (direct: one short answer a trace or a step; tens of minutes
# against the compare run's ~17 hours), so the Table 4 analogue does not wait for the comparison
for m in direct-trace direct-step; do
  run find-$m $BBM find --method $m --mode generate --limit 20 $MODEL
done
# the CoT step-level finder: a short line of reasoning before each yes/no; it took 29 min (the direct
# finders 44-48), as it stops at its first "No" sooner (331 checks against 975). Its 8 traces are checked in lockstep
# (one call a round holds every undecided trace's next step): 1.17x faster than one by one on these
# cores (results/benchmarks/bench_find-cot-step-qwen.txt); the direct finders ran one trace at a time.
run find-cot-step $BBM find --method cot-step --mode generate --limit 20 --batch-size 8 $MODEL
# one run over the five tasks: it goes question by question, taking the tasks in turn, so a run
# stopped early (a session ends) still compares every strategy on the same questions of every task
# (one question at a time: compare's --batch-size counts questions, and on these cores more than one
# was no faster; until 2026-12-03 this line passed --batch-size 8, which compare then took and ignored)
run compare $BBM compare --limit 30 --strategies $STRATEGIES --sc-samples 8 --sc-temperature 0.7 $BACKTRACK $MODEL \
  --batch-size 1
# then the fresh questions
for t in $FRESH_TASKS; do
  [ -f "$OUT/fresh-$t.jsonl" ] || $BBM data fresh --task $t --n 20 --seed 0 --out "$OUT/fresh-$t.jsonl"
done
[ -f "$OUT/fresh.jsonl" ] || for t in $FRESH_TASKS; do cat "$OUT/fresh-$t.jsonl"; done > "$OUT/fresh.jsonl"
run compare-fresh $BBM compare --questions "$OUT/fresh.jsonl" --strategies $STRATEGIES --sc-samples 8 \
  --sc-temperature 0.7 $BACKTRACK $MODEL --batch-size 1
