//! The report: the table printed at the end of `just bench`, the goals of the performance
//! issue checked against the figures, and the JSON file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use hotswap_bench::stats::Metric;

/// A whole run, as written to `target/bench/hotswap.json` (and as the BEAM side writes it).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Run {
    pub runtime: String,
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default, flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Run {
    pub fn get(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// What ran, as the BEAM's side records it: `OTP 25, Elixir 1.14.0`; the runtime's
    /// name for a run that records no versions.
    pub fn describe(&self) -> String {
        let version = |key: &str| self.other.get(key).and_then(serde_json::Value::as_str);
        match (version("otp"), version("elixir")) {
            (Some(otp), Some(elixir)) => format!("OTP {otp}, Elixir {elixir}"),
            _ => self.runtime.clone(),
        }
    }
}

fn fmt(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v >= 100_000.0 => format!("{:.0}k", v / 1000.0),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// Prints every metric, with the BEAM's beside it when it was measured.
pub fn print_table(ours: &Run, beam: Option<&Run>) {
    println!(
        "{:<44} {:>7} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "metric", "unit", "p50", "p99", "p99.9/max", "value", "beam", "ratio"
    );
    for m in &ours.metrics {
        // The BEAM runs the seed's KV only: our Rust rows pair with its unqualified ones.
        let theirs = beam.and_then(|b| {
            b.get(&m.name)
                .or_else(|| b.get(&m.name.replace("_rust", "")))
        });
        let theirs_headline = theirs.and_then(Metric::headline);
        let ratio = match (m.headline(), theirs_headline) {
            // How many times better we are: lower is better for latencies and sizes.
            (Some(a), Some(b)) if a > 0.0 && m.unit == "per_s" => Some(a / b),
            (Some(a), Some(b)) if a > 0.0 => Some(b / a),
            _ => None,
        };
        println!(
            "{:<44} {:>7} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
            m.name,
            m.unit,
            fmt(m.p50),
            fmt(m.p99),
            fmt(m.p999.or(m.max)),
            fmt(m.value.or(m.throughput_per_s)),
            fmt(theirs_headline),
            ratio.map_or("-".into(), |r| format!("{r:.1}x")),
        );
        if let Some(rounds) = m.rounds {
            println!(
                "{:<44} median of {} rounds: {} to {}",
                "",
                rounds.n,
                fmt(Some(rounds.min)),
                fmt(Some(rounds.max))
            );
        }
        if let Some(lost) = m.lost {
            println!("{:<44} lost {lost}, swaps {}", "", m.swaps.unwrap_or(0));
        }
        if let Some(bytes) = m.state_bytes {
            println!("{:<44} state {bytes} bytes", "");
        }
    }
    println!("(ratio: how many times better than the BEAM on p99, or on the value; >1 is better)");
}

/// One goal of the performance issue, checked.
pub struct Goal {
    pub text: String,
    pub met: Option<bool>,
}

/// Checks the goals that these figures can decide.
/// The goals, judged on `ours` and `beam`; the processes group's only if it ran
/// (`processes_ran`), so that one that failed counts as not met.
pub fn goals(ours: &Run, beam: Option<&Run>, processes_ran: bool) -> Vec<Goal> {
    let ours_of = |name: &str| ours.get(name);
    let beam_of = |name: &str| beam.and_then(|b| b.get(name));
    let mut goals = Vec::new();
    let mut goal = |text: String, met: Option<bool>| goals.push(Goal { text, met });

    let swap = ours_of("swap_pause_rust_1kib").and_then(|m| m.p99);
    let beam_swap = beam_of("swap_pause_1kib").and_then(|m| m.p50);
    goal(
        format!(
            "swap pause p99 at 1 KiB < BEAM seed swap (p50) / 50: {} vs {}",
            fmt(swap),
            fmt(beam_swap.map(|b| b / 50.0))
        ),
        swap.zip(beam_swap).map(|(a, b)| a < b / 50.0),
    );
    let big = ours_of("swap_pause_rust_1mib").and_then(|m| m.p99);
    let beam_big = beam_of("swap_pause_1mib").and_then(|m| m.p50);
    goal(
        format!(
            "swap pause p99 at 1 MiB < BEAM 100k-key swap (p50): {} vs {}",
            fmt(big),
            fmt(beam_big)
        ),
        big.zip(beam_big).map(|(a, b)| a < b),
    );
    for (name, beam_name) in [("call_rtt_1", "call_rtt_1"), ("call_rtt_2", "call_rtt_2")] {
        let a = ours_of(name).and_then(|m| m.throughput_per_s);
        let b = beam_of(beam_name).and_then(|m| m.throughput_per_s);
        goal(
            format!(
                "{name} throughput >= BEAM: {} vs {} calls/s",
                fmt(a),
                fmt(b)
            ),
            a.zip(b).map(|(a, b)| a >= b),
        );
    }
    let a = ours_of("cast_throughput").and_then(|m| m.value);
    let b = beam_of("cast_throughput").and_then(|m| m.value);
    // The floors (`floor.rs`) bound ours: the kv's `handle-cast` without the host, and the
    // cheapest guest call, which each cast pays at least once.
    let guest_alone = ours_of("cast_throughput_wasmtime_alone").and_then(|m| m.value);
    let cheapest_call = ours_of("cheapest_call_wasmtime_alone").and_then(|m| m.value);
    goal(
        format!(
            "cast throughput >= BEAM: {} vs {} casts/s (the guest alone: {}; its cheapest \
             call: {}/s)",
            fmt(a),
            fmt(b),
            fmt(guest_alone),
            fmt(cheapest_call)
        ),
        a.zip(b).map(|(a, b)| a >= b),
    );
    let a = ours_of("latency_under_swaps");
    let b = beam_of("latency_under_swaps");
    // The same load's tail without swaps, for comparison: a separate run of 5 s, so the
    // two p99.9s compare, they do not subtract.
    let p999_without_swaps = |m: Option<&Metric>| fmt(m.and_then(|m| m.p999));
    goal(
        format!(
            "p99.9 call latency under swaps <= BEAM / 10: {} vs {} us (the same load without \
             swaps: ours {}, the BEAM's {} us)",
            fmt(a.and_then(|m| m.p999)),
            fmt(b.and_then(|m| m.p999).map(|b| b / 10.0)),
            p999_without_swaps(ours_of("latency_under_load")),
            p999_without_swaps(beam_of("latency_under_load")),
        ),
        a.and_then(|m| m.p999)
            .zip(b.and_then(|m| m.p999))
            .map(|(a, b)| a <= b / 10.0),
    );
    goal(
        format!(
            "zero calls lost under swaps: {}",
            a.and_then(|m| m.lost).map_or("-".into(), |l| l.to_string())
        ),
        a.and_then(|m| m.lost).map(|l| l == 0),
    );
    // Judged by PSS, the memory that is there because of the processes: RSS counts each
    // page of the component's shared copy-on-write image once per process mapping it,
    // though the machine holds it once. The machine's own figure adds the page tables and
    // mapping records the kernel keeps for them, which no per-process measure counts.
    for kind in ["idle", "hibernating"] {
        let largest = |metric: &str| {
            ours_of(&format!("{metric}_per_{kind}_process_100k"))
                .or_else(|| ours_of(&format!("{metric}_per_{kind}_process_10k")))
                .and_then(|m| m.value)
        };
        let proportional = largest("pss");
        goal(
            format!(
                "resident memory (PSS) per {kind} Rust process < 32 KiB: {} bytes (RSS {}, \
                 shared image pages once per process; machine {}, page tables included)",
                fmt(proportional),
                fmt(largest("memory")),
                fmt(largest("machine_memory"))
            ),
            proportional.map(|m| m < 32.0 * 1024.0),
        );
    }
    let hundred_k = ours_of("memory_per_idle_process_100k");
    goal(
        "100,000 live processes".into(),
        processes_ran.then_some(hundred_k.is_some()),
    );
    // A rate of the largest run that measured it: 100,000 processes, or 10,000 in a quick run.
    let largest_run = |rate: &str| {
        let of = |thousands: u32| ours_of(&format!("{rate}_{thousands}k")).and_then(|m| m.value);
        of(100).or_else(|| of(10))
    };
    // A node's spawn rate is what its callers reach together: one caller alone, or one per
    // worker thread, whichever is faster.
    let alone = largest_run("spawn_rate");
    let per_core = largest_run("spawn_rate_per_core");
    let spawn = alone.into_iter().chain(per_core).reduce(f64::max);
    // The floor (`floor.rs`) bounds them: instantiation and `init` by wasmtime alone, from
    // one task per worker thread, on a fresh node right after the processes' own run.
    let floor = largest_run("spawn_rate_per_core_wasmtime_alone");
    goal(
        format!(
            "spawn rate > 50,000/s: {}/s from one task, {}/s from one task per worker thread \
             (wasmtime alone, from one per worker thread: {}/s)",
            fmt(alone),
            fmt(per_core),
            fmt(floor),
        ),
        spawn.map(|s| s > 50_000.0),
    );
    for m in ours
        .metrics
        .iter()
        .filter(|m| m.name.starts_with("load_cached_"))
    {
        goal(
            format!("{} p50 < 10 ms: {} us", m.name, fmt(m.p50)),
            m.p50.map(|p| p < 10_000.0),
        );
    }
    goals
}

pub fn print_goals(goals: &[Goal]) {
    println!("\ngoals (issue 6):");
    for goal in goals {
        let mark = match goal.met {
            Some(true) => "met    ",
            Some(false) => "NOT MET",
            None => "n/a    ",
        };
        println!("  [{mark}] {}", goal.text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of these metrics, each of this value (the goals read values, not units).
    fn run_valued(metrics: &[(&str, f64)]) -> Run {
        Run {
            runtime: "hotswap".into(),
            metrics: metrics
                .iter()
                .map(|&(name, value)| Metric {
                    name: name.to_string(),
                    value: Some(value),
                    ..Metric::default()
                })
                .collect(),
            ..Run::default()
        }
    }

    fn run_of(names: &[&str]) -> Run {
        let metrics: Vec<_> = names.iter().map(|&name| (name, 28_000.0)).collect();
        run_valued(&metrics)
    }

    fn verdict(run: &Run, processes_ran: bool, starts: &str) -> Option<bool> {
        let goals = goals(run, None, processes_ran);
        let goal = goals.iter().find(|g| g.text.starts_with(starts));
        goal.expect("the goal is listed").met
    }

    #[test]
    fn the_live_processes_goal_is_judged_only_when_processes_were_measured() {
        let live = "100,000 live processes";
        assert_eq!(verdict(&run_of(&["call_rtt_1"]), false, live), None);
        assert_eq!(
            verdict(&run_of(&["call_rtt_1"]), true, live),
            Some(false),
            "a group that ran and measured nothing failed"
        );
        let ten_k = ["spawn_rate_10k", "memory_per_idle_process_10k"];
        assert_eq!(verdict(&run_of(&ten_k), true, live), Some(false));
        let both = [ten_k[0], ten_k[1], "memory_per_idle_process_100k"];
        assert_eq!(verdict(&run_of(&both), true, live), Some(true));
    }

    #[test]
    fn the_spawn_goal_is_judged_on_the_faster_of_one_spawner_and_one_per_worker_thread() {
        /// What the case is, the metrics measured, and the verdict.
        type Case<'a> = (&'a str, &'a [(&'a str, f64)], Option<bool>);
        let cases: [Case; 6] = [
            (
                "one task alone, slow",
                &[("spawn_rate_100k", 20_000.0)],
                Some(false),
            ),
            (
                "fast together",
                &[
                    ("spawn_rate_100k", 20_000.0),
                    ("spawn_rate_per_core_100k", 60_000.0),
                ],
                Some(true),
            ),
            (
                "fast alone",
                &[
                    ("spawn_rate_100k", 55_000.0),
                    ("spawn_rate_per_core_100k", 40_000.0),
                ],
                Some(true),
            ),
            (
                "a quick run",
                &[
                    ("spawn_rate_10k", 20_000.0),
                    ("spawn_rate_per_core_10k", 60_000.0),
                ],
                Some(true),
            ),
            (
                "neither",
                &[
                    ("spawn_rate_100k", 20_000.0),
                    ("spawn_rate_per_core_100k", 30_000.0),
                ],
                Some(false),
            ),
            ("nothing measured", &[], None),
        ];
        for (case, metrics, met) in cases {
            let verdict = verdict(&run_valued(metrics), true, "spawn rate > 50,000/s");
            assert_eq!(verdict, met, "{case}");
        }
    }

    #[test]
    fn the_goals_quote_the_floors_of_the_largest_run() {
        let run = run_valued(&[
            ("spawn_rate_per_core_10k", 20_000.0),
            ("spawn_rate_per_core_wasmtime_alone_10k", 31_000.0),
            ("cast_throughput", 400_000.0),
            ("cast_throughput_wasmtime_alone", 600_000.0),
            ("cheapest_call_wasmtime_alone", 1_400_000.0),
        ]);
        let goals = goals(&run, None, true);
        let text = |starts: &str| {
            let goal = goals.iter().find(|g| g.text.starts_with(starts));
            goal.expect("the goal is listed").text.clone()
        };
        let spawn = text("spawn rate");
        assert!(
            spawn.contains("wasmtime alone, from one per worker thread: 31000/s"),
            "{spawn}"
        );
        let casts = text("cast throughput");
        assert!(casts.contains("the guest alone: 600k"), "{casts}");
        assert!(casts.contains("its cheapest call: 1400k/s"), "{casts}");
    }

    #[test]
    fn a_run_is_described_by_its_versions_or_its_runtime() {
        let mut beam = run_of(&[]);
        assert_eq!(beam.describe(), "hotswap");
        beam.other.insert("otp".into(), "25".into());
        beam.other.insert("elixir".into(), "1.14.0".into());
        assert_eq!(beam.describe(), "OTP 25, Elixir 1.14.0");
    }
}
