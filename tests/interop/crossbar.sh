#!/usr/bin/env bash
# Development helper: run a Crossbar.io router on 127.0.0.1 to validate the
# interop suite while Junction is not runnable yet.
#
#   tests/interop/crossbar.sh start    # install (if needed), configure, start, wait until ready
#   tests/interop/crossbar.sh stop     # stop the router started by "start"
#   tests/interop/crossbar.sh status   # exit 0 if running
#   tests/interop/crossbar.sh env      # print the WAMP_* exports for this router
#
# Everything lives outside the repo:
#   CROSSBAR_VENV (default /tmp/cbvenv)                     - Python venv with crossbar
#   CROSSBAR_DIR  (default /tmp/junction-interop-crossbar)  - node dir (config, pid, log)
#   CROSSBAR_WS_PORT (default 8080), CROSSBAR_RS_PORT (default 8081)
set -euo pipefail

CROSSBAR_VENV=${CROSSBAR_VENV:-/tmp/cbvenv}
CROSSBAR_DIR=${CROSSBAR_DIR:-/tmp/junction-interop-crossbar}
WS_PORT=${CROSSBAR_WS_PORT:-8080}
RS_PORT=${CROSSBAR_RS_PORT:-8081}
CBDIR="$CROSSBAR_DIR/.crossbar"
PIDFILE="$CROSSBAR_DIR/crossbar.pid"
LOGFILE="$CROSSBAR_DIR/crossbar.log"

die() { echo "crossbar.sh: $*" >&2; exit 1; }

install_crossbar() {
    if [[ -x "$CROSSBAR_VENV/bin/crossbar" ]]; then
        return
    fi
    case "$CROSSBAR_VENV" in
        /tmp/*) ;;
        *) die "refusing to install crossbar outside /tmp (CROSSBAR_VENV=$CROSSBAR_VENV)" ;;
    esac
    echo "crossbar.sh: installing crossbar into $CROSSBAR_VENV (takes a few minutes)" >&2
    python3 -m venv "$CROSSBAR_VENV"
    "$CROSSBAR_VENV/bin/pip" install -q --disable-pip-version-check crossbar >&2
}

write_config() {
    mkdir -p "$CBDIR"
    # Realm realm1, anonymous role allowed to do everything, WebSocket on
    # /ws and RawSocket, both only on 127.0.0.1, unbatched json/msgpack/cbor.
    # Crossbar ignores CALL.Options.disclose_me / PUBLISH.Options.disclose_me
    # and discloses by role permission only, so URIs under
    # junction.interop.disclose. get disclose.caller and disclose.publisher
    # (the caller/publisher-identification tests use them).
    # Event history (wamp.subscription.get_events) needs a realm store: it is
    # kept for the prefix subscription junction.interop.history. (the store
    # creates that subscription at startup, so its ID is what a client gets
    # when it subscribes to the same prefix).
    cat >"$CBDIR/config.json" <<EOF
{
  "version": 2,
  "controller": {},
  "workers": [
    {
      "type": "router",
      "realms": [
        {
          "name": "realm1",
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
                },
                {
                  "uri": "junction.interop.disclose.",
                  "match": "prefix",
                  "allow": {"call": true, "register": true, "publish": true, "subscribe": true},
                  "disclose": {"caller": true, "publisher": true},
                  "cache": true
                }
              ]
            }
          ],
          "store": {
            "type": "memory",
            "limit": 100,
            "event-history": [
              {"uri": "junction.interop.history.", "match": "prefix", "limit": 100}
            ]
          }
        }
      ],
      "transports": [
        {
          "type": "rawsocket",
          "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": $RS_PORT},
          "options": {"max_message_size": 1048576},
          "serializers": ["json", "msgpack", "cbor"],
          "auth": {"anonymous": {"type": "static", "role": "anonymous"}}
        },
        {
          "type": "websocket",
          "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": $WS_PORT},
          "url": "ws://127.0.0.1:$WS_PORT/ws",
          "serializers": ["json", "msgpack", "cbor"],
          "auth": {"anonymous": {"type": "static", "role": "anonymous"}},
          "options": {
            "allowed_origins": ["*"],
            "allow_null_origin": true,
            "max_frame_size": 1048576,
            "max_message_size": 1048576,
            "open_handshake_timeout": 2500,
            "close_handshake_timeout": 1000
          }
        }
      ]
    }
  ]
}
EOF
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

is_running() {
    [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

start() {
    if is_running; then
        return 0
    fi
    install_crossbar
    write_config
    for p in "$WS_PORT" "$RS_PORT"; do
        if port_open "$p"; then
            die "port $p on 127.0.0.1 is already in use"
        fi
    done
    # setsid: own process group, so "stop" can end the node and its workers.
    setsid "$CROSSBAR_VENV/bin/crossbar" start --cbdir "$CBDIR" --color false \
        --loglevel warn >"$LOGFILE" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 150); do
        if port_open "$WS_PORT" && port_open "$RS_PORT"; then
            return 0
        fi
        if ! is_running; then
            cat "$LOGFILE" >&2
            die "crossbar exited during startup"
        fi
        sleep 0.2
    done
    cat "$LOGFILE" >&2
    stop
    die "crossbar did not open ports $WS_PORT/$RS_PORT within 30 s"
}

stop() {
    if [[ -f "$PIDFILE" ]]; then
        local pid
        pid=$(cat "$PIDFILE")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        rm -f "$PIDFILE"
    fi
}

print_env() {
    echo "export WAMP_WS_URL=ws://127.0.0.1:$WS_PORT/ws"
    echo "export WAMP_RS_HOST=127.0.0.1"
    echo "export WAMP_RS_PORT=$RS_PORT"
    echo "export WAMP_REALM=realm1"
    echo "export WAMP_ROUTER=crossbar"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) is_running ;;
    env) print_env ;;
    *) die "usage: $0 start|stop|status|env" ;;
esac
