#!/usr/bin/env bash
# Installs the interop test clients (idempotent, any cwd, quiet on success):
#   tests/interop/.venv         Autobahn|Python + pytest (python/requirements.txt)
#   tests/interop/js/node_modules  Autobahn|JS, wampy.js, ws (npm ci, js/package-lock.json)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV="$HERE/.venv"
REQ="$HERE/python/requirements.txt"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

run_quiet() {
    if ! "$@" >"$LOG" 2>&1; then
        echo "setup.sh: failed: $*" >&2
        cat "$LOG" >&2
        exit 1
    fi
}

command -v python3 >/dev/null || { echo "setup.sh: python3 not found" >&2; exit 1; }
command -v node >/dev/null || { echo "setup.sh: node not found" >&2; exit 1; }
command -v npm >/dev/null || { echo "setup.sh: npm not found" >&2; exit 1; }

# --- Python -----------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    run_quiet python3 -m venv "$VENV"
fi
# reinstall only when requirements.txt changed since the last successful run
STAMP="$VENV/.requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
    run_quiet "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ"
    echo "$want" >"$STAMP"
fi

# --- Node ---------------------------------------------------------------------
# autobahn 26 declares engines.node >= 22 (for the global WebSocket); on older
# Node the suite installs `ws` as that global, so the engine warning is harmless.
JS="$HERE/js"
STAMP_JS="$JS/node_modules/.package-lock.sha256"
want_js=$(sha256sum "$JS/package-lock.json" | cut -d' ' -f1)
if [[ ! -f "$STAMP_JS" || "$(cat "$STAMP_JS")" != "$want_js" ]]; then
    (cd "$JS" && run_quiet npm ci --no-audit --no-fund --loglevel=error)
    echo "$want_js" >"$STAMP_JS"
fi
