#!/usr/bin/env bash
# One kv process, hot swapped across languages while a client keeps calling it:
# Rust v0 -> Python -> JavaScript -> C -> Rust v1. A state blob is data (JSON here), so any
# language's version of the module can take over from any other's. At each step the state is
# intact and the pause is shown. Then a crash in each language ends only its own process.
set -euo pipefail
cd "$(dirname "$0")/.."

HOTSWAP=${HOTSWAP:-target/debug/hotswap}
RUST=guests/rust/target/wasm32-wasip2/release
OUT=guests/out
export HOTSWAP_NODE=${HOTSWAP_NODE:-127.0.0.1:7421}
DIR=$(mktemp -d -t hotswap-polyglot.XXXXXX)

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '\033[36m$ hotswap %s\033[0m\n' "$*"; "$HOTSWAP" "$@"; }

cleanup() {
    [[ -n "${CLIENT_PID:-}" ]] && kill "$CLIENT_PID" 2>/dev/null || true
    [[ -n "${NODE_PID:-}" ]] && kill -INT "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

for file in "$OUT/kv_py.wasm" "$OUT/kv_js.wasm" "$OUT/kv_c.wasm"; do
    [[ -f $file ]] || { echo "$file is missing: run \`just guests\`" >&2; exit 1; }
done
if "$HOTSWAP" ps >/dev/null 2>&1; then
    echo "something already answers on $HOTSWAP_NODE; stop it or set HOTSWAP_NODE" >&2
    exit 1
fi

# Every language's kv is loaded at start, so the swaps below do not wait for a compile (the
# node's compile cache makes the next start fast).
cat >"$DIR/node.toml" <<TOML
control = "$HOTSWAP_NODE"

[[module]]
name = "kv"
file = "$PWD/$RUST/kv_v0.wasm"

[[process]]
name = "kv"
module = "kv"
TOML

bold "1. A node with kv v0 (Rust); loading the Python and JavaScript versions compiles them once"
NO_COLOR=1 "$HOTSWAP" run "$DIR/node.toml" >"$DIR/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 100); do "$HOTSWAP" ps >/dev/null 2>&1 && break; sleep 0.1; done
for file in "$OUT/kv_py.wasm" "$OUT/kv_js.wasm" "$OUT/kv_c.wasm" "$RUST/kv_v1.wasm"; do
    run load "$file" --module kv | tail -n 1
done

bold "2. Some state, in Rust"
run call kv '{"op":"put","key":"a","value":42}'

bold "3. A client calls all along (a put every 10 ms, each reply checked)"
(
    n=0; bad=0
    trap 'echo "$n $bad" >"$DIR/client"; exit 0' TERM
    while true; do
        reply=$("$HOTSWAP" call kv "{\"op\":\"put\",\"key\":\"counter\",\"value\":$n}" 2>&1) || reply=error
        expected=$([[ $n == 0 ]] && echo null || echo $((n - 1)))
        [[ "$reply" == "$expected" ]] || bad=$((bad + 1))
        n=$((n + 1))
        sleep 0.01
    done
) &
CLIENT_PID=$!
sleep 0.5

for step in "kv_py.wasm:python" "kv_js.wasm:javascript" "kv_c.wasm:c" "kv_v1.wasm:rust"; do
    file=${step%%:*}; language=${step##*:}
    [[ $file == kv_v1.wasm ]] && path=$RUST/$file || path=$OUT/$file
    bold "-> $language"
    run swap kv "$path"
    run call kv '{"op":"get","key":"a"}'
done

kill -TERM "$CLIENT_PID"; wait "$CLIENT_PID" 2>/dev/null || true; CLIENT_PID=
read -r calls bad <"$DIR/client"
bold "4. The state after four languages, and the client's view"
run state kv
echo "client: $calls calls, $bad wrong or failed replies"

bold "5. A crash in each language ends only that process"
for vsn in py-1 js-1 c-1; do
    "$HOTSWAP" spawn kv --vsn "$vsn" --name "crash-$vsn" >/dev/null
    run call "crash-$vsn" '{"op":"crash"}' || true
done
run ps
[[ "$bad" == 0 ]] || { echo "calls failed during the demo" >&2; exit 1; }
