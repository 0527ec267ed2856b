//! The `hotswap` command: `run` starts a node; every other subcommand is a client of a
//! running node's control endpoint, prints what it got, and exits non-zero with one clear
//! line on failure.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use hotswap::admin::{self, Client, Payload, Request};
use hotswap::code::ModuleSummary;
use hotswap::config::{DEFAULT_CONTROL, NodeConfig};
use hotswap::{Direction, Node, ProcessInfo, ProcessRef, SpawnSpec, SwapReport};

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
    /// Load a component file as a version of MODULE.
    Load { module: String, file: PathBuf },
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
        let node = self.node;
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
                println!("{reply}");
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
                println!("{state}");
                Ok(())
            }
            Command::Load { module, file } => {
                let file = absolute(&file)?;
                let info: hotswap::code::ModuleSummary = ModuleSummary {
                    name: module.clone(),
                    versions: vec![ask(node, Request::Load { module, file }).await?],
                };
                print_modules(&[info]);
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
                println!("{pid}");
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

async fn ask<T: serde::de::DeserializeOwned>(node: SocketAddr, request: Request) -> Result<T> {
    let mut client = Client::connect(node).await?;
    Ok(client.request(&request).await?)
}

/// `hotswap run CONFIG`: load, spawn, serve until Ctrl-C, then stop every process.
async fn run_node(config_path: &Path) -> Result<()> {
    let config = NodeConfig::from_file(config_path)?;
    let node = Node::new(config.policy.clone())?;
    for module in &config.modules {
        eprintln!("loading {} from {} ...", module.name, module.file.display());
        let version = node.load_file(&module.name, &module.file).await?;
        eprintln!(
            "loaded {} vsn {} ({}, compiled in {:.0} ms)",
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
    let control = tokio::spawn(admin::serve(node.clone(), config.control));
    eprintln!("node ready; control endpoint on {}", config.control);
    tokio::select! {
        served = control => match served {
            Ok(Ok(())) => bail!("the control endpoint stopped"),
            Ok(Err(error)) => Err(error.into()),
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
    println!(
        "{way} {who}: {} vsn {} -> {}",
        report.module, report.from_vsn, report.to_vsn
    );
    println!(
        "  pause              {:>10}   (mailbox not served: snapshot + code-change + commit)",
        human(report.pause)
    );
    println!(
        "  total              {:>10}   (load + instantiate + pause)",
        human(report.total)
    );
    println!(
        "  queued in pause    {:>10}   messages, served right after",
        report.queued_during_pause
    );
    println!("  state handed over  {:>10}   bytes", report.state_bytes);
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
    println!(
        "{:<6} {:<16} {:<12} {:<10} {:>9} {:>10}",
        "PID", "NAME", "MODULE", "VSN", "MAILBOX", "HANDLED"
    );
    for p in processes {
        println!(
            "{:<6} {:<16} {:<12} {:<10} {:>9} {:>10}",
            p.pid,
            p.name.as_deref().unwrap_or("-"),
            p.module,
            p.vsn,
            p.mailbox,
            p.handled
        );
    }
}

fn print_modules(modules: &[ModuleSummary]) {
    println!("{:<12} {:<10} {:<14} SOURCE", "MODULE", "VSN", "HASH");
    for module in modules {
        for v in &module.versions {
            println!(
                "{:<12} {:<10} {:<14} {}",
                v.name,
                v.vsn,
                &v.hash[..12.min(v.hash.len())],
                v.source
            );
        }
    }
}
