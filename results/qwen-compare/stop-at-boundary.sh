#!/usr/bin/env bash
# Stop resume.sh's queue between two questions of the comparison: wait until the compare run has
# written a question's last strategy (its record count a multiple of the strategy count), then end
# the queue, so a resumed run shares no question's cache across processes.
set -u
RUNS=${RUNS:-/root/bbm-runs}
# the run being written: the dataset's questions until their run has results.json, then the fresh
D="$RUNS/c/compare"
[ -f "$D/results.json" ] && D="$RUNS/c/compare-fresh"
F="$D/samples.jsonl"
[ -f "$F" ] || { echo "$F: no such file yet"; exit 1; }
per=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['strategies']))" "$D/config.json")
n0=$(wc -l < "$F")
while :; do
  n=$(wc -l < "$F")
  [ "$n" -ne "$n0" ] && [ $((n % per)) -eq 0 ] && break
  pgrep -f "queue.sh" > /dev/null || { echo "no queue running"; exit 0; }
  sleep 2
done
pkill -f "results/qwen-compare/queue.sh"; pkill -f "bbm compare"
echo "stopped at $n records ($((n / per)) questions) $(date +%T)"
