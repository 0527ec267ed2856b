//! Integration tests of hotswap: one binary, one module per concern. Every guest fixture
//! under `guests/` is used by at least one test here. The guests must be built first
//! (`just guests`); `just test` does that.

mod common;

mod cli;
mod compile_cache;
mod failed_swaps;
mod hibernation;
mod lending;
mod loading;
mod optimistic_swap;
mod polyglot;
mod releases;
mod runtime_api;
mod sandbox;
mod stress;
mod suspend;
mod swap;
mod swap_under_load;
mod traps;
