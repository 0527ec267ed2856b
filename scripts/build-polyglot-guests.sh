#!/usr/bin/env bash
# Builds the kv module in Python, JavaScript and C into guests/out/kv_py.wasm, kv_js.wasm and
# kv_c.wasm: components of the `hotswap:otp/process` world (wit/otp), each a drop-in hot swap
# for the Rust kv and for each other. A component is rebuilt only when one of its sources (or the
# contract, or this script) is newer than it. The toolchains come from scripts/setup-toolchains.sh.
#
#   scripts/build-polyglot-guests.sh            build all three
#   scripts/build-polyglot-guests.sh py c       build some (py, js, c)
#   scripts/build-polyglot-guests.sh test       run the guest helpers' unit tests natively
#   FORCE=1 scripts/build-polyglot-guests.sh    rebuild even if up to date
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=guests/out
WIT=wit/otp
WORLD=process
PY_VENV=guests/python/.venv
JS_BIN=guests/js/node_modules/.bin

# Seconds since $1 (a `date +%s.%N`), for the timing lines.
since() { awk -v start="$1" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f s", now - start }'; }

die() {
    echo "build-polyglot-guests: $*" >&2
    exit 1
}

need() { # need FILE-OR-COMMAND WHAT: fail with a hint when a toolchain piece is missing
    [[ -x "$1" ]] || command -v "$1" >/dev/null 2>&1 ||
        die "$2 is missing ($1): run scripts/setup-toolchains.sh"
}

# True when $1 does not exist or anything after it (files or directories) has a newer file.
stale() {
    local out=$1
    shift
    [[ -n "${FORCE:-}" || ! -f "$out" ]] && return 0
    [[ -n "$(find "$@" -newer "$out" -type f -not -path '*/node_modules/*' -not -path '*/.venv/*' \
        -not -path '*/__pycache__/*' -print -quit)" ]]
}

# Refuses a component that imports what the host does not link (wasi:http).
check_imports() {
    local wit
    wit=$(wasm_tools component wit "$1")
    if grep -q 'import wasi:http/' <<<"$wit"; then
        rm -f "$1"
        die "$1 imports wasi:http, which a hotswap node does not provide: $(grep 'import wasi:http/' <<<"$wit" | tr -d ' ;' | tr '\n' ' ')"
    fi
}

wasm_tools() {
    need "$PY_VENV/bin/wasm-tools" "wasm-tools"
    "$PY_VENV/bin/wasm-tools" "$@"
}

report() { # report NAME FILE START
    printf '  %-12s %8s KB  %s\n' "$1" "$(($(stat -c %s "$2") / 1024))" "$(since "$3")"
}

build_py() {
    local out=$OUT/kv_py.wasm
    if ! stale "$out" guests/python/kv.py guests/python/hotswap_guest "$WIT" "$0"; then
        echo "  kv_py.wasm   up to date"
        return
    fi
    need "$PY_VENV/bin/componentize-py" "componentize-py"
    local start
    start=$(date +%s.%N)
    (cd guests/python && .venv/bin/componentize-py --wit-path ../../"$WIT" --world "$WORLD" \
        componentize kv --python-path . --output ../out/kv_py.wasm.tmp >/dev/null)
    check_imports "$out.tmp" # before the move: a refused component must not look up to date
    mv "$out.tmp" "$out"
    report kv_py.wasm "$out" "$start"
}

build_js() {
    local out=$OUT/kv_js.wasm
    if ! stale "$out" guests/js/kv.js guests/js/hotswap-guest.js guests/js/json.js guests/js/package-lock.json \
        "$WIT" "$0"; then
        echo "  kv_js.wasm   up to date"
        return
    fi
    need "$JS_BIN/componentize-js" "componentize-js (npm ci in guests/js)"
    local start
    start=$(date +%s.%N)
    # http and fetch-event off: StarlingMonkey would import wasi:http, which the node does not
    # link (a process reaches nothing but the runtime API and the WASI it is granted).
    (cd guests/js && node_modules/.bin/componentize-js kv.js --wit ../../"$WIT" --world-name "$WORLD" \
        --disable http fetch-event --out ../out/kv_js.wasm.tmp >/dev/null)
    check_imports "$out.tmp" # before the move: a refused component must not look up to date
    mv "$out.tmp" "$out"
    report kv_js.wasm "$out" "$start"
}

build_c() {
    local out=$OUT/kv_c.wasm build=$OUT/build/c
    if ! stale "$out" guests/c/kv.c guests/c/hotswap_guest.c guests/c/hotswap_guest.h guests/c/json.c guests/c/json.h \
        "$WIT" "$0"; then
        echo "  kv_c.wasm    up to date"
        return
    fi
    need clang "clang"
    need wit-bindgen "wit-bindgen"
    local start
    start=$(date +%s.%N)
    rm -rf "$build"
    mkdir -p "$build"
    wit-bindgen c "$WIT" --world "$WORLD" --out-dir "$build" >"$build/wit-bindgen.log" 2>&1 ||
        { cat "$build/wit-bindgen.log" >&2; die "wit-bindgen c failed"; }
    # A reactor (no main); -lc-printscan-long-double keeps wasi-libc's printf and strtod from
    # linking stderr for their "long double is disabled" message, so the module needs no WASI
    # at all: the component imports only hotswap:otp/runtime, and no WASI adapter is needed.
    clang --target=wasm32-wasi -mexec-model=reactor -O2 -std=c11 -Wall -Wextra -Werror \
        -I "$build" -I guests/c \
        guests/c/kv.c guests/c/hotswap_guest.c guests/c/json.c "$build/process.c" \
        "$build/process_component_type.o" -lc-printscan-long-double -Wl,--strip-debug \
        -o "$build/kv_c.core.wasm"
    if wasm_tools print "$build/kv_c.core.wasm" | grep -q '(import "wasi_snapshot_preview1"'; then
        die "the C module imports WASI preview 1 ($(wasm_tools print "$build/kv_c.core.wasm" |
            grep -o '(import "wasi_snapshot_preview1" "[a-z_]*"' | cut -d'"' -f4 | tr '\n' ' ')): what libc function pulled it in?"
    fi
    wasm_tools component new "$build/kv_c.core.wasm" -o "$out.tmp"
    check_imports "$out.tmp" # before the move: a refused component must not look up to date
    mv "$out.tmp" "$out"
    report kv_c.wasm "$out" "$start"
}

# Runs a test command; prints its summary lines (those matching $2), or all of its output when it
# fails.
summarise() { # summarise NAME PATTERN COMMAND...
    local name=$1 pattern=$2 log status=0
    shift 2
    log=$(mktemp -t hotswap-guest-tests.XXXXXX)
    "$@" >"$log" 2>&1 || status=$?
    if [[ $status == 0 ]]; then
        echo "$name: $(grep -E "$pattern" "$log" | tr '\n' ' ')"
    else
        echo "$name: FAILED"
        cat "$log"
    fi
    rm -f "$log"
    return $status
}

# The helpers' unit tests, run natively: Python on the venv's CPython, JavaScript on node, C
# with the host's C compiler (with AddressSanitizer, leaks included, when it has it), the C glue
# over bindings generated for the host's pointer size and the host's imports stubbed.
run_tests() {
    local failed=0 cc=${CC:-cc} dir sanitize=-fsanitize=address,undefined
    need "$PY_VENV/bin/python" "the Python venv"
    need wit-bindgen "wit-bindgen"
    summarise python '^Ran |^OK' \
        bash -c 'cd guests/python && .venv/bin/python -m unittest discover -s tests -t .' || failed=1
    summarise javascript '^# (pass|fail) ' \
        bash -c 'cd guests/js && node --import ./test/register.js --test test/*.test.js' || failed=1
    dir=$(mktemp -d -t hotswap-c-tests.XXXXXX)
    echo 'int main(void){return 0;}' | "$cc" -x c - "$sanitize" -o "$dir/probe" 2>/dev/null || sanitize=
    wit-bindgen c "$WIT" --world "$WORLD" --out-dir "$dir" >/dev/null 2>&1 || die "wit-bindgen c failed"
    local flags="-std=c11 -Wall -Wextra -Werror -Wno-attributes -g $sanitize -I $dir -I guests/c"
    summarise "c json" 'passed, ' bash -c "$cc $flags -o $dir/test_json guests/c/test/test_json.c guests/c/json.c -lm &&
        $dir/test_json guests/c/test/json_cases.txt" || failed=1
    summarise "c kv" 'passed, ' bash -c "$cc $flags -o $dir/test_kv guests/c/test/test_kv.c guests/c/kv.c \
        guests/c/hotswap_guest.c guests/c/json.c $dir/process.c -lm && $dir/test_kv" || failed=1
    rm -rf "$dir"
    return $failed
}

mkdir -p "$OUT"
[[ -f $OUT/.gitignore ]] || echo '*' >"$OUT/.gitignore" # build output: never committed

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(py js c)
for target in "${targets[@]}"; do
    case $target in
    py | python) build_py ;;
    js | javascript) build_js ;;
    c) build_c ;;
    test) run_tests ;;
    *) die "unknown target $target (want py, js, c or test)" ;;
    esac
done
