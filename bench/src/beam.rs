//! The BEAM's side of the comparison, measured group by group right before ours.
//!
//! A goal is a ratio of two figures, and on this shared machine one minute can run at half
//! the speed of the next. Run whole, the BEAM's side ran before all of ours, and our
//! processes group came minutes after the BEAM's. Here each group (messaging, swaps,
//! processes) runs in a BEAM of its own, `elixir bench/beam/kv_bench.exs --only GROUP`,
//! which exits before the same group of ours starts: the two sides of a ratio are measured
//! within a group's length of each other (8-17 s for the BEAM's groups here, about a minute
//! at most for ours), and never at the same time.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::Command;

use crate::report::Run;

/// How long one group may take on the BEAM: its slowest, swaps, takes under 20 s here.
const GROUP_TIME_LIMIT: Duration = Duration::from_secs(170);

/// How much of a failed run's standard error a report quotes, at most.
const QUOTED_LINES: usize = 5;
const QUOTED_BYTES: usize = 600;

/// The BEAM's figures measured so far, and the groups it could not measure.
pub struct BeamSide {
    /// `elixir`, as a rule: what runs `script`.
    program: PathBuf,
    script: PathBuf,
    /// Where each group's figures are written, then read back.
    scratch: PathBuf,
    quick: bool,
    /// How long one group may run: [`GROUP_TIME_LIMIT`], but in tests.
    time_limit: Duration,
    run: Option<Run>,
    failures: Vec<String>,
}

impl BeamSide {
    /// Runs `program script --only GROUP OUT` for each group (`elixir kv_bench.exs`),
    /// writing each group's figures in `scratch`; with `quick`, a smoke run with a tenth of
    /// the samples, as ours.
    pub fn new(program: PathBuf, script: PathBuf, scratch: &Path, quick: bool) -> Self {
        Self {
            program,
            script,
            scratch: scratch.to_path_buf(),
            quick,
            time_limit: GROUP_TIME_LIMIT,
            run: None,
            failures: Vec::new(),
        }
    }

    /// Measures `group` on the BEAM. A failure is printed and kept, not fatal: the run goes
    /// on, and that group's rows show no BEAM figure.
    pub async fn measure(&mut self, group: &str) {
        eprintln!("{group} on the BEAM ...");
        match self.try_measure(group).await {
            Ok(run) => match &mut self.run {
                None => self.run = Some(run),
                Some(all) => all.metrics.extend(run.metrics),
            },
            Err(error) => {
                let failure = format!("{group}: {error:#}");
                eprintln!("  the BEAM's {failure}");
                self.failures.push(failure);
            }
        }
    }

    async fn try_measure(&self, group: &str) -> Result<Run> {
        let out = self.scratch.join(format!("beam-{group}.json"));
        std::fs::create_dir_all(&self.scratch)
            .with_context(|| format!("creating {}", self.scratch.display()))?;
        // A file left by an earlier run must not pass for this one's.
        remove_stale(&out)?;
        let mut command = Command::new(&self.program);
        command
            .arg(&self.script)
            .args(["--only", group])
            .arg(&out)
            .stdin(Stdio::null())
            // Its table goes unread: ours prints both sides.
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, so that a run past its time is stopped with the VMs it
            // started (the memory figures come from child VMs).
            .process_group(0)
            .kill_on_drop(true);
        if self.quick {
            command.env("BEAM_BENCH_QUICK", "1");
        }
        // As many spawners as ours: one per worker thread of this runtime.
        let spawners = tokio::runtime::Handle::current().metrics().num_workers();
        command.env("BEAM_BENCH_SPAWNERS", spawners.to_string());
        let child = command
            .spawn()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        let group_id = child.id();
        let output = match tokio::time::timeout(self.time_limit, child.wait_with_output()).await {
            Ok(output) => output.context("waiting for it")?,
            Err(_) => {
                if let Some(id) = group_id.and_then(|id| i32::try_from(id).ok()) {
                    // SAFETY: a signal to the process group this run started, and nothing else.
                    unsafe {
                        libc::killpg(id, libc::SIGKILL);
                    }
                }
                bail!(
                    "did not finish within {:?}, and was stopped",
                    self.time_limit
                );
            }
        };
        if !output.status.success() {
            bail!(
                "{} --only {group} exited with {}: {}",
                self.script.display(),
                output.status,
                cause(&String::from_utf8_lossy(&output.stderr))
            );
        }
        let bytes = std::fs::read(&out).with_context(|| format!("reading {}", out.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a run's figures", out.display()))
    }

    /// Every group's figures as one run (none if no group was measured), and a line for each
    /// group that failed.
    pub fn finish(self) -> (Option<Run>, Vec<String>) {
        (self.run, self.failures)
    }
}

/// Removes `path`, an earlier run's figures, if it is there.
pub fn remove_stale(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("removing {}", path.display())),
    }
}

/// What a failed run's standard error says of its cause: from Elixir's `** (Error) ...` line
/// on, where there is one (a stack trace follows it), else its last lines; at most
/// [`QUOTED_LINES`] lines and about [`QUOTED_BYTES`] bytes.
fn cause(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let from = lines
        .iter()
        .rposition(|line| line.trim_start().starts_with("** ("))
        .unwrap_or(lines.len().saturating_sub(QUOTED_LINES));
    let quoted = lines[from..(from + QUOTED_LINES).min(lines.len())].join("\n");
    match quoted.char_indices().nth(QUOTED_BYTES) {
        Some((cut, _)) => format!("{} ...", &quoted[..cut]),
        None => quoted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for `elixir kv_bench.exs`, run by `sh`: it measures one figure per group,
    /// and fails the swaps group as a broken BEAM would.
    const FAKE_BENCH: &str = r#"
group=$2 out=$3
if [ "$group" = swaps ]; then
    echo "starting the VM" >&2
    echo "** (RuntimeError) the swaps went wrong" >&2
    exit 1
fi
printf '{"runtime":"beam","otp":"25","elixir":"1.14.0","metrics":[{"name":"%s_figure","unit":"us","p50":1.5}]}' "$group" >"$out"
"#;

    #[tokio::test]
    async fn each_group_is_measured_apart_and_a_failed_one_is_named_with_its_cause() {
        let dir = std::env::temp_dir().join(format!("beam-side-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("fake_bench.sh");
        std::fs::write(&script, FAKE_BENCH).unwrap();
        let mut side = BeamSide::new("sh".into(), script, &dir, false);
        for group in ["messaging", "swaps", "processes"] {
            side.measure(group).await;
        }
        let (run, failures) = side.finish();
        let run = run.expect("two groups were measured");
        let names: Vec<&str> = run.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["messaging_figure", "processes_figure"]);
        assert_eq!(run.describe(), "OTP 25, Elixir 1.14.0");
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].starts_with("swaps: "), "{failures:?}");
        assert!(
            failures[0].ends_with("the swaps went wrong"),
            "the cause is quoted: {failures:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_cause_is_quoted_from_elixirs_error_line_not_its_stack_trace() {
        let stderr = "swaps ...\n** (MatchError) no match of right hand side value: :error\n    kv_bench.exs:140: Bench.swap/3\n    kv_bench.exs:270: Bench.swap_pause/4\n    (elixir 1.14.0) lib/enum.ex:4299: Enum.map/2\n    kv_bench.exs:460: Bench.run/2\n    kv_bench.exs:470: anonymous fn/1\n    (elixir) lib/code.ex:1: Code.eval/2\n";
        let quoted = cause(stderr);
        assert!(quoted.starts_with("** (MatchError) no match"), "{quoted}");
        assert_eq!(quoted.lines().count(), QUOTED_LINES);
        assert_eq!(
            cause("a\nb\n\nc\n"),
            "a\nb\nc",
            "no error line: the last lines"
        );
        let long = "x".repeat(5 * QUOTED_BYTES);
        assert_eq!(cause(&long).len(), QUOTED_BYTES + " ...".len());
    }

    /// Whether process `pid` has ended (a zombie waiting for its parent counts).
    fn ended(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        }
    }

    #[tokio::test]
    async fn a_group_past_its_time_is_stopped_with_the_processes_it_started() {
        let dir = std::env::temp_dir().join(format!("beam-side-slow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("slow_bench.sh");
        let child_pid = dir.join("child.pid");
        // A run that starts a child (as the memory figures start child VMs) and hangs.
        let body = format!("sleep 600 & echo $! >{}\nsleep 600\n", child_pid.display());
        std::fs::write(&script, body).unwrap();
        let mut side = BeamSide::new("sh".into(), script, &dir, false);
        side.time_limit = Duration::from_millis(500);
        let started = std::time::Instant::now();
        side.measure("messaging").await;
        assert!(started.elapsed() < Duration::from_secs(5));
        let (run, failures) = side.finish();
        assert!(run.is_none());
        assert!(
            failures[0].contains("did not finish within 500ms"),
            "{failures:?}"
        );
        let pid = std::fs::read_to_string(&child_pid).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !ended(pid.trim()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(ended(pid.trim()), "the run's child {pid} was stopped too");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_missing_runner_is_a_failure_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("beam-side-none-{}", std::process::id()));
        let mut side = BeamSide::new(
            "/nonexistent/elixir".into(),
            "kv_bench.exs".into(),
            &dir,
            false,
        );
        side.measure("messaging").await;
        let (run, failures) = side.finish();
        assert!(run.is_none());
        assert_eq!(failures.len(), 1);
        assert!(
            failures[0].contains("cannot run /nonexistent/elixir"),
            "{failures:?}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
