//! A node: the engine, the loaded modules, the live processes and their names. The
//! library's front door: everything the CLI and the control endpoint do goes through here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::Process;
use crate::code::file_hashes::{FileStamp, read_stamped};
use crate::code::{CompileCache, Loader, ModuleStore, ModuleSummary, ModuleVersion};
use crate::engine::{Allocation, new_engine};
use crate::error::{CallError, ControlError, LoadError, NodeError, SpawnError, SwapError};
use crate::optimistic_swap;
use crate::process::actor::ProcessActor;
use crate::process::instance::GuestInstance;
use crate::process::status::ProcessStatus;
use crate::process::{OUTSIDE, Pid, ProcessHandle, ProcessInfo};
use crate::registry::{NodeId, ProcessRef, Registry};
use crate::release::{self, AppliedRelease, Move, Release, ReleaseError, ReleaseReport};
use crate::sandbox::Policy;
use crate::swap::{Direction, SwapOptions, SwapReport};

/// A node: cheap to clone, every clone is the same node.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

struct NodeInner {
    engine: Engine,
    loader: Loader,
    modules: ModuleStore,
    registry: Arc<Registry>,
    default_policy: Policy,
    /// The largest memory a pooled instance may have; `None` without a pool.
    pool_memory: Option<usize>,
    /// The releases applied, newest last, for `downgrade`. The async lock also makes
    /// releases run one at a time.
    releases: tokio::sync::Mutex<Vec<AppliedRelease>>,
}

/// What to start: a module (at a version, or its latest), with `init` arguments, a name to
/// register and the limits to run under.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub module: String,
    pub vsn: Option<String>,
    pub args: Vec<u8>,
    pub name: Option<String>,
    pub policy: Option<Policy>,
}

impl SpawnSpec {
    pub fn new(module: impl Into<String>) -> Self {
        Self {
            module: module.into(),
            vsn: None,
            args: Vec::new(),
            name: None,
            policy: None,
        }
    }

    pub fn vsn(mut self, vsn: impl Into<String>) -> Self {
        self.vsn = Some(vsn.into());
        self
    }

    pub fn args(mut self, args: impl Into<Vec<u8>>) -> Self {
        self.args = args.into();
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }
}

/// Runs a release in a task of its own, so that it reaches its end (every process
/// committed or rolled back, and resumed) even when the caller stops waiting: a caller
/// dropped between the suspend and the commit must not leave processes suspended with
/// staged instances.
async fn detached(
    release: String,
    work: impl Future<Output = Result<ReleaseReport, ReleaseError>> + Send + 'static,
) -> Result<ReleaseReport, ReleaseError> {
    tokio::spawn(work)
        .await
        .map_err(|failure| ReleaseError::Interrupted {
            release,
            cause: failure.to_string(),
        })?
}

/// How to build a node.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Limits and grants of processes spawned without their own.
    pub default_policy: Policy,
    /// Where compiled components are cached between runs; none: compile on every load.
    pub cache_dir: Option<PathBuf>,
    /// How instances are allocated: on demand, or from a pool sized for many processes.
    pub allocation: Allocation,
    /// Whether guest code counts fuel, so that policies may set `fuel_per_call`.
    pub fuel: bool,
}

impl Node {
    /// A node whose processes run under `default_policy` unless spawned with their own,
    /// without a compile cache.
    pub fn new(default_policy: Policy) -> Result<Self, NodeError> {
        Self::with_options(NodeOptions {
            default_policy,
            ..NodeOptions::default()
        })
    }

    pub fn with_options(options: NodeOptions) -> Result<Self, NodeError> {
        let NodeOptions {
            default_policy,
            cache_dir,
            allocation,
            fuel,
        } = options;
        let pool_memory = match allocation {
            Allocation::Pooled { max_memory, .. } => Some(max_memory),
            Allocation::OnDemand => None,
        };
        default_policy.validate_for(pool_memory)?;
        let engine = new_engine(allocation, fuel)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| NodeError::Linker(format!("{e:#}")))?;
        Process::add_to_linker::<_, HasSelf<_>>(&mut linker, |context| context)
            .map_err(|e| NodeError::Linker(format!("{e:#}")))?;
        let registry = Arc::new(Registry::default());
        let cache = cache_dir.map(|dir| CompileCache::new(dir, &engine));
        let loader = Loader::new(
            engine.clone(),
            Arc::new(linker),
            registry.clone(),
            fuel,
            cache,
        );
        Ok(Self {
            inner: Arc::new(NodeInner {
                engine,
                loader,
                modules: ModuleStore::default(),
                registry,
                default_policy,
                pool_memory,
                releases: tokio::sync::Mutex::default(),
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Loads a component file as a version of module `name` (a no-op if these exact bytes
    /// are loaded already). With a compile cache, an unchanged file loaded before is known
    /// by its `stat` and not read again (see [`FileHashes`](crate::code::file_hashes)).
    pub async fn load_file(
        &self,
        name: &str,
        path: impl AsRef<Path>,
    ) -> Result<Arc<ModuleVersion>, LoadError> {
        check_module_name(name)?;
        let path = path.as_ref();
        let source = path.display().to_string();
        let loader = &self.inner.loader;
        let known = FileStamp::of(path).ok();
        if let Some(hash) = known.as_ref().and_then(|stamp| loader.recall(stamp)) {
            if let Some(loaded) = self.inner.modules.by_hash(name, &hash) {
                return Ok(loaded);
            }
            if let Some(version) = loader.load_cached(name, &hash, &source).await? {
                return Ok(self.register(version));
            }
        }
        let owned = path.to_path_buf();
        let (bytes, stamp) = tokio::task::spawn_blocking(move || read_stamped(&owned))
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join)))
            .map_err(|source| LoadError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        let version = self.load_bytes(name, bytes, &source).await?;
        if let Some(stamp) = stamp {
            loader.remember(&stamp, &version.hash);
        }
        Ok(version)
    }

    /// Loads component bytes as a version of module `name`.
    pub async fn load_bytes(
        &self,
        name: &str,
        bytes: Vec<u8>,
        source: &str,
    ) -> Result<Arc<ModuleVersion>, LoadError> {
        check_module_name(name)?;
        let (hash, bytes) = tokio::task::spawn_blocking(move || (Loader::hash(&bytes), bytes))
            .await
            .map_err(|e| LoadError::Compile {
                what: format!("{source} (module {name})"),
                cause: format!("the hashing thread failed: {e}"),
            })?;
        if let Some(loaded) = self.inner.modules.by_hash(name, &hash) {
            return Ok(loaded);
        }
        let version = self.inner.loader.load(name, bytes, &hash, source).await?;
        Ok(self.register(version))
    }

    fn register(&self, version: ModuleVersion) -> Arc<ModuleVersion> {
        let version = self.inner.modules.insert(version);
        tracing::info!(
            node = self.inner.registry.node().0,
            module = %version.name,
            vsn = %version.vsn,
            hash = %&version.hash[..12],
            "loaded"
        );
        version
    }

    /// A loaded version of `module`: the latest loaded that exports `vsn`.
    pub fn module_version(&self, module: &str, vsn: &str) -> Option<Arc<ModuleVersion>> {
        self.inner.modules.by_vsn(module, vsn)
    }

    /// The modules loaded on this node, with their versions in load order.
    pub fn modules(&self) -> Vec<ModuleSummary> {
        self.inner.modules.summaries()
    }

    /// Starts a process: instantiates the module, runs `init`, registers the name.
    pub async fn spawn(&self, spec: SpawnSpec) -> Result<Pid, SpawnError> {
        let version =
            match &spec.vsn {
                Some(vsn) => self
                    .inner
                    .modules
                    .by_vsn(&spec.module, vsn)
                    .ok_or_else(|| SpawnError::NoSuchVersion {
                        module: spec.module.clone(),
                        vsn: vsn.clone(),
                    })?,
                None => self.inner.modules.latest(&spec.module).ok_or_else(|| {
                    SpawnError::NoSuchModule {
                        module: spec.module.clone(),
                    }
                })?,
            };
        if let Some(name) = &spec.name {
            self.inner.registry.check_name_free(name)?;
        }
        let policy = spec
            .policy
            .unwrap_or_else(|| self.inner.default_policy.clone());
        policy.validate_for(self.inner.pool_memory)?;
        let registry = &self.inner.registry;
        let pid = registry.allocate_pid();
        let mut instance = GuestInstance::instantiate(&version, pid, registry.clone(), &policy)
            .await
            .map_err(|cause| SpawnError::Instantiate {
                module: version.name.to_string(),
                vsn: version.vsn.to_string(),
                cause,
            })?;
        match instance.init(&spec.args, policy.message_time_limit).await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                return Err(SpawnError::InitRefused {
                    module: version.name.to_string(),
                    vsn: version.vsn.to_string(),
                    reason,
                });
            }
            Err(trap) => {
                return Err(SpawnError::InitTrapped {
                    module: version.name.to_string(),
                    vsn: version.vsn.to_string(),
                    cause: trap.to_string(),
                });
            }
        }
        let status = Arc::new(ProcessStatus::new(
            pid,
            registry.node(),
            spec.name,
            policy,
            version.clone(),
        ));
        let (handle, actor) = ProcessActor::new(status, instance, registry.clone());
        registry.register(handle)?;
        tokio::spawn(actor.run());
        let node = registry.node().0;
        tracing::info!(node, pid, module = %version.name, vsn = %version.vsn, "spawned");
        Ok(pid)
    }

    pub fn process(&self, target: &ProcessRef) -> Option<ProcessHandle> {
        self.inner.registry.resolve(target)
    }

    /// This node's id, which its guests' log lines carry as `node`.
    pub fn id(&self) -> NodeId {
        self.inner.registry.node()
    }

    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.inner.registry.whereis(name)
    }

    /// A synchronous request from outside the node.
    pub async fn call(
        &self,
        target: &ProcessRef,
        request: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        self.handle_for_message(target)?
            .call(request, OUTSIDE, timeout)
            .await
    }

    pub fn cast(&self, target: &ProcessRef, message: Vec<u8>) -> Result<(), CallError> {
        self.handle_for_message(target)?.cast(message)
    }

    /// Sends `message` to the process's `handle-info`.
    pub fn send(&self, target: &ProcessRef, message: Vec<u8>) -> Result<(), CallError> {
        self.handle_for_message(target)?.info(message)
    }

    fn handle_for_message(&self, target: &ProcessRef) -> Result<ProcessHandle, CallError> {
        self.process(target).ok_or_else(|| CallError::NoProcess {
            target: target.to_string(),
        })
    }

    /// Hot swaps a process to the component in `path`, loaded as a new version of the
    /// process's module.
    pub async fn swap_file(
        &self,
        target: &ProcessRef,
        path: impl AsRef<Path>,
        options: SwapOptions,
    ) -> Result<SwapReport, SwapError> {
        let requested_at = Instant::now();
        let handle = self.handle_for_swap(target)?;
        let module = handle.status.running().name.clone();
        let version = self
            .load_file(&module, path)
            .await
            .map_err(|source| SwapError::Load {
                pid: handle.pid(),
                source,
            })?;
        self.swap_prepared(handle, version, options, requested_at)
            .await
    }

    /// Hot swaps a process to a loaded version of its module.
    pub async fn swap(
        &self,
        target: &ProcessRef,
        version: Arc<ModuleVersion>,
        options: SwapOptions,
    ) -> Result<SwapReport, SwapError> {
        let requested_at = Instant::now();
        let handle = self.handle_for_swap(target)?;
        self.swap_prepared(handle, version, options, requested_at)
            .await
    }

    fn handle_for_swap(&self, target: &ProcessRef) -> Result<ProcessHandle, SwapError> {
        self.process(target).ok_or_else(|| SwapError::NoProcess {
            target: target.to_string(),
        })
    }

    /// Steps 2-7 of the protocol: instantiate outside the pause, then hand over to the actor.
    async fn swap_prepared(
        &self,
        handle: ProcessHandle,
        version: Arc<ModuleVersion>,
        options: SwapOptions,
        requested_at: Instant,
    ) -> Result<SwapReport, SwapError> {
        let pid = handle.pid();
        let current = handle.status.running();
        if current.name != version.name {
            return Err(SwapError::WrongModule {
                pid,
                current: current.name.to_string(),
                requested: version.name.to_string(),
            });
        }
        let prepare = || async {
            GuestInstance::prepare_swap_target(
                &version,
                pid,
                self.inner.registry.clone(),
                &handle.status.policy,
            )
            .await
            .map_err(|cause| SwapError::Instantiate {
                pid,
                module: version.name.to_string(),
                vsn: version.vsn.to_string(),
                cause,
            })
        };
        let next = prepare().await?;
        // The snapshot is taken between two messages, and a message waiting behind it is
        // served while the state migrates: the migration is stale before it can commit, and
        // the swap prepares a second instance to run the classic way after all. Under load,
        // four swaps in five did (`hotswap-bench`'s swaps under calls). A given state
        // (`replace-state`) cannot go stale that way.
        if options.state.is_none() && handle.has_messages_waiting() {
            return handle.swap(next, options, requested_at).await;
        }
        let optimistic = optimistic_swap::swap(&handle, next, options.clone(), requested_at);
        if let Some(report) = optimistic.await? {
            return Ok(report);
        }
        // The process served a message while the state was migrated: swap it the classic
        // way, snapshot and code-change in the pause.
        handle.swap(prepare().await?, options, requested_at).await
    }

    /// The process's state blob, read between two messages.
    pub async fn get_state(&self, target: &ProcessRef) -> Result<Vec<u8>, ControlError> {
        self.handle_for_control(target)?.get_state().await
    }

    /// Stops a process after the message in hand (`terminate` runs first).
    pub async fn stop(&self, target: &ProcessRef, reason: &str) -> Result<(), ControlError> {
        self.handle_for_control(target)?.stop(reason).await
    }

    fn handle_for_control(&self, target: &ProcessRef) -> Result<ProcessHandle, ControlError> {
        self.process(target).ok_or_else(|| ControlError::NoProcess {
            target: target.to_string(),
        })
    }

    /// Suspends a process after the message in hand (`sys:suspend`): user messages queue,
    /// control requests are still served. Idempotent.
    pub async fn suspend(&self, target: &ProcessRef) -> Result<(), ControlError> {
        self.handle_for_control(target)?.suspend().await
    }

    /// Resumes a suspended process (`sys:resume`). Idempotent.
    pub async fn resume(&self, target: &ProcessRef) -> Result<(), ControlError> {
        self.handle_for_control(target)?.resume().await
    }

    /// Replaces a process's state (`sys:replace_state`, made safe): `state` goes through
    /// `code-change` on a fresh instance of the running version, and is committed only if
    /// that instance accepts it. A bad blob never reaches the process.
    pub async fn replace_state(
        &self,
        target: &ProcessRef,
        state: Vec<u8>,
        extra: Vec<u8>,
    ) -> Result<SwapReport, SwapError> {
        let requested_at = Instant::now();
        let handle = self.handle_for_swap(target)?;
        let version = handle.status.running();
        let options = SwapOptions {
            extra,
            direction: Direction::Upgrade,
            state: Some(state),
        };
        self.swap_prepared(handle, version, options, requested_at)
            .await
    }

    /// Moves every process of `module` to `version`, all or nothing (OTP's
    /// `{update, Module, {advanced, Extra}}`).
    pub async fn update_module(
        &self,
        version: Arc<ModuleVersion>,
        extra: Vec<u8>,
    ) -> Result<ReleaseReport, ReleaseError> {
        let name = format!("update {} to vsn {}", version.name, version.vsn);
        let node = self.clone();
        detached(name.clone(), async move {
            node.apply(&name, vec![(version, extra)], Instant::now())
                .await
        })
        .await
    }

    /// Upgrades to a release: every process of every module it names moves to that
    /// module's version, all or nothing.
    pub async fn upgrade(&self, release: &Release) -> Result<ReleaseReport, ReleaseError> {
        let (node, release) = (self.clone(), release.clone());
        detached(release.name.clone(), async move {
            node.upgrade_now(&release).await
        })
        .await
    }

    async fn upgrade_now(&self, release: &Release) -> Result<ReleaseReport, ReleaseError> {
        let started = Instant::now();
        release.check().map_err(|problem| ReleaseError::Invalid {
            release: release.name.clone(),
            problem,
        })?;
        let mut targets = Vec::with_capacity(release.modules.len());
        for module in &release.modules {
            let version = match (&module.file, &module.vsn) {
                (Some(file), _) => self.load_file(&module.name, file).await.map_err(|source| {
                    ReleaseError::Load {
                        release: release.name.clone(),
                        module: module.name.clone(),
                        source,
                    }
                })?,
                (None, vsn) => {
                    // `check` made sure there is one.
                    let vsn = vsn.clone().unwrap_or_default();
                    self.inner
                        .modules
                        .by_vsn(&module.name, &vsn)
                        .ok_or_else(|| ReleaseError::NoSuchVersion {
                            release: release.name.clone(),
                            module: module.name.clone(),
                            vsn,
                        })?
                }
            };
            targets.push((version, module.extra.clone().into_bytes()));
        }
        self.apply(&release.name, targets, started).await
    }

    /// Moves the processes of the last release applied back to the versions they had
    /// before it, as a downgrade, all or nothing.
    pub async fn downgrade(&self) -> Result<ReleaseReport, ReleaseError> {
        let node = self.clone();
        detached(
            "downgrade".into(),
            async move { node.downgrade_now().await },
        )
        .await
    }

    async fn downgrade_now(&self) -> Result<ReleaseReport, ReleaseError> {
        let started = Instant::now();
        let mut releases = self.inner.releases.lock().await;
        let last = releases.pop().ok_or(ReleaseError::NothingToDowngrade)?;
        let moves = last
            .moves
            .iter()
            .filter_map(|(pid, from, to)| {
                let handle = self.inner.registry.lookup(*pid)?;
                // Only processes still on what the release gave them go back.
                (handle.status.running().hash == to.hash).then(|| Move {
                    handle,
                    from: to.clone(),
                    to: from.clone(),
                    extra: Vec::new(),
                })
            })
            .collect();
        let name = format!("downgrade from {}", last.name);
        let registry = &self.inner.registry;
        match release::execute(&name, moves, Direction::Downgrade, registry, started).await {
            Ok(report) => Ok(report),
            Err(error) => {
                releases.push(last);
                Err(error)
            }
        }
    }

    /// Plans and runs a release over the processes of the given module versions.
    async fn apply(
        &self,
        name: &str,
        targets: Vec<(Arc<ModuleVersion>, Vec<u8>)>,
        started: Instant,
    ) -> Result<ReleaseReport, ReleaseError> {
        let mut releases = self.inner.releases.lock().await;
        let processes = self.inner.registry.all();
        let mut moves = Vec::new();
        for (to, extra) in &targets {
            for handle in &processes {
                let from = handle.status.running();
                if from.name == to.name && from.hash != to.hash {
                    moves.push(Move {
                        handle: handle.clone(),
                        from,
                        to: to.clone(),
                        extra: extra.clone(),
                    });
                }
            }
        }
        let applied = AppliedRelease {
            name: name.to_string(),
            moves: moves
                .iter()
                .map(|m| (m.handle.pid(), m.from.clone(), m.to.clone()))
                .collect(),
        };
        let registry = &self.inner.registry;
        let report = release::execute(name, moves, Direction::Upgrade, registry, started).await?;
        // A release that moved nothing leaves nothing to go back from.
        if !applied.moves.is_empty() {
            releases.push(applied);
        }
        Ok(report)
    }

    /// Every live process, by pid.
    pub fn ps(&self) -> Vec<ProcessInfo> {
        self.inner
            .registry
            .all()
            .iter()
            .map(ProcessHandle::describe)
            .collect()
    }
}

fn check_module_name(name: &str) -> Result<(), LoadError> {
    let why = if name.is_empty() {
        "it is empty"
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        "use letters, digits, '-' and '_' only"
    } else {
        return Ok(());
    };
    Err(LoadError::BadName {
        name: name.to_string(),
        why,
    })
}
