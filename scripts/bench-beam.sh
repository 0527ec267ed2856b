#!/usr/bin/env bash
# The BEAM side of `just bench`: the seed's KV as an Elixir GenServer, measured the way
# bench/ measures hotswap, written as JSON (default target/bench/beam.json, or $1).
# Installs Erlang and Elixir from Debian's packages if they are missing (needs apt and root);
# exits 2 with a message when it cannot. See bench/beam/README.md.
set -euo pipefail

out=${1:-target/bench/beam.json}
case $out in /*) ;; *) out="$PWD/$out" ;; esac
cd "$(dirname "$0")/.."

if ! command -v elixir >/dev/null 2>&1 || ! command -v erl >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "bench-beam: Erlang/Elixir are not installed and apt-get is not available;" >&2
        echo "bench-beam: install Erlang/OTP and Elixir (elixir, erl on PATH) and run again." >&2
        exit 2
    fi
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "bench-beam: installing Erlang/Elixir needs root: run as root, or" >&2
            echo "bench-beam:   sudo apt-get install -y --no-install-recommends elixir erlang-base" >&2
            exit 2
        fi
    fi
    echo "bench-beam: installing Erlang and Elixir from Debian's packages ..." >&2
    if ! "${sudo[@]}" apt-get update -qq ||
        ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
            elixir erlang-base >/dev/null; then
        echo "bench-beam: apt-get could not install elixir and erlang-base" >&2
        exit 2
    fi
fi

mkdir -p "$(dirname "$out")"
echo "bench-beam: $(erl -noshell -eval 'io:format("OTP ~s", [erlang:system_info(otp_release)]), halt().'), $(elixir --version | grep -m1 Elixir)" >&2
# Default VM flags, as a BEAM node would run the seed; the whole run takes well under 3 minutes.
exec timeout 170 elixir bench/beam/kv_bench.exs "$out"
