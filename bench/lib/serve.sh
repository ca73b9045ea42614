# Sourced by the bench scripts (after setting repo_root): one Cairn server on a free local port, the CPU
# time it has used, and commands to it.

# Exits with a message naming SCRIPT unless every TOOL is on the PATH.
bench_require_tools() { # SCRIPT TOOL...
    local script=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$script: $tool is not installed" >&2; exit 1; }
    done
}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Runs `cairn ARG...` in the server of $store through its admin socket (bench/lib/cairn_admin.py): one
# Python process, no JVM start.
admin() { python3 "$repo_root/bench/lib/cairn_admin.py" "$store" "$@"; }

# Serves STORE with bin/cairn serve on a free port of 127.0.0.1, its output in LOG, and returns once export
# EXPORT answers (or fails with the server's output). Sets server_pid and port.
bench_serve() { # STORE LOG EXPORT
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$repo_root/bin/cairn" serve "$1" --listen "127.0.0.1:$port" >"$2" 2>&1 &
    server_pid=$!
    local i
    for ((i = 0; i < 300; i++)); do
        nbdinfo --size "nbd://127.0.0.1:$port/$3" >/dev/null 2>&1 && return 0
        kill -0 "$server_pid" 2>/dev/null || { cat "$2" >&2; return 1; }
        sleep 0.2
    done
    echo "the server did not serve $3 within 60 s; see $2" >&2
    return 1
}

# CPU time the server process has used so far, in clock ticks (user + system, all its threads).
server_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; }
