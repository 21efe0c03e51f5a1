# Sourced by the queue scripts: `run NAME COMMAND...` runs one bbm command into the run directory
# $OUT/NAME (its stdout and `/usr/bin/time -v` report beside it, NAME.log and NAME.err), and skips it
# once it has its results.json; a stopped run resumes where it left off.
run() {  # name, command...: skipped once the run has its results.json
  local name=$1; shift
  [ -f "$OUT/$name/results.json" ] && return
  echo "== $(date +%T) $name"
  /usr/bin/time -v "$@" --out "$OUT/$name" > "$OUT/$name.log" 2> "$OUT/$name.err"
  echo "== $(date +%T) done $name rc=$?"
}
