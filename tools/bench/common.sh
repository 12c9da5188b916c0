# Sourced by tools/bench-*: the build's programs, free ports, a scratch directory, and the
# processes a script starts, each stopped by its PID when the script exits.
# The sourcing script sets SCRIPT (its name, for messages) and USAGE_LINES (e.g. 2,12).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${HERD_BUILD_DIR:-$ROOT/build}
HERDCTL=$BUILD/src/herdctl
HERD_ECHO=$BUILD/tools/bench/herd-echo
RUN_LIMIT=${BENCH_RUN_LIMIT:-300}  # seconds one load run may take before it is killed

die() { echo "$SCRIPT: $*" >&2; exit 1; }
usage() { sed -n "${USAGE_LINES}s/^# \{0,1\}//p" "$0"; exit "${1:-2}"; }

need_build() {
  for p in "$HERDCTL" "$HERD_ECHO" "$@"; do
    p=${p%% *}  # a server's options may follow its path: "build/src/herd-server --threads 2"
    [ -x "$p" ] || die "$p is missing: run tools/dev build first"
  done
}

# Installs a missing Debian package the way tools/dev does (as root, or through sudo).
need_package() {
  local package=$1 command=$2
  command -v "$command" >/dev/null && return
  echo "$SCRIPT: installing the Debian package $package" >&2
  local root=()
  [ "$(id -u)" -eq 0 ] || root=(sudo)
  "${root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null ||
    die "$command is missing; install it with: apt-get install -y $package"
}

T=$(mktemp -d "/tmp/$SCRIPT.XXXXXX")
STARTED=()  # PIDs of what this script started and has not stopped yet

cleanup() {
  local pid
  for pid in "${STARTED[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: runs COMMAND in the background, output in $T/NAME.out; sets PID.
start() {
  local name=$1
  shift
  : >"$T/$name.out"  # now, not in the background: wait_for must not read the last run's output
  "$@" >>"$T/$name.out" 2>&1 &
  PID=$!
  STARTED+=("$PID")
}

# Stops a process started by `start`: SIGTERM, then SIGKILL after 10 s.
stop() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget "$pid"
}

forget() {
  local kept=() i
  for i in "${STARTED[@]}"; do [ "$i" = "$1" ] || kept+=("$i"); done
  STARTED=("${kept[@]}")
}

# wait_for TEXT NAME SECONDS: waits until $T/NAME.out contains TEXT; fails after SECONDS.
wait_for() {
  local deadline=$((SECONDS + $3))
  until grep -q -- "$1" "$T/$2.out" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || die "no \"$1\" from $2 within $3 s: $(tail -3 "$T/$2.out")"
    sleep 0.05
  done
}

# free_ports [N]: N distinct free ports on 127.0.0.1 (default 1), one a line.
free_ports() {
  python3 - "${1:-1}" <<'PY'
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in sockets))
PY
}

# Starts herd-echo on a free port; sets ECHO_PORT.
start_echo() {
  start echo "$HERD_ECHO" 0
  wait_for listening echo 10
  ECHO_PORT=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$T/echo.out")
}

# bench ARGS...: one herdctl bench run, bounded in time; its JSON object into RESULT. It runs
# in the background so that a signal to the script stops it at once (through the exit trap).
bench() {
  timeout -k 5 "$RUN_LIMIT" "$HERDCTL" bench --json "$@" >"$T/result.json" 2>>"$T/bench.err" &
  local pid=$!
  STARTED+=("$pid")
  wait "$pid" || echo "$SCRIPT: herdctl bench $* failed: $(tail -1 "$T/bench.err")" >&2
  forget "$pid"
  RESULT=$(cat "$T/result.json")
}

# field JSON KEY: a field of bench's JSON ("" when the run failed).
field() {
  python3 -c 'import json, sys
try: print(json.loads(sys.argv[1])[sys.argv[2]])
except Exception: print("")' "$1" "$2"
}

# rps JSON: the requests/s of a run in which every request was answered, not refused; or "".
rps() {
  python3 -c 'import json, sys
try:
    r = json.loads(sys.argv[1])
    print(r["rps"] if r["errors"] == 0 and r["refused"] == 0 else "")
except Exception: print("")' "$1"
}

# ratio A B: A/B with two decimals, or "n/a".
ratio() {
  python3 -c 'import sys
a, b = sys.argv[1:]
print(f"{float(a) / float(b):.2f}" if a and b and float(b) > 0 else "n/a")' "$1" "$2"
}

# summary FILE TARGET: the median and range of the numbers in FILE, one a line.
summary() {
  python3 - "$1" "${2:-}" <<'PY'
import statistics, sys
path, target = sys.argv[1:]
try:
    values = [float(x) for x in open(path) if x.strip() not in ("", "n/a")]
except FileNotFoundError:
    values = []
if not values:
    print("no round completed")
else:
    text = f"median {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}), {len(values)} rounds"
    print(text + (f"; target {target}" if target else ""))
PY
}
