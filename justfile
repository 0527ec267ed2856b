# hotswap: Erlang/OTP-style hot code swapping for WebAssembly components.
# `just` lists the recipes; `just demo` tells the story; `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

guest_target := "wasm32-wasip2"
guests_manifest := "guests/rust/Cargo.toml"

# List the recipes.
default:
    @just --list --unsorted

# In CI (CI=true) a toolchain that cannot be installed fails the recipe.

# Install every toolchain (idempotent): the wasm target; Python, JavaScript and C for the guests.
setup: setup-rust
    scripts/setup-toolchains.sh

# The wasm target of the Rust guests (idempotent).
setup-rust:
    rustup target list --installed | grep -qx {{guest_target}} || rustup target add {{guest_target}}

# Build every guest component: Rust, and kv in Python, JavaScript and C (guests/out/).
guests: setup guests-rust
    scripts/build-polyglot-guests.sh

# Build the Rust guests only: the SDK's kv v0/v1 and the test fixtures.
guests-rust: setup-rust
    cargo build --release --target {{guest_target}} --manifest-path {{guests_manifest}}

# Build the host and the `hotswap` command.
build:
    cargo build -p hotswap

# The seed's story: a KV process keeps its state through a hot swap while a client calls it.
demo: guests-rust build
    scripts/demo.sh

# Measures call and cast throughput, swap pauses, latency under swaps, spawn rate, memory per
# process and load times; when Erlang and Elixir are installed (`just bench-beam` installs
# them), each group on the BEAM right before ours, in the same command. Writes
# target/bench/*.json.

# Measure hotswap beside the BEAM: a table, the issue's goals, and JSON in target/bench/.
bench: guests
    cargo build --release -p hotswap-bench
    if command -v elixir >/dev/null; then target/release/hotswap-bench --with-beam; else rm -f target/bench/beam.json; target/release/hotswap-bench; fi

# The same benchmark of the seed's KV on the BEAM (installs Erlang and Elixir from Debian).
bench-beam:
    scripts/bench-beam.sh target/bench/beam.json

# Run every test: host (unit, integration, CLI, doc), and the guest helpers of each language.
test: guests
    cargo test --workspace
    cargo test --manifest-path {{guests_manifest}} -p hotswap-guest -p kv-core
    scripts/build-polyglot-guests.sh test

# One kv process hot swapped Rust -> Python -> JavaScript -> C -> Rust while a client calls it.
demo-polyglot: guests build
    scripts/demo-polyglot.sh

# Formatting and clippy, warnings as errors, host and guests.
lint: setup-rust
    cargo fmt --all -- --check
    cargo fmt --manifest-path {{guests_manifest}} --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --manifest-path {{guests_manifest}} --target {{guest_target}} --all-targets -- -D warnings
