//! Counts the heap each idle kv process keeps, by allocation size: `cargo run --release -p
//! hotswap-bench --example heap_profile -- [N] [COMPONENT.wasm]`. A counting allocator sees
//! every live allocation, so the figures are exact where `spawn_profile`'s resident sizes
//! include the allocator's own overhead. Sizes that every process holds (at least one per
//! two processes) are listed one by one: each is one structure to look for (a channel's
//! block, a Store, a task), and the next place to save memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use hotswap::{Allocation, Node, NodeOptions, Policy, SpawnSpec};

/// Sizes below this are counted one by one (in steps of [`STEP`] bytes).
const EXACT_BELOW: usize = 16 << 10;
const STEP: usize = 8;

/// The global allocator, counting what is live: bytes, and allocations per size.
struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_BY_SIZE: [AtomicI64; EXACT_BELOW / STEP] =
    [const { AtomicI64::new(0) }; EXACT_BELOW / STEP];

fn count(layout: Layout, sign: i64) {
    LIVE_BYTES.fetch_add(sign * layout.size() as i64, Ordering::Relaxed);
    if let Some(slot) = LIVE_BY_SIZE.get(layout.size().div_ceil(STEP)) {
        slot.fetch_add(sign, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; counting has no
// effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout, 1);
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout, 1);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        count(layout, -1);
        // SAFETY: `pointer` came from this allocator, that is from the system's.
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout, -1);
        // SAFETY: `realloc`'s contract requires `new_size`, rounded to the alignment, to
        // fit in an `isize`: it is a valid layout.
        count(
            unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) },
            1,
        );
        // SAFETY: as for `dealloc` and `alloc`.
        unsafe { System.realloc(pointer, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What is live now: bytes, and allocations per size step.
fn live() -> (i64, Vec<i64>) {
    let by_size = LIVE_BY_SIZE
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .collect();
    (LIVE_BYTES.load(Ordering::Relaxed), by_size)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(2_000), |n| n.parse())?;
    let file = args
        .next()
        .unwrap_or_else(|| "guests/rust/target/wasm32-wasip2/release/kv_v0.wasm".into());
    let node = Node::with_options(NodeOptions {
        allocation: Allocation::pooled(n as u32 + 16, 64 << 20),
        ..NodeOptions::default()
    })?;
    let kv = node.load_file("kv", &file).await?;
    let spec = || {
        let policy = Policy {
            mailbox_capacity: 16,
            ..Policy::default()
        };
        SpawnSpec::new("kv").vsn(&*kv.vsn).policy(policy)
    };
    // One first, so that what is allocated once per node (pools, caches) is not counted.
    node.spawn(spec()).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (bytes_before, sizes_before) = live();
    for _ in 0..n {
        node.spawn(spec()).await?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (bytes_after, sizes_after) = live();
    eprintln!(
        "live heap per process: {:.0} bytes",
        (bytes_after - bytes_before) as f64 / n as f64
    );
    for (step, (after, before)) in sizes_after.iter().zip(&sizes_before).enumerate() {
        let per_process = (after - before) as f64 / n as f64;
        if per_process >= 0.5 {
            eprintln!("  {:>6} bytes: {per_process:.2} per process", step * STEP);
        }
    }
    Ok(())
}
