#!/usr/bin/env bash
# Table 6 on Qwen2.5-Coder-1.5B-Instruct (llama.cpp, 2 threads), 20 traces per task, one run directory
# per locator and task, in the order they are worth having. Every bbm run resumes where it stopped,
# so rerunning this script finishes what an earlier session left. Usage, from the repository root:
#   OUT=results/qwen-table6 bash results/qwen-table6/queue.sh
set -u
BBM=${BBM:-bbm}
OUT=${OUT:-results/qwen-table6}
COMMON="--model qwen2.5-coder-1.5b --threads 2 --batch-size 8 --limit 20"
TASKS="multistep_arithmetic tracking_shuffled_objects logical_deduction dyck_languages word_sorting"
. "$(dirname "$0")/../run.sh"  # run NAME COMMAND...: one resumable run directory
for t in $TASKS; do run gold-$t $BBM backtrack --task $t --locator gold $COMMON; done
for t in $TASKS; do run gen-$t $BBM generate --task $t $COMMON; done
for t in $TASKS; do run trained-verified-$t $BBM backtrack --task $t --locator trained --traces "$OUT/gen-$t/samples.jsonl" \
  --selection verifier --accept verified $COMMON; done
for t in $TASKS; do run random-$t $BBM backtrack --task $t --locator random $COMMON; done
# the issue's prompt question: the model's chat template against the raw few-shot completion above
for t in $TASKS; do run gen-chat-$t $BBM generate --task $t --prompt-format chat $COMMON; done
for t in $TASKS; do run trained-paper-$t $BBM backtrack --task $t --locator trained --traces "$OUT/gen-$t/samples.jsonl" $COMMON; done
run simulate $BBM simulate --accuracies 0.5,0.6,0.7,0.8,0.9,1.0 $COMMON  # Figure 2; reuses the gold outcomes
for t in $TASKS; do run gold-verified-$t $BBM backtrack --task $t --locator gold --selection verifier --accept verified $COMMON; done
for t in $TASKS; do run random-verified-$t $BBM backtrack --task $t --locator random --selection verifier --accept verified $COMMON; done
