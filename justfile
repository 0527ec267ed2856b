# hotswap: Erlang/OTP-style hot code swapping for WebAssembly components.
# `just` lists the recipes; `just demo` tells the story; `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

guest_target := "wasm32-wasip2"
guests_manifest := "guests/rust/Cargo.toml"

# List the recipes.
default:
    @just --list --unsorted

# Install what the build needs (idempotent): the wasm target for the guests.
setup:
    rustup target list --installed | grep -qx {{guest_target}} || rustup target add {{guest_target}}

# Build every guest component.
guests: setup
    cargo build --release --target {{guest_target}} --manifest-path {{guests_manifest}}

# Build the host and the `hotswap` command.
build:
    cargo build -p hotswap

# The seed's story: a KV process keeps its state through a hot swap while a client calls it.
demo: guests build
    scripts/demo.sh

# Measure: call and cast throughput, swap pauses, latency under swaps, spawn rate, memory per
# process, load times; beside the BEAM's figures when `just bench-beam` wrote them.
bench: guests
    cargo build --release -p hotswap-bench
    target/release/hotswap-bench

# The same benchmark of the seed's KV on the BEAM (installs Erlang and Elixir from Debian).
bench-beam:
    scripts/bench-beam.sh target/bench/beam.json

# Run every test (unit, integration, CLI, doc).
test: guests
    cargo test --workspace

# Formatting and clippy, warnings as errors, host and guests.
lint: setup
    cargo fmt --all -- --check
    cargo fmt --manifest-path {{guests_manifest}} --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --manifest-path {{guests_manifest}} --target {{guest_target}} --all-targets -- -D warnings
