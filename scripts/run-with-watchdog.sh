#!/usr/bin/env bash
# run-with-watchdog.sh SECONDS COMMAND...: runs COMMAND (a Swift Testing run) with line-buffered output and a
# deadline. Past the deadline it prints which tests started and never finished, the test processes, and the
# stack of every thread of the test binary (gdb, when installed), kills the run with everything it started,
# and exits 1. Otherwise it exits with COMMAND's status.
set -uo pipefail
limit=$1
shift
log=$(mktemp /tmp/vigil-test-log.XXXXXX)
trap 'rm -f "$log"' EXIT

# Line-buffered stdio (stdbuf, inherited by the test binary) so the log shows the last test that printed.
stdbuf -oL -eL "$@" > "$log" 2>&1 &
pid=$!
tail -n +1 -f --pid="$pid" "$log" &
tailer=$!

# Tests started but not finished: Swift Testing prints "◇ Test NAME started." and later
# "✔ Test NAME passed after …" or "✘ Test NAME failed after …" (ANSI colours stripped).
unfinished() {
    sed 's/\x1b\[[0-9;]*m//g' "$log" | awk '
        /◇ Test .* started\.$/ { sub(/^.*◇ Test /, ""); sub(/ started\.$/, ""); if ($0 !~ /^(run|case)/) open[$0] = 1; next }
        /[✔✘] Test .* (passed|failed)/ { line = $0; sub(/^.*[✔✘] Test /, "", line); sub(/ (with [0-9]+ test cases? )?(passed|failed).*$/, "", line); delete open[line] }
        END { for (t in open) print "  " t }'
}

diagnose() {
    echo
    echo "== WATCHDOG: the test run passed its ${limit} s deadline"
    echo "== tests started and not finished:"
    unfinished
    echo "== processes:"
    ps -eo pid,ppid,etimes,stat,args --forest | grep -E "swift-test|xctest|swtpm|vigil|tpm2_" | grep -v grep | cut -c1-160
    local binary
    for binary in $(pgrep -f 'VigilPackageTests.xctest'); do
        if command -v gdb > /dev/null; then
            echo "== threads of $binary:"
            timeout 120 gdb -p "$binary" -batch -ex "thread apply all bt 25" 2>/dev/null | grep -E '^(Thread|#)' | cut -c1-300
        else
            echo "== (gdb is not installed: no stacks for $binary)"
        fi
    done
}

deadline=$((SECONDS + limit))
while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS >= deadline )); then
        diagnose
        pkill -9 -f 'VigilPackageTests.xctest' || true
        pkill -9 -f 'swtpm socket .*vigil-swtpm-' || true
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null
        wait "$tailer" 2>/dev/null
        echo "== WATCHDOG: run stopped after ${limit} s"
        exit 1
    fi
    sleep 2
done
wait "$pid"
status=$?
wait "$tailer" 2>/dev/null
exit $status
