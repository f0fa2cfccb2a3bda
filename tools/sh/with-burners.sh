#!/usr/bin/env bash
# with-burners.sh N COMMAND...: run COMMAND with N CPU-bound processes beside it (a busy
# machine), then stop them; exits with COMMAND's status.  `make test-loaded` uses it to
# check that the suite holds when the machine is not idle (docs/development.md).
set -uo pipefail
n=$1
shift
pids=()
stop() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; }
trap stop EXIT INT TERM
for _ in $(seq 1 "$n"); do
  python3 -c 'while True: pass' &
  pids+=($!)
done
echo "with-burners: $n CPU-bound processes running beside: $*"
# the checks' summary line says it ran beside them (stringcare.dev.check)
STRINGCARE_BURNERS=$n "$@"
status=$?
stop
trap - EXIT
exit $status
