#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, conformance vectors, integration over
# loopback sockets), then the interop suites with Autobahn|Python and Autobahn|JS
# against a freshly built `junction serve`. Installs what it needs on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Rust tests"
# Library, binary and integration tests; the criterion benchmarks are measurements,
# run on demand with `cargo bench` (clippy still builds them).
cargo test --workspace --lib --bins --tests

echo "== Interop: installing Autobahn|Python and Autobahn|JS"
bash tests/interop/setup.sh

echo "== Interop: starting junction"
cargo build -q -p junction
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
WS_PORT=$(port)
RS_PORT=$(port)
WSS_PORT=$(port)
SOCK_DIR=$(mktemp -d)
LOG="$SOCK_DIR/junction.log"
# TLS: a throw-away CA and a server certificate for localhost/127.0.0.1, and a
# config with a plain and a TLS WebSocket listener (RawSocket on both ports) plus
# the interop realm settings.
bash tests/interop/tls-certs.sh "$SOCK_DIR"
{
  printf '[[listener]]\ntype = "websocket"\naddress = "127.0.0.1:%s"\npath = "/ws"\n\n' "$WS_PORT"
  printf '[[listener]]\ntype = "websocket"\naddress = "127.0.0.1:%s"\npath = "/ws"\n' "$WSS_PORT"
  printf '[listener.tls]\ncert = "server.pem"\nkey = "server.key"\n\n'
  cat tests/interop/junction.toml
} >"$SOCK_DIR/junction.toml"
./target/debug/junction serve --config "$SOCK_DIR/junction.toml" --rawsocket "127.0.0.1:$RS_PORT" \
  --unix "$SOCK_DIR/junction.sock" --log-level warn >"$LOG" 2>&1 &
JUNCTION_PID=$!
cleanup() { kill "$JUNCTION_PID" 2>/dev/null || true; wait "$JUNCTION_PID" 2>/dev/null || true; rm -rf "$SOCK_DIR"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  (echo >"/dev/tcp/127.0.0.1/$WS_PORT") 2>/dev/null && break
  sleep 0.1
done

export WAMP_WS_URL="ws://127.0.0.1:$WS_PORT/ws"
export WAMP_RS_HOST=127.0.0.1
export WAMP_RS_PORT="$RS_PORT"
export WAMP_RS_SHARED_PORT="$WS_PORT"
export WAMP_UNIX_PATH="$SOCK_DIR/junction.sock"
export WAMP_REALM=realm1
export WAMP_WSS_URL="wss://localhost:$WSS_PORT/ws"
export WAMP_TLS_CA="$SOCK_DIR/ca.pem"
status=0
bash tests/interop/run.sh || status=$?
if ! kill -0 "$JUNCTION_PID" 2>/dev/null; then
  echo "junction exited during the interop tests:"; cat "$LOG"; exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "== junction log"; tail -n 50 "$LOG"
fi
exit "$status"
