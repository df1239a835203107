#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions run via trap and eval look unreachable
# Junction vs Crossbar.io, side by side, with the same load tool (`junction bench`).
#
#   bash bench/compare.sh                    # both routers, all scenarios
#   bash bench/compare.sh --junction-only    # skip Crossbar.io
#   bash bench/compare.sh --threads-sweep    # also Junction rpc/pubsub with
#                                            # `serve --threads 1` and `--threads 2`
#
# Scenarios (all over WebSocket, JSON, realm1, on 127.0.0.1):
#   rpc          1 callee, 4 callers x 16 calls in flight, 64-byte argument
#   pubsub       1 publisher, 10 subscribers, 16 publications in flight, 64 bytes
#   latency      one caller making sequential calls to one callee
#   connections  BENCH_SESSIONS sessions opened and held, router memory per session
# plus each router's idle RSS right after start (Crossbar: controller + router worker).
#
# Only one router runs at a time, and each scenario gets a freshly started router,
# so the routers never share the CPU and no scenario inherits another's state.
# Router CPU per operation comes from /proc/PID/stat of the routing process
# (`junction bench --router-pid`); see docs/benchmarks.md.
#
# Environment:
#   JUNCTION_BIN        junction binary to use (default: build it with
#                       `cargo build --release -p junction` and use target/release/junction)
#   CROSSBAR_VENV       Python venv with crossbar (default bench/.venv-crossbar; created
#                       with `python3 -m venv` + `pip install crossbar` when missing)
#   BENCH_DURATION      measured seconds per scenario (default 10)
#   BENCH_WARMUP        warmup seconds per scenario (default 2)
#   BENCH_SESSIONS      sessions in the connections scenario (default 1000)
#   BENCH_TOOL_THREADS  load generator threads, `junction bench --threads` (default 1)
#   BENCH_PORT_BASE     first of three TCP ports used on 127.0.0.1 (default 18200)
#   BENCH_OUT_DIR       where results go (default bench/results)
#
# Output: a Markdown table on stdout and in BENCH_OUT_DIR/compare-<date>.md, the
# raw JSON of every run next to it (compare-<date>.json).
set -euo pipefail

usage() {
    sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

JUNCTION_ONLY=0
THREADS_SWEEP=0
for arg in "$@"; do
    case "$arg" in
        --junction-only) JUNCTION_ONLY=1 ;;
        --threads-sweep) THREADS_SWEEP=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "compare.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done

# The exact command, with the environment overrides that were given.
COMMAND=""
for var in JUNCTION_BIN CROSSBAR_VENV BENCH_DURATION BENCH_WARMUP BENCH_SESSIONS \
    BENCH_TOOL_THREADS BENCH_PORT_BASE BENCH_OUT_DIR; do
    if [[ -n "${!var:-}" ]]; then
        COMMAND+="$var=$(printf '%q' "${!var}") "
    fi
done
COMMAND+="bash bench/compare.sh"
for arg in "$@"; do COMMAND+=" $(printf '%q' "$arg")"; done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
SESSIONS=${BENCH_SESSIONS:-1000}
TOOL_THREADS=${BENCH_TOOL_THREADS:-1}
PORT_BASE=${BENCH_PORT_BASE:-18200}
OUT_DIR=${BENCH_OUT_DIR:-$REPO/bench/results}
CROSSBAR_VENV=${CROSSBAR_VENV:-$REPO/bench/.venv-crossbar}
CB_WS_PORT=$PORT_BASE
CB_RS_PORT=$((PORT_BASE + 1))
JN_PORT=$((PORT_BASE + 2))
REALM=realm1

log() { echo "compare.sh: $*" >&2; }
die() { log "$*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/junction-compare.XXXXXX")
ROUTER_PID=""    # process-group leader of the router now running (setsid)
ROUTER_NAME=""
ROUTER_LOG=""

# Stops the running router: SIGTERM to its whole process group (Crossbar's
# controller and its worker), SIGKILL after 10 s.
stop_router() {
    [[ -n "$ROUTER_PID" ]] || return 0
    local pid=$ROUTER_PID
    ROUTER_PID=""
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    # Crossbar's worker may outlive the controller by a moment.
    for _ in $(seq 1 50); do
        pgrep -g "$pid" >/dev/null 2>&1 || break
        sleep 0.1
    done
}

cleanup() {
    local status=$?
    stop_router
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_port() { # PORT SECONDS
    local port=$1 tries=$(($2 * 10))
    for _ in $(seq 1 "$tries"); do
        port_open "$port" && return 0
        if [[ -n "$ROUTER_PID" ]] && ! kill -0 "$ROUTER_PID" 2>/dev/null; then
            tail -n 40 "$ROUTER_LOG" >&2 || true
            die "$ROUTER_NAME exited during startup (log above)"
        fi
        sleep 0.1
    done
    tail -n 40 "$ROUTER_LOG" >&2 || true
    die "$ROUTER_NAME did not open port $port within $2 s"
}

rss_kib() { # PID -> VmRSS in KiB
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# --- junction -------------------------------------------------------------

JUNCTION_SOURCE="given with JUNCTION_BIN"
if [[ -z "${JUNCTION_BIN:-}" ]]; then
    JUNCTION_SOURCE="built by compare.sh from this repo"
    log "building junction (cargo build --release -p junction)"
    (cd "$REPO" && cargo build --release -p junction >&2)
    JUNCTION_BIN=$REPO/target/release/junction
fi
[[ -x "$JUNCTION_BIN" ]] || die "no junction binary at $JUNCTION_BIN"
"$JUNCTION_BIN" bench --help >/dev/null 2>&1 ||
    die "$JUNCTION_BIN has no 'bench' subcommand (build it from a branch that has one)"

start_junction() { # THREADS (empty: the default)
    local threads=$1
    local args=(serve --listen "127.0.0.1:$JN_PORT" --realm "$REALM" --log-level warn)
    [[ -z "$threads" ]] || args+=(--threads "$threads")
    port_open "$JN_PORT" && die "port $JN_PORT on 127.0.0.1 is already in use"
    ROUTER_NAME=junction
    ROUTER_LOG=$WORK/junction.log
    setsid "$JUNCTION_BIN" "${args[@]}" >>"$ROUTER_LOG" 2>&1 </dev/null &
    ROUTER_PID=$!
    wait_port "$JN_PORT" 30
    WORKER_PID=$ROUTER_PID
    IDLE_RSS=$(rss_kib "$ROUTER_PID")
    IDLE_RSS_DETAIL="junction $IDLE_RSS KiB"
}

# --- crossbar -------------------------------------------------------------

install_crossbar() {
    if [[ -x "$CROSSBAR_VENV/bin/crossbar" ]]; then
        return
    fi
    log "installing Crossbar.io into $CROSSBAR_VENV (takes a few minutes)"
    python3 -m venv "$CROSSBAR_VENV"
    "$CROSSBAR_VENV/bin/pip" install -q --disable-pip-version-check crossbar >&2
}

# One router worker, realm1, anonymous role allowed everything, WebSocket and
# RawSocket on 127.0.0.1 with unbatched json/msgpack/cbor. No other features.
write_crossbar_config() {
    mkdir -p "$WORK/crossbar/.crossbar"
    cat >"$WORK/crossbar/.crossbar/config.json" <<EOF
{
  "version": 2,
  "controller": {},
  "workers": [
    {
      "type": "router",
      "realms": [
        {
          "name": "$REALM",
          "roles": [
            {
              "name": "anonymous",
              "permissions": [
                {
                  "uri": "",
                  "match": "prefix",
                  "allow": {"call": true, "register": true, "publish": true, "subscribe": true},
                  "disclose": {"caller": false, "publisher": false},
                  "cache": true
                }
              ]
            }
          ]
        }
      ],
      "transports": [
        {
          "type": "websocket",
          "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": $CB_WS_PORT},
          "url": "ws://127.0.0.1:$CB_WS_PORT/ws",
          "serializers": ["json", "msgpack", "cbor"],
          "auth": {"anonymous": {"type": "static", "role": "anonymous"}},
          "options": {
            "allowed_origins": ["*"],
            "allow_null_origin": true,
            "max_frame_size": 1048576,
            "max_message_size": 1048576
          }
        },
        {
          "type": "rawsocket",
          "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": $CB_RS_PORT},
          "options": {"max_message_size": 1048576},
          "serializers": ["json", "msgpack", "cbor"],
          "auth": {"anonymous": {"type": "static", "role": "anonymous"}}
        }
      ]
    }
  ]
}
EOF
}

# The router worker is the process that routes; the controller (the `crossbar
# start` process itself, $ROUTER_PID) only manages it. The worker is the child of
# the controller that Crossbar titles (setproctitle, so /proc/PID/cmdline)
#   crossbar-worker [crossbar.worker.router.RouterController]
# while the controller is titled `crossbar-controller`. Without setproctitle the
# child's command line is the worker entry point with `--worker <id>` instead.
find_crossbar_worker() { # CONTROLLER_PID
    local child cmdline
    for _ in $(seq 1 100); do
        for child in $(pgrep -P "$1" || true); do
            cmdline=$(tr '\0' ' ' <"/proc/$child/cmdline" 2>/dev/null || true)
            if [[ "$cmdline" == "crossbar-worker [crossbar.worker.router."* ||
                "$cmdline" == *" --worker "* ]]; then
                echo "$child"
                return 0
            fi
        done
        sleep 0.1
    done
    return 1
}

start_crossbar() {
    for p in "$CB_WS_PORT" "$CB_RS_PORT"; do
        port_open "$p" && die "port $p on 127.0.0.1 is already in use"
    done
    ROUTER_NAME=crossbar
    ROUTER_LOG=$WORK/crossbar.log
    # setsid: a process group of its own, so stop_router ends controller and worker.
    setsid "$CROSSBAR_VENV/bin/crossbar" start --cbdir "$WORK/crossbar/.crossbar" \
        --color false --loglevel warn >>"$ROUTER_LOG" 2>&1 </dev/null &
    ROUTER_PID=$!
    wait_port "$CB_WS_PORT" 60
    wait_port "$CB_RS_PORT" 10
    if ! WORKER_PID=$(find_crossbar_worker "$ROUTER_PID"); then
        ps -o pid,ppid,args -g "$ROUTER_PID" >&2 || true
        die "could not find Crossbar's router worker among the children of $ROUTER_PID"
    fi
    # Give the controller a moment to finish its own startup after the worker.
    sleep 1
    local controller worker
    controller=$(rss_kib "$ROUTER_PID")
    worker=$(rss_kib "$WORKER_PID")
    IDLE_RSS=$((controller + worker))
    IDLE_RSS_DETAIL="controller $controller KiB + router worker $worker KiB"
}

# --- scenarios --------------------------------------------------------------

INDEX=$WORK/runs.tsv
: >"$INDEX"
RUN_NO=0

# Runs one scenario against the router now running.
# run_scenario ROUTER VARIANT URL SCENARIO [ARGS...]
run_scenario() {
    local router=$1 variant=$2 url=$3 scenario=$4
    shift 4
    local cmd=("$JUNCTION_BIN" bench "$scenario" --url "$url" --realm "$REALM"
        --serializer json --duration "$DURATION" --warmup "$WARMUP"
        --threads "$TOOL_THREADS" --router-pid "$WORKER_PID" --json "$@")
    RUN_NO=$((RUN_NO + 1))
    local out=$WORK/run-$RUN_NO.json err=$WORK/run-$RUN_NO.err status=ok
    log "$router${variant:+ ($variant)}: $scenario"
    if ! "${cmd[@]}" >"$out" 2>"$err"; then
        status=failed
        log "  failed: $(tail -n 3 "$err" | tr '\n' ' ')"
    fi
    local shown
    shown=$(printf '%q ' "${cmd[@]}")
    shown=${shown/#"$(printf '%q' "$JUNCTION_BIN")"/junction}
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$router" "$variant" "$scenario" \
        "$status" "$out" "$err" "$IDLE_RSS" "$IDLE_RSS_DETAIL" "${shown% }" >>"$INDEX"
}

# Starts a fresh router for every scenario. bench_router ROUTER VARIANT START-COMMAND SCENARIOS...
bench_router() {
    local router=$1 variant=$2 start=$3 url
    shift 3
    case "$router" in
        crossbar) url="ws://127.0.0.1:$CB_WS_PORT/ws" ;;
        junction) url="ws://127.0.0.1:$JN_PORT/ws" ;;
    esac
    for scenario in "$@"; do
        eval "$start"
        case "$scenario" in
            rpc) run_scenario "$router" "$variant" "$url" rpc \
                --callees 1 --callers 4 --in-flight 16 --payload 64 ;;
            pubsub) run_scenario "$router" "$variant" "$url" pubsub \
                --publishers 1 --subscribers 10 --in-flight 16 --payload 64 ;;
            latency) run_scenario "$router" "$variant" "$url" latency --payload 64 ;;
            connections) run_scenario "$router" "$variant" "$url" connections \
                --sessions "$SESSIONS" --concurrency 50 --hold 1 ;;
        esac
        stop_router
    done
}

SCENARIOS=(connections rpc pubsub latency)

if ((!JUNCTION_ONLY)); then
    install_crossbar
    write_crossbar_config
    bench_router crossbar "" start_crossbar "${SCENARIOS[@]}"
fi
bench_router junction "" "start_junction ''" "${SCENARIOS[@]}"
if ((THREADS_SWEEP)); then
    for t in 1 2; do
        bench_router junction "threads=$t" "start_junction $t" rpc pubsub
    done
fi

# --- report -------------------------------------------------------------------

META=$WORK/meta.txt
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "command=$COMMAND"
    echo "nproc=$(nproc)"
    echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "kernel=$(uname -sr)"
    echo "junction_version=$("$JUNCTION_BIN" --version 2>/dev/null | head -n 1)"
    echo "junction_bin=$JUNCTION_BIN"
    echo "junction_source=$JUNCTION_SOURCE"
    echo "repo_commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if ((!JUNCTION_ONLY)); then
        echo "crossbar_version=$("$CROSSBAR_VENV/bin/crossbar" version 2>/dev/null |
            sed -n 's/^ *Crossbar.io *: *//p' | head -n 1)"
        echo "python_version=$("$CROSSBAR_VENV/bin/python" --version 2>&1)"
    fi
    echo "duration=$DURATION"
    echo "warmup=$WARMUP"
    echo "tool_threads=$TOOL_THREADS"
} >"$META"

mkdir -p "$OUT_DIR"
STAMP=$(date '+%Y-%m-%d-%H%M%S')
STATUS=0
python3 "$REPO/bench/format_compare.py" --meta "$META" --index "$INDEX" \
    --markdown "$OUT_DIR/compare-$STAMP.md" --json "$OUT_DIR/compare-$STAMP.json" || STATUS=$?
log "written $OUT_DIR/compare-$STAMP.md and compare-$STAMP.json"
((STATUS == 0)) || log "some runs failed (see the table)"
exit "$STATUS"
