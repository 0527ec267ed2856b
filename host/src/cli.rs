//! The `hotswap` command: `run` starts a node; every other subcommand is a client of a
//! running node's control endpoint, prints what it got, and exits non-zero with one clear
//! line on failure.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use hotswap::admin::{self, Client, Payload, Request, Token, token_file};
use hotswap::code::ModuleSummary;
use hotswap::code::Origin;
use hotswap::code::module_version::ModuleInfo;
use hotswap::config::{DEFAULT_CONTROL, NodeConfig};
use hotswap::{
    Direction, Node, NodeOptions, ProcessInfo, ProcessRef, ReleaseReport, SpawnSpec, SwapReport,
};

/// Prints a line on stdout; a reader that went away (`hotswap ps | head -1`) ends the command
/// quietly instead of a panic.
macro_rules! say {
    ($($arg:tt)*) => {
        write_line(format_args!($($arg)*))
    };
}

fn write_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(error) = writeln!(std::io::stdout(), "{line}") {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {error}");
        std::process::exit(1);
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "hotswap",
    version,
    about = "Erlang/OTP-style hot code swapping for WebAssembly components"
)]
pub struct Cli {
    /// The control endpoint of the node to talk to.
    #[arg(long, global = true, env = "HOTSWAP_NODE", default_value = DEFAULT_CONTROL)]
    node: SocketAddr,
    /// The node's control token, for requests that change it. Default: the token file the
    /// node wrote (~/.hotswap/node-PORT.token).
    #[arg(long, global = true, env = "HOTSWAP_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a node with the modules and named processes of a TOML config file.
    Run { config: PathBuf },
    /// Send a request to a process and print its reply.
    Call {
        /// A registered name, or a pid.
        target: String,
        request: String,
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// Send a request to a process without waiting for anything.
    Cast { target: String, message: String },
    /// Send a message to a process's handle-info.
    Send { target: String, message: String },
    /// Hot swap a process to the component in FILE (loaded as a new version of its module).
    Swap {
        target: String,
        file: PathBuf,
        /// Free-form argument for the new version's code-change (OTP's Extra).
        #[arg(long, default_value = "")]
        extra: String,
        /// Tell code-change this is a downgrade (the state is in a newer version's format).
        #[arg(long)]
        downgrade: bool,
    },
    /// List the live processes.
    Ps,
    /// Print a process's state (its snapshot).
    State { target: String },
    /// Load a component file as a new version of a module (its processes keep running
    /// their version until swapped, updated or upgraded).
    Load {
        file: PathBuf,
        /// The module it is a version of; the file's stem (`kv` for `kv.wasm`) if not given.
        #[arg(long, short)]
        module: Option<String>,
    },
    /// Suspend a process: it finishes the message in hand, then user messages queue.
    Suspend { target: String },
    /// Resume a suspended process.
    Resume { target: String },
    /// Replace a process's state; the running version's code-change must accept it first.
    ReplaceState {
        target: String,
        state: String,
        #[arg(long, default_value = "")]
        extra: String,
    },
    /// Move every process of MODULE to its loaded version VSN, all or nothing.
    Update {
        module: String,
        vsn: String,
        #[arg(long, default_value = "")]
        extra: String,
    },
    /// Upgrade to a release (a TOML file naming module versions), all or nothing.
    Upgrade { release: PathBuf },
    /// Move the processes of the last release back to their previous versions.
    Downgrade,
    /// List the loaded modules and their versions.
    Modules,
    /// Start a process of a loaded module.
    Spawn {
        module: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        vsn: Option<String>,
        #[arg(long, default_value = "")]
        args: String,
    },
    /// Stop a process (its terminate runs first).
    Stop {
        target: String,
        #[arg(long, default_value = "stopped by operator")]
        reason: String,
    },
}

impl Cli {
    pub async fn run(self) -> Result<()> {
        let token = self
            .token
            .map(Token::new)
            .or_else(|| Token::read_file(&token_file(self.node)).ok());
        let node = Target {
            addr: self.node,
            token,
        };
        match self.command {
            Command::Run { config } => run_node(&config).await,
            Command::Call {
                target,
                request,
                timeout_ms,
            } => {
                let reply: Payload = ask(
                    node,
                    Request::Call {
                        target: parse_target(&target),
                        request,
                        timeout_ms: Some(timeout_ms),
                    },
                )
                .await?;
                say!("{reply}");
                Ok(())
            }
            Command::Cast { target, message } => {
                let target = parse_target(&target);
                ask::<()>(node, Request::Cast { target, message }).await
            }
            Command::Send { target, message } => {
                let target = parse_target(&target);
                ask::<()>(node, Request::Send { target, message }).await
            }
            Command::Swap {
                target,
                file,
                extra,
                downgrade,
            } => {
                let direction = if downgrade {
                    Direction::Downgrade
                } else {
                    Direction::Upgrade
                };
                let request = Request::Swap {
                    target: parse_target(&target),
                    file: absolute(&file)?,
                    extra,
                    direction,
                };
                let report: SwapReport = ask(node, request).await?;
                print_report(&report);
                Ok(())
            }
            Command::Ps => {
                let processes: Vec<ProcessInfo> = ask(node, Request::Ps).await?;
                print_ps(&processes);
                Ok(())
            }
            Command::State { target } => {
                let target = parse_target(&target);
                let state: Payload = ask(node, Request::State { target }).await?;
                say!("{state}");
                Ok(())
            }
            Command::Load { file, module } => {
                let module = match module {
                    Some(module) => module,
                    None => file
                        .file_stem()
                        .and_then(|stem| stem.to_str())
                        .map(str::to_string)
                        .with_context(|| format!("no module name in {}", file.display()))?,
                };
                let file = absolute(&file)?;
                let info = ask(node, Request::Load { module, file }).await?;
                print_versions(&[info]);
                Ok(())
            }
            Command::Suspend { target } => {
                let target = parse_target(&target);
                ask::<()>(node, Request::Suspend { target }).await
            }
            Command::Resume { target } => {
                let target = parse_target(&target);
                ask::<()>(node, Request::Resume { target }).await
            }
            Command::ReplaceState {
                target,
                state,
                extra,
            } => {
                let target = parse_target(&target);
                let request = Request::ReplaceState {
                    target,
                    state,
                    extra,
                };
                let report: SwapReport = ask(node, request).await?;
                say!(
                    "replaced the state of pid {} ({} vsn {}): {} bytes accepted, pause {}",
                    report.pid,
                    report.module,
                    report.to_vsn,
                    report.state_bytes,
                    human(report.pause)
                );
                Ok(())
            }
            Command::Update { module, vsn, extra } => {
                let report = ask(node, Request::Update { module, vsn, extra }).await?;
                print_release(&report);
                Ok(())
            }
            Command::Upgrade { release } => {
                let release = absolute(&release)?;
                print_release(&ask(node, Request::Upgrade { release }).await?);
                Ok(())
            }
            Command::Downgrade => {
                print_release(&ask(node, Request::Downgrade).await?);
                Ok(())
            }
            Command::Modules => {
                let modules: Vec<ModuleSummary> = ask(node, Request::Modules).await?;
                print_modules(&modules);
                Ok(())
            }
            Command::Spawn {
                module,
                name,
                vsn,
                args,
            } => {
                let request = Request::Spawn {
                    module,
                    vsn,
                    name,
                    args,
                };
                let pid: u64 = ask(node, request).await?;
                say!("{pid}");
                Ok(())
            }
            Command::Stop { target, reason } => {
                let target = parse_target(&target);
                ask::<()>(node, Request::Stop { target, reason }).await
            }
        }
    }
}

fn parse_target(target: &str) -> ProcessRef {
    match target.parse() {
        Ok(target) => target,
        Err(never) => match never {},
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("bad path {}", path.display()))
}

/// The node the CLI talks to.
struct Target {
    addr: SocketAddr,
    token: Option<Token>,
}

async fn ask<T: serde::de::DeserializeOwned>(node: Target, request: Request) -> Result<T> {
    let mut client = Client::connect(node.addr, node.token).await?;
    // Loads, swaps and releases may compile a component: seconds for Python or JavaScript.
    let compiles = matches!(
        request,
        Request::Load { .. } | Request::Swap { .. } | Request::Upgrade { .. }
    );
    let answer = client.request(&request);
    if compiles {
        Ok(with_progress("waiting for the node (it may be compiling)", answer).await?)
    } else {
        Ok(answer.await?)
    }
}

/// Awaits `work`; if it takes more than a second and stderr is a terminal, shows that it is
/// still going, with the time spent.
async fn with_progress<T>(what: &str, work: impl std::future::Future<Output = T>) -> T {
    use std::io::{IsTerminal, Write};
    if !std::io::stderr().is_terminal() {
        return work.await;
    }
    let started = std::time::Instant::now();
    let mut work = std::pin::pin!(work);
    let mut ticks = tokio::time::interval(Duration::from_millis(250));
    let mut shown = false;
    loop {
        tokio::select! {
            done = &mut work => {
                if shown {
                    eprint!("\r\x1b[2K");
                }
                return done;
            }
            _ = ticks.tick() => {
                if started.elapsed() >= Duration::from_secs(1) {
                    eprint!("\r{what} ... {:.1} s", started.elapsed().as_secs_f64());
                    let _ = std::io::stderr().flush();
                    shown = true;
                }
            }
        }
    }
}

/// `hotswap run CONFIG`: load, spawn, serve until Ctrl-C, then stop every process.
async fn run_node(config_path: &Path) -> Result<()> {
    let config = NodeConfig::from_file(config_path)?;
    let token = config.control_token.clone().map(Token::new);
    let endpoint = admin::bind(config.control, token).await?;
    let node = Node::with_options(NodeOptions {
        default_policy: config.policy.clone(),
        cache_dir: config.compile_cache.dir(),
        allocation: config.allocation(),
        fuel: config.fuel,
    })?;
    for module in &config.modules {
        let what = format!("loading {} from {}", module.name, module.file.display());
        let version = with_progress(&what, node.load_file(&module.name, &module.file)).await?;
        let how = match version.origin {
            Origin::Cached => "from the compile cache",
            Origin::Compiled => "compiled",
        };
        eprintln!(
            "loaded {} vsn {} ({}, {how} in {:.0} ms)",
            version.name,
            version.vsn,
            &version.hash[..12],
            version.compile_time.as_secs_f64() * 1e3
        );
    }
    for process in &config.processes {
        let mut spec = SpawnSpec::new(&process.module)
            .name(&process.name)
            .args(process.args.as_bytes());
        spec.vsn = process.vsn.clone();
        spec.policy = process.policy.clone();
        let pid = node
            .spawn(spec)
            .await
            .with_context(|| format!("cannot start process {:?}", process.name))?;
        eprintln!("started {} as pid {pid}", process.name);
    }
    let control = tokio::spawn(admin::serve(node.clone(), endpoint));
    eprintln!("node ready; control endpoint on {}", config.control);
    tokio::select! {
        served = control => match served {
            Ok(()) => bail!("the control endpoint stopped"),
            Err(error) => bail!("the control endpoint failed: {error}"),
        },
        signal = tokio::signal::ctrl_c() => {
            signal.context("cannot wait for Ctrl-C")?;
            eprintln!("shutting down");
            for process in node.ps() {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    node.stop(&ProcessRef::Pid(process.pid), "node shutdown"),
                )
                .await;
            }
            Ok(())
        }
    }
}

fn print_report(report: &SwapReport) {
    let who = match &report.name {
        Some(name) => format!("{name} (pid {})", report.pid),
        None => format!("pid {}", report.pid),
    };
    let way = match report.direction {
        Direction::Upgrade => "upgraded",
        Direction::Downgrade => "downgraded",
    };
    say!(
        "{way} {who}: {} vsn {} -> {}",
        report.module,
        report.from_vsn,
        report.to_vsn
    );
    let what = if report.migrated_before_pause {
        "snapshot + commit; code-change ran before it, the old version serving"
    } else {
        "snapshot + code-change + commit"
    };
    say!(
        "  pause              {:>10}   (mailbox not served: {what})",
        human(report.pause)
    );
    let code_change_when = if report.migrated_before_pause {
        "before the pause"
    } else {
        "in the pause"
    };
    say!(
        "  snapshot           {:>10}   (the old version writing its state, in the pause)",
        human(report.snapshot)
    );
    say!(
        "  code-change        {:>10}   (the new version adopting it, {code_change_when})",
        human(report.code_change)
    );
    say!(
        "  total              {:>10}   (load + instantiate + pause)",
        human(report.total)
    );
    say!(
        "  queued in pause    {:>10}   messages, served right after",
        report.queued_during_pause
    );
    say!("  state handed over  {:>10}   bytes", report.state_bytes);
}

fn human(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

fn print_ps(processes: &[ProcessInfo]) {
    say!(
        "{:<6} {:<16} {:<16} {:<10} {:>9} {:>10}  STATUS",
        "PID",
        "NAME",
        "MODULE",
        "VSN",
        "MAILBOX",
        "HANDLED"
    );
    for p in processes {
        say!(
            "{:<6} {:<16} {:<16} {:<10} {:>9} {:>10}  {}",
            p.pid,
            p.name.as_deref().unwrap_or("-"),
            p.module,
            p.vsn,
            p.mailbox,
            p.handled,
            match (p.suspended, p.hibernating) {
                (true, _) => "suspended",
                (false, true) => "hibernating",
                (false, false) => "running",
            }
        );
    }
}

fn print_modules(modules: &[ModuleSummary]) {
    let versions: Vec<_> = modules.iter().flat_map(|m| m.versions.clone()).collect();
    print_versions(&versions);
}

fn print_versions(versions: &[ModuleInfo]) {
    say!("{:<12} {:<10} {:<14} SOURCE", "MODULE", "VSN", "HASH");
    for v in versions {
        say!(
            "{:<12} {:<10} {:<14} {}",
            v.name,
            v.vsn,
            &v.hash[..12.min(v.hash.len())],
            v.source
        );
    }
}

fn print_release(report: &ReleaseReport) {
    if report.processes.is_empty() {
        say!(
            "{}: nothing to move, every process is already there",
            report.release
        );
        return;
    }
    say!(
        "{}: {} processes moved, all or nothing",
        report.release,
        report.processes.len()
    );
    say!(
        "  {:<6} {:<16} {:<12} {:<16} {:>10} {:>8}",
        "PID",
        "NAME",
        "MODULE",
        "VSN",
        "PAUSE",
        "QUEUED"
    );
    for p in &report.processes {
        say!(
            "  {:<6} {:<16} {:<12} {:<16} {:>10} {:>8}",
            p.pid,
            p.name.as_deref().unwrap_or("-"),
            p.module,
            format!("{} -> {}", p.from_vsn, p.to_vsn),
            human(p.pause),
            p.queued_during_pause
        );
    }
    say!(
        "  whole release: pause {} (first suspend to last resume), total {}",
        human(report.pause),
        human(report.total)
    );
}
