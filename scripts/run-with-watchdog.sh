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

# Line-buffered stdio (stdbuf, inherited by the test binary) so the log shows the last test that printed. The run
# gets a process group of its own (setsid), so the watchdog ends exactly what it started, by id: never another
# user's or another run's processes that happen to have a similar command line.
setsid stdbuf -oL -eL "$@" > "$log" 2>&1 &
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

# Every process descended from the run (by parent id in /proc), the run itself first.
descendants() {
    local -a queue=("$pid") out=()
    while ((${#queue[@]})); do
        local p=${queue[0]}
        queue=("${queue[@]:1}")
        out+=("$p")
        local child
        for child in $(ps -o pid= --ppid "$p" 2>/dev/null); do queue+=("$child"); done
    done
    echo "${out[@]}"
}

diagnose() {
    echo
    echo "== WATCHDOG: the test run passed its ${limit} s deadline"
    echo "== tests started and not finished:"
    unfinished
    echo "== processes of this run:"
    local pids
    pids=$(descendants)
    # shellcheck disable=SC2086
    ps -o pid,ppid,etimes,stat,args --forest -p "${pids// /,}" | cut -c1-160
    local binary
    for binary in $pids; do
        [[ $(cat "/proc/$binary/comm" 2>/dev/null) == *xctest* || $(tr '\0' ' ' < "/proc/$binary/cmdline" 2>/dev/null) == *VigilPackageTests.xctest* ]] || continue
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
        # The run's own processes only: its process group, then any descendant that left the group.
        all=$(descendants)
        kill -9 -- "-$pid" 2>/dev/null || true
        # shellcheck disable=SC2086
        kill -9 $all 2>/dev/null || true
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
