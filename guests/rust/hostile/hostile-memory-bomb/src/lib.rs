//! Hostile fixture, vsn "hostile-memory-bomb": a guest that takes memory and keeps it. It
//! models a plugin that leaks, or tries to starve the node (and its neighbours) of memory.
//!
//! | call                           | reply                                                  |
//! |--------------------------------|--------------------------------------------------------|
//! | `{"op":"ping"}`                | `"pong"`                                               |
//! | `{"op":"grow","mib":N}`        | allocates N MiB more, writes every byte, keeps it; replies the MiB now held |
//! | `{"op":"try_grow","mib":N}`    | the same, but an allocation the guest cannot get is an `Err` reply, not a trap |
//! | `{"op":"held"}`                | the MiB held                                           |
//! | `{"op":"unwritten","mib":N}`   | grows the linear memory itself by N MiB and replies how many of the new bytes are not zero |
//!
//! The memory is held in the process's state (outside what `snapshot` writes), so it stays
//! allocated between calls and is not freed until the process ends.
//!
//! The host must stop `grow` at the process's memory limit: the linear memory cannot grow
//! past it, the allocator fails, and the guest aborts (a trap: Rust's allocation failure is an
//! abort), or the host traps the `memory.grow` itself. Either way this process ends with a
//! reason, and no other process notices. `try_grow` tells apart a host that makes the failed
//! grow a trap (the process dies) from one that lets `memory.grow` return -1 (the guest
//! replies `Err` and lives on).
//!
//! `unwritten` reads memory it never wrote. WebAssembly says that memory grows zeroed, so the
//! answer must be 0 even where an earlier instance in the same pool slot filled those bytes:
//! the host's pool reuses a slot's pages rather than asking the kernel for fresh ones.

use std::hint::black_box;

use hotswap_guest::{GenServer, Pid, json, log};
use serde::{Deserialize, Serialize};

/// One mebibyte.
const MIB: usize = 1 << 20;

/// A byte that is not zero, so that writing it really touches every page.
const FILL: u8 = 0xA5;

/// A request, tagged by its `op` field.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Ping,
    Grow { mib: usize },
    TryGrow { mib: usize },
    Held,
    Unwritten { mib: usize },
}

/// The size of a WebAssembly page.
const WASM_PAGE: usize = 64 << 10;

/// What the bomb holds. Only the count is part of the snapshot; the blocks themselves stay in
/// this instance.
#[derive(Default, Serialize, Deserialize)]
struct Hoard {
    /// MiB held.
    held_mib: usize,
    /// The blocks, one MiB each, every byte written.
    #[serde(skip)]
    blocks: Vec<Vec<u8>>,
}

/// The memory bomb.
struct MemoryBomb;

impl GenServer for MemoryBomb {
    type State = Hoard;
    const VSN: &'static str = "hostile-memory-bomb";

    fn init(_args: &[u8]) -> Result<Hoard, String> {
        Ok(Hoard::default())
    }

    fn handle_call(hoard: &mut Hoard, request: &[u8], _caller: Pid) -> Result<Vec<u8>, String> {
        let request: Request =
            json::decode(request).map_err(|why| format!("unknown request: {why}"))?;
        match request {
            Request::Ping => json::encode("pong"),
            Request::Grow { mib } => {
                log::warn(&format!("growing by {mib} MiB, on purpose"));
                for _ in 0..mib {
                    // `vec!` with a non-zero byte writes every byte; an allocation that fails
                    // aborts, which is a trap.
                    hoard.keep(vec![FILL; MIB]);
                }
                json::encode(&hoard.held_mib)
            }
            Request::TryGrow { mib } => {
                for done in 0..mib {
                    let mut block = Vec::new();
                    block.try_reserve_exact(MIB).map_err(|why| {
                        format!(
                            "allocation failed after {done} of {mib} MiB ({} MiB held): {why}",
                            hoard.held_mib
                        )
                    })?;
                    block.resize(MIB, FILL);
                    hoard.keep(block);
                }
                json::encode(&hoard.held_mib)
            }
            Request::Held => json::encode(&hoard.held_mib),
            Request::Unwritten { mib } => json::encode(&unwritten_bytes_not_zero(mib)?),
        }
    }
}

impl Hoard {
    /// Keeps `block` (one MiB) for the life of the process.
    fn keep(&mut self, block: Vec<u8>) {
        // An opaque use, so the write that filled the block cannot be optimised away.
        self.blocks.push(black_box(block));
        self.held_mib += 1;
    }
}

/// Grows the linear memory by `mib` MiB past everything the allocator manages, and counts
/// the bytes of the new pages that are not zero. The pages stay taken.
///
/// The one unsafe read among the guests: reading memory that nothing wrote is the point.
#[allow(unsafe_code)]
fn unwritten_bytes_not_zero(mib: usize) -> Result<usize, String> {
    let pages = mib
        .checked_mul(MIB / WASM_PAGE)
        .ok_or_else(|| format!("{mib} MiB is more than a 32-bit memory holds"))?;
    let first_page = core::arch::wasm32::memory_grow(0, pages);
    if first_page == usize::MAX {
        return Err(format!("memory.grow by {mib} MiB was refused"));
    }
    let start = first_page * WASM_PAGE;
    let not_zero = (start..start + pages * WASM_PAGE)
        // SAFETY: the memory just grew to cover these addresses, and nothing else uses them.
        .filter(|&address| unsafe { std::ptr::read_volatile(address as *const u8) } != 0)
        .count();
    Ok(not_zero)
}

hotswap_guest::export_process!(MemoryBomb);
