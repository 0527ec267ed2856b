//! Spawns N idle kv processes and breaks the resident memory they added down by mapping
//! (malloc heap, anonymous memory, the memfd images of linear memories), from
//! `/proc/self/smaps`, and how much the machine's available memory fell, with the kernel's
//! page tables and slab (a page every process maps counts once there, as in PSS, and N
//! times in RSS): `cargo run --release -p hotswap-bench --example spawn_profile -- 10000
//! [COMPONENT.wasm]`. With `SPAWNERS=N`, N tasks spawn at once, each its share. A focused
//! companion of `just bench`'s processes group.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use hotswap::{Allocation, Node, NodeOptions, Policy, SpawnSpec};

/// Resident and private-dirty KiB per kind of mapping.
fn resident_by_mapping() -> anyhow::Result<BTreeMap<String, (i64, i64)>> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").context("reading smaps")?;
    let mut by_kind: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut kind = String::new();
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(&first) = fields.first() else {
            continue;
        };
        let kb = || {
            fields
                .get(1)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        if first.contains('-') && !first.ends_with(':') {
            kind = match fields.get(5) {
                Some(name) if name.starts_with("/memfd") => "memfd (images)".into(),
                Some(name) if name.starts_with('[') => name.to_string(),
                Some(name) => name.rsplit('/').next().unwrap_or(name).to_string(),
                None => "anonymous".into(),
            };
        } else if first == "Rss:" {
            by_kind.entry(kind.clone()).or_default().0 += kb();
        } else if first == "Private_Dirty:" {
            by_kind.entry(kind.clone()).or_default().1 += kb();
        }
    }
    Ok(by_kind)
}

/// A `/proc/meminfo` field such as `MemAvailable:`, in KiB. Other processes move them too:
/// spawn enough processes that theirs dwarfs the noise.
fn meminfo_kib(field: &str) -> anyhow::Result<i64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading meminfo")?;
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .with_context(|| format!("meminfo has no {field} line"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let file = args
        .next()
        .unwrap_or_else(|| "guests/rust/target/wasm32-wasip2/release/kv_v0.wasm".into());
    let spawners: usize = match std::env::var("SPAWNERS") {
        Ok(spawners) => spawners
            .parse()
            .with_context(|| format!("SPAWNERS={spawners:?} is not a count"))?,
        Err(std::env::VarError::NotPresent) => 1,
        Err(error) => anyhow::bail!("SPAWNERS: {error}"),
    };
    anyhow::ensure!(spawners > 0, "SPAWNERS must be at least 1");
    let node = Node::with_options(NodeOptions {
        allocation: Allocation::pooled(n as u32 + 16, 64 << 20),
        ..NodeOptions::default()
    })?;
    let kv = node.load_file("kv", &file).await?;
    let policy = Policy {
        mailbox_capacity: 16,
        ..Policy::default()
    };
    let before = resident_by_mapping()?;
    let available_before = meminfo_kib("MemAvailable:")?;
    let tables_before = meminfo_kib("PageTables:")?;
    let slab_before = meminfo_kib("Slab:")?;
    let spec = SpawnSpec::new("kv").vsn(&*kv.vsn).policy(policy);
    let started = Instant::now();
    let tasks: Vec<_> = (0..spawners)
        .map(|spawner| {
            let (node, spec) = (node.clone(), spec.clone());
            let share = n / spawners + usize::from(spawner < n % spawners);
            tokio::spawn(async move {
                for _ in 0..share {
                    node.spawn(spec.clone()).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = resident_by_mapping()?;
    let available_after = meminfo_kib("MemAvailable:")?;
    let tables_after = meminfo_kib("PageTables:")?;
    let slab_after = meminfo_kib("Slab:")?;
    eprintln!(
        "spawned {n} from {spawners} task(s) in {elapsed:?}: {:.0}/s",
        n as f64 / elapsed.as_secs_f64()
    );
    let per_process = |kb: i64| kb as f64 * 1024.0 / n as f64 / 1000.0;
    let (mut resident, mut private) = (0, 0);
    for (kind, (rss, dirty)) in &after {
        let (rss0, dirty0) = before.get(kind).copied().unwrap_or_default();
        let (rss, dirty) = (rss - rss0, dirty - dirty0);
        (resident, private) = (resident + rss, private + dirty);
        if rss.abs() * 1024 > n as i64 * 100 {
            eprintln!(
                "{kind:<20} resident {:>7.1} KB/process, private {:>7.1}",
                per_process(rss),
                per_process(dirty)
            );
        }
    }
    eprintln!(
        "{:<20} resident {:>7.1} KB/process, private {:>7.1}",
        "total",
        per_process(resident),
        per_process(private)
    );
    eprintln!(
        "{:<20} MemAvailable fell by {:.1} KB/process, page tables grew by {:.1}, slab by {:.1}",
        "machine",
        per_process(available_before - available_after),
        per_process(tables_after - tables_before),
        per_process(slab_after - slab_before)
    );
    Ok(())
}
