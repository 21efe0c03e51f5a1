#!/usr/bin/env bash
# Restart queue.sh in the background on a development machine, where a session's processes die with
# it. The queue runs from a detached worktree of main (/root/bbm-cmp), so editing the working copy does
# not change the code of a running comparison; its run directories (and the fresh questions) live in
# /root/bbm-runs/c, seeded from this folder when a new machine lacks them (never copied over live
# ones). Usage, from the repository root, with the project's venv built:
#   bash results/qwen-compare/resume.sh        # the queue's progress: /root/bbm-runs/queue.log
#   bash results/qwen-compare/stop-at-boundary.sh   # stop it after a question's last strategy
set -eu
ROOT=$(pwd)
RUNS=${RUNS:-/root/bbm-runs}
WT=${WT:-/root/bbm-cmp}
mkdir -p "$RUNS/c"
for d in results/qwen-compare/compare results/qwen-compare/compare-fresh results/qwen-compare/find-*/ \
         results/qwen-compare/fresh*.jsonl; do
  d=${d%/}; name=$(basename "$d")
  [ -e "$d" ] || continue  # compare-fresh and its questions: once a session has committed them
  [ -e "$RUNS/c/$name" ] || cp -r "$d" "$RUNS/c/$name"
done
if [ -d "$WT" ]; then git -C "$WT" checkout -q --detach main; else git worktree add -q --detach "$WT" main; fi
# PYTHONPATH puts the worktree's modules (and packaged data) before the editable install's
(cd "$WT" && PYTHONPATH="$WT" OUT="$RUNS/c" BBM="$ROOT/.venv/bin/bbm" \
  nohup bash results/qwen-compare/queue.sh >> "$RUNS/queue.log" 2>&1 &)
echo "queue started from $(git -C "$WT" log --oneline -1); log: $RUNS/queue.log"
