#!/usr/bin/env bash
# Runs the interop suite (Autobahn|Python, then Autobahn|JS) against a router
# that is ALREADY running; it never starts one itself, except with --crossbar.
#
#   WAMP_WS_URL=ws://127.0.0.1:8080/ws WAMP_RS_HOST=127.0.0.1 WAMP_RS_PORT=8081 \
#   WAMP_REALM=realm1 tests/interop/run.sh
#   (WAMP_ROUTER=junction|crossbar, default junction: see README)
#
#   tests/interop/run.sh --crossbar   # development: start Crossbar.io on 127.0.0.1
#                                     # (tests/interop/crossbar.sh), run, stop it
# Extra arguments after the options are passed to pytest (e.g. -k rpc -x).
# Exit status: non-zero if either suite failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

use_crossbar=0
if [[ "${1:-}" == "--crossbar" ]]; then
    use_crossbar=1
    shift
fi

"$HERE/setup.sh"

if [[ $use_crossbar == 1 ]]; then
    started_here=0
    if ! "$HERE/crossbar.sh" status; then
        "$HERE/crossbar.sh" start
        started_here=1
    fi
    if [[ $started_here == 1 ]]; then
        trap '"$HERE/crossbar.sh" stop' EXIT
    fi
    eval "$("$HERE/crossbar.sh" env)"
fi

export WAMP_WS_URL=${WAMP_WS_URL:-ws://127.0.0.1:8080/ws}
export WAMP_RS_HOST=${WAMP_RS_HOST:-127.0.0.1}
export WAMP_RS_PORT=${WAMP_RS_PORT:-8081}
export WAMP_REALM=${WAMP_REALM:-realm1}
# which router this is: a few tests expect Crossbar's known deviations from
# the spec (README: "Router-specific expectations"); anything else = junction
export WAMP_ROUTER=${WAMP_ROUTER:-junction}
PY="$HERE/.venv/bin/python"

echo "interop: router ($WAMP_ROUTER) ws=$WAMP_WS_URL rawsocket=$WAMP_RS_HOST:$WAMP_RS_PORT realm=$WAMP_REALM"

# fail fast (one clear message instead of a hundred time-outs) if the router
# can't open a session at all
(cd "$HERE/python" && "$PY" preflight.py)

status=0

echo "interop: Autobahn|Python suite"
(cd "$HERE/python" && "$PY" -m pytest -q "$@") || status=1

echo "interop: Autobahn|JS suite"
(cd "$HERE/js" && node --test ./*.test.mjs) || status=1

if [[ $status != 0 ]]; then
    echo "interop: FAILED" >&2
fi
exit $status
