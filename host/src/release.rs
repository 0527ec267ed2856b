//! Releases: many processes moved to new module versions, all or nothing (OTP's
//! `release_handler`, made transactional).
//!
//! A release names module versions. Upgrading to it: load every version and instantiate a
//! new instance for every affected process (nothing paused yet); suspend the processes in
//! the order the release gives; stage every `code-change` (concurrently, each in its own
//! actor); then commit all and resume, or, if any one failed, discard every new instance
//! and resume the old ones with their state untouched. The node remembers each release it
//! applied, so `downgrade` can move the same processes back the same way.
//!
//! ```toml
//! name = "kv-logging"
//!
//! [[module]]
//! name = "kv"
//! file = "kv_v1.wasm"      # relative to the release file; or `vsn = "1"` if already loaded
//! extra = "added logging"  # optional, for code-change
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::code::ModuleVersion;
use crate::error::{LoadError, SwapError};
use crate::process::instance::GuestInstance;
use crate::process::suspension::Suspender;
use crate::process::{ExitReason, Pid, ProcessHandle};
use crate::registry::Registry;
use crate::swap::{Direction, SwapOptions, SwapReport};

/// A release file: a name and the module versions it brings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub name: String,
    #[serde(rename = "module")]
    pub modules: Vec<ReleaseModule>,
}

/// One module of a release: which version (a file to load, or a loaded `vsn`), and the
/// `extra` for its processes' `code-change`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseModule {
    pub name: String,
    pub file: Option<PathBuf>,
    pub vsn: Option<String>,
    #[serde(default)]
    pub extra: String,
}

/// Why a release file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid release file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {problem}")]
    Invalid {
        path: PathBuf,
        problem: ReleaseProblem,
    },
}

/// What makes a release, however it was built, one that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseProblem {
    #[error("module {module:?} needs exactly one of `file` or `vsn`")]
    Version { module: String },
    #[error("module {module:?} is named twice")]
    Duplicate { module: String },
}

impl Release {
    /// Reads and checks a release file; relative module paths are taken from its folder.
    pub fn from_file(path: &Path) -> Result<Self, ReleaseFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReleaseFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut release: Release = toml::from_str(&text).map_err(|e| ReleaseFileError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        release
            .check()
            .map_err(|problem| ReleaseFileError::Invalid {
                path: path.to_path_buf(),
                problem,
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for file in release.modules.iter_mut().filter_map(|m| m.file.as_mut()) {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        Ok(release)
    }

    /// Checks that every module names one version and appears once.
    pub fn check(&self) -> Result<(), ReleaseProblem> {
        let mut seen = std::collections::HashSet::new();
        for module in &self.modules {
            if !seen.insert(module.name.as_str()) {
                return Err(ReleaseProblem::Duplicate {
                    module: module.name.clone(),
                });
            }
            if module.file.is_some() == module.vsn.is_some() {
                return Err(ReleaseProblem::Version {
                    module: module.name.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Why a release did not happen. After any of these, every process is on the version it
/// was on before, with its state (a process whose own `snapshot` trapped has exited).
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("release {release}: module {module}: {source}")]
    Load {
        release: String,
        module: String,
        #[source]
        source: LoadError,
    },
    #[error("release {release}: module {module} has no version {vsn:?} loaded")]
    NoSuchVersion {
        release: String,
        module: String,
        vsn: String,
    },
    #[error("release {release}: pid {pid}: cannot instantiate {module} vsn {vsn}: {cause}")]
    Prepare {
        release: String,
        pid: Pid,
        module: String,
        vsn: String,
        cause: String,
    },
    #[error("release {release}: pid {pid} exited during the release: {reason}")]
    Exited {
        release: String,
        pid: Pid,
        reason: ExitReason,
    },
    #[error(
        "release {release} rolled back, every process kept its version and state: {}",
        failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    RolledBack {
        release: String,
        failures: Vec<SwapError>,
    },
    #[error("no release to downgrade from")]
    NothingToDowngrade,
    #[error("release {release}: {problem}")]
    Invalid {
        release: String,
        problem: ReleaseProblem,
    },
    #[error("release {release}: the task running it failed: {cause}")]
    Interrupted { release: String, cause: String },
}

/// What a release did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReleaseReport {
    pub release: String,
    pub direction: Direction,
    /// Every process moved, in suspension order, each with its own pause.
    pub processes: Vec<SwapReport>,
    /// From the first suspension to the last resumption.
    #[serde(with = "crate::swap::micros", rename = "pause_us")]
    pub pause: Duration,
    #[serde(with = "crate::swap::micros", rename = "total_us")]
    pub total: Duration,
}

/// One process to move: where to, with what extra.
pub(crate) struct Move {
    pub handle: ProcessHandle,
    pub from: Arc<ModuleVersion>,
    pub to: Arc<ModuleVersion>,
    pub extra: Vec<u8>,
}

/// A release that was applied, for `downgrade`.
pub(crate) struct AppliedRelease {
    pub name: String,
    pub moves: Vec<(Pid, Arc<ModuleVersion>, Arc<ModuleVersion>)>,
}

/// Runs a planned release: prepare, suspend, stage, then commit all or abort all.
pub(crate) async fn execute(
    release: &str,
    moves: Vec<Move>,
    direction: Direction,
    registry: &Arc<Registry>,
    started: Instant,
) -> Result<ReleaseReport, ReleaseError> {
    // Prepare every new instance before anything pauses.
    let mut prepared = Vec::with_capacity(moves.len());
    for step in moves {
        let pid = step.handle.pid();
        let policy = &step.handle.status.policy;
        let instance = GuestInstance::prepare_swap_target(&step.to, pid, registry.clone(), policy)
            .await
            .map_err(|cause| ReleaseError::Prepare {
                release: release.to_string(),
                pid,
                module: step.to.name.to_string(),
                vsn: step.to.vsn.to_string(),
                cause,
            })?;
        prepared.push((step, instance));
    }

    // Suspend, in order.
    let paused_at = Instant::now();
    let mut suspended: Vec<(Move, Instant, u64)> = Vec::with_capacity(prepared.len());
    let mut instances = Vec::with_capacity(prepared.len());
    let mut held = Held::default();
    for (step, instance) in prepared {
        if let Err(error) = step.handle.suspend_by(Suspender::Release).await {
            resume_all(suspended.iter().map(|(s, ..)| &s.handle)).await;
            held.let_go();
            let reason = match error {
                crate::error::ControlError::Exited { reason, .. } => reason,
                other => ExitReason::Stopped {
                    reason: other.to_string(),
                },
            };
            return Err(ReleaseError::Exited {
                release: release.to_string(),
                pid: step.handle.pid(),
                reason,
            });
        }
        let queued_before = step.handle.status.enqueued();
        held.handles.push(step.handle.clone());
        suspended.push((step, Instant::now(), queued_before));
        instances.push(instance);
    }

    // Stage every code-change, each process in its own actor, concurrently.
    let mut staging = tokio::task::JoinSet::new();
    let mut staged_pids = HashMap::with_capacity(suspended.len());
    for ((step, ..), instance) in suspended.iter().zip(instances) {
        let handle = step.handle.clone();
        let options = SwapOptions {
            extra: step.extra.clone(),
            direction,
            state: None,
        };
        let task = staging.spawn(async move { handle.stage(instance, options).await });
        staged_pids.insert(task.id(), step.handle.pid());
    }
    let mut failures = Vec::new();
    while let Some(joined) = staging.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failures.push(error),
            Err(join) => failures.push(SwapError::Exited {
                pid: staged_pids.get(&join.id()).copied().unwrap_or_default(),
                reason: ExitReason::HostFault {
                    cause: format!("staging its code-change failed: {join}"),
                },
            }),
        }
    }

    if !failures.is_empty() {
        for (step, ..) in &suspended {
            let _ = step.handle.abort().await;
        }
        resume_all(suspended.iter().map(|(s, ..)| &s.handle)).await;
        held.let_go();
        tracing::warn!(
            node = registry.node().0,
            release,
            failures = failures.len(),
            "release rolled back"
        );
        return Err(ReleaseError::RolledBack {
            release: release.to_string(),
            failures,
        });
    }

    // Commit all, then resume all, in order.
    let mut committed = Vec::with_capacity(suspended.len());
    for (step, ..) in &suspended {
        // `None`: staged, but stopped by someone else before the commit.
        committed.push(step.handle.commit().await.ok().flatten());
    }
    let mut reports = Vec::with_capacity(suspended.len());
    for ((step, suspended_at, queued_before), report) in suspended.iter().zip(committed) {
        let _ = step.handle.resume_by(Suspender::Release).await;
        if let Some(mut report) = report {
            report.pause = suspended_at.elapsed();
            report.queued_during_pause = step.handle.status.enqueued() - queued_before;
            report.total = started.elapsed();
            reports.push(report);
        }
    }
    held.let_go();
    let pause = paused_at.elapsed();
    tracing::info!(
        node = registry.node().0,
        release,
        processes = reports.len(),
        pause_us = pause.as_micros() as u64,
        "release applied"
    );
    Ok(ReleaseReport {
        release: release.to_string(),
        direction,
        processes: reports,
        pause,
        total: started.elapsed(),
    })
}

async fn resume_all<'a>(handles: impl Iterator<Item = &'a ProcessHandle>) {
    for handle in handles {
        // A process that exited meanwhile has nothing to resume.
        let _ = handle.resume_by(Suspender::Release).await;
    }
}

/// The processes a release holds suspended. The release resumes them itself on every way
/// out; should it stop first (a panic in host code between the suspend and the resume),
/// dropping this lets them go: each discards what it has staged, if anything, and serves
/// on. A process that committed already serves on at its new version.
///
/// The signals are queued from `drop` itself, while the node's release lock is still held
/// (the release's future is dropped inside the one holding the lock), so that a next
/// release's suspend and stage come after them, never before.
#[derive(Default)]
struct Held {
    handles: Vec<ProcessHandle>,
}

impl Held {
    /// The release has resumed every process itself.
    fn let_go(&mut self) {
        self.handles.clear();
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.handles.is_empty() {
            return;
        }
        tracing::error!(
            processes = self.handles.len(),
            "a release stopped while it held processes; resuming them"
        );
        for handle in self.handles.drain(..) {
            handle.abort_and_resume_now();
        }
    }
}
