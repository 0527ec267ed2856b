#!/usr/bin/env bash
# The seed's story, told with the `hotswap` CLI against a live node:
# a KV process holds a = 42; a client keeps calling it; we hot swap it to v1 (which logs
# every get and put); a = 42 is still there, v1's log lines appear, and no call was lost.
# Then a swap to a broken version is refused and the process serves on.
set -euo pipefail
cd "$(dirname "$0")/.."

HOTSWAP=${HOTSWAP:-target/debug/hotswap}
GUESTS=guests/rust/target/wasm32-wasip2/release
export HOTSWAP_NODE=${HOTSWAP_NODE:-127.0.0.1:7420}
LOG=$(mktemp -t hotswap-demo-node.XXXXXX)
CLIENT_LOG=$(mktemp -t hotswap-demo-client.XXXXXX)

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '\033[36m$ hotswap %s\033[0m\n' "$*"; "$HOTSWAP" "$@"; }
# The node's log lines that match $1 (a grep pattern), indented.
node_log() { grep -E "$1" "$LOG" | sed 's/^/    node | /' || true; }

cleanup() {
    [[ -n "${CLIENT_PID:-}" ]] && kill "$CLIENT_PID" 2>/dev/null || true
    [[ -n "${NODE_PID:-}" ]] && kill -INT "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null || true
    rm -f "$LOG" "$CLIENT_LOG"
}
trap cleanup EXIT

if "$HOTSWAP" ps >/dev/null 2>&1; then
    echo "something already answers on $HOTSWAP_NODE; stop it or set HOTSWAP_NODE" >&2
    exit 1
fi

bold "1. Start a node running kv v0 (like starting an OTP application)"
printf '\033[36m$ hotswap run demo/node.toml &\033[0m\n'
NO_COLOR=1 "$HOTSWAP" run demo/node.toml >"$LOG" 2>&1 &
NODE_PID=$!
for _ in $(seq 100); do "$HOTSWAP" ps >/dev/null 2>&1 && break; sleep 0.1; done
run ps

bold "2. A client puts a = 42"
run call kv '{"op":"put","key":"a","value":42}'
run call kv '{"op":"get","key":"a"}'

bold "3. Another client keeps calling, every 10 ms, for the whole demo"
(
    ok=0; failed=0
    trap 'echo "$ok $failed" >"$CLIENT_LOG"; exit 0' TERM
    while true; do
        if "$HOTSWAP" call kv '{"op":"get","key":"a"}' >/dev/null 2>&1; then ok=$((ok+1)); else failed=$((failed+1)); fi
        sleep 0.01
    done
) &
CLIENT_PID=$!
sleep 1
echo "    (client running)"

bold "4. Patch the code: v1 = v0 plus a log line on every get and put. Hot swap to it."
run swap kv "$GUESTS/kv_v1.wasm" --extra 'added logging'

bold "5. Same process, same state, new code"
run call kv '{"op":"get","key":"a"}'
run call kv '{"op":"put","key":"b","value":"hello"}'
run ps
sleep 0.3
echo "  the node's log: the swap, then v1's new log line for the put (note vsn=\"1\"):"
node_log 'swapped|put b'

bold "6. A swap to a version whose code-change traps is refused; v1 serves on, untouched"
run swap kv "$GUESTS/kv_migrate_trap.wasm" || true
run call kv '{"op":"get","key":"a"}'
run state kv

bold "7. And back: a first-class downgrade to v0, state intact"
run swap kv "$GUESTS/kv_v0.wasm" --downgrade
run call kv '{"op":"get","key":"b"}'

kill -TERM "$CLIENT_PID"; wait "$CLIENT_PID" 2>/dev/null || true; CLIENT_PID=
read -r ok failed <"$CLIENT_LOG"
bold "The client's view: $ok calls answered, $failed failed, across two swaps and a refused one"
[[ "$failed" == 0 ]] || { echo "calls failed during the demo" >&2; exit 1; }
