//! The resident memory of this process, from `/proc/self/statm`, its proportional share of
//! it, from `/proc/self/smaps_rollup`, and the machine's available memory, from
//! `/proc/meminfo`; and the kernel's limit on memory mappings, which 100,000 instances
//! exceed at its default.

use anyhow::{Context, Result};

/// Hands the allocator's free memory back to the kernel, so that a resident-size delta
/// measures what is live: memory freed by an earlier run (or by instances dropped at
/// hibernation) would otherwise stay resident and hide, or inflate, what a run costs.
pub fn trim_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases free pages of glibc's heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Resident set size in bytes.
pub fn resident_bytes() -> Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("reading /proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .context("statm has no resident field")?
        .parse()
        .context("statm's resident field is not a number")?;
    Ok(pages * 4096)
}

/// Proportional set size in bytes: resident memory, with each page shared by several
/// mappings counted once, split among them. The resident size counts a page of a
/// component's copy-on-write image once per instance that maps it, although the kernel
/// holds it once for all of them.
pub fn proportional_bytes() -> Result<u64> {
    kib_field("/proc/self/smaps_rollup", "Pss:").map(|kib| kib * 1024)
}

/// The machine's available memory in bytes (`MemAvailable`). What it loses while this
/// process grows is the process's proportional memory plus what the kernel keeps for it
/// (page tables, mapping records), which neither resident figure counts; other processes
/// move it too.
pub fn available_bytes() -> Result<u64> {
    kib_field("/proc/meminfo", "MemAvailable:").map(|kib| kib * 1024)
}

/// The number of the line that starts with `field` in `file`, a `/proc` file of `field
/// <n> kB` lines.
fn kib_field(file: &str, field: &str) -> Result<u64> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    text.lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .with_context(|| format!("{file} has no {field} line"))?
        .parse()
        .with_context(|| format!("{file}'s {field} is not a number"))
}

/// Each instance takes a few memory mappings (its memory, the copy-on-write image of its
/// data); Linux's default `vm.max_map_count` (65,530) stops at about 20,000 instances. Raises
/// it when this process may (it runs as root), and says so; otherwise warns.
pub fn allow_many_mappings(instances: u64) {
    const PATH: &str = "/proc/sys/vm/max_map_count";
    let wanted = instances * 8;
    let current: u64 = std::fs::read_to_string(PATH)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if current >= wanted {
        return;
    }
    match std::fs::write(PATH, wanted.to_string()) {
        Ok(()) => eprintln!(
            "  raised vm.max_map_count from {current} to {wanted} for {instances} instances"
        ),
        Err(error) => eprintln!(
            "  vm.max_map_count is {current}; {instances} instances need about {wanted} ({error}): run `sysctl -w vm.max_map_count={wanted}`"
        ),
    }
}
