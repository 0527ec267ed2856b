//! The `hotswap` command, driven as an operator would: a node started with `hotswap run`,
//! then `call`, `swap`, `ps`, `state` and a failing swap over its control endpoint.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::guest;

const HOTSWAP: &str = env!("CARGO_BIN_EXE_hotswap");

/// A `hotswap run` child process, killed when dropped.
struct RunningNode {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RunningNode {
    fn start(test: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let dir = std::env::temp_dir().join(format!("hotswap-cli-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("node.toml");
        std::fs::write(
            &config,
            format!(
                "control = \"{addr}\"\ncompile_cache = \"{}\"\n\n[[module]]\nname = \"kv\"\nfile = \"{}\"\n\n[[process]]\nname = \"kv\"\nmodule = \"kv\"\n",
                dir.join("cache").display(),
                guest("kv-v0").display()
            ),
        )
        .expect("config");
        let child = Command::new(HOTSWAP)
            .arg("run")
            .arg(&config)
            .env("HOTSWAP_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hotswap run");
        let node = Self { child, addr, dir };
        let started = Instant::now();
        while std::net::TcpStream::connect(&node.addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the node did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(HOTSWAP)
            .arg("--node")
            .arg(&self.addr)
            .args(args)
            .output()
            .expect("run the cli")
    }

    /// Runs a subcommand that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "hotswap {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a subcommand that must fail; returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(!out.status.success(), "hotswap {args:?} should have failed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn an_operator_puts_swaps_and_gets_through_the_cli() {
    let node = RunningNode::start("story");
    let put = r#"{"op":"put","key":"a","value":42}"#;
    assert_eq!(node.ok(&["call", "kv", put]).trim(), "null");

    let ps = node.ok(&["ps"]);
    let row = ps.lines().find(|l| l.contains(" kv ")).expect("kv in ps");
    assert!(row.split_whitespace().any(|c| c == "0"), "vsn 0: {ps}");

    let v1 = guest("kv-v1");
    let report = node.ok(&["swap", "kv", path(&v1), "--extra", "hello"]);
    assert!(report.contains("kv vsn 0 -> 1"), "{report}");
    assert!(report.contains("pause"), "{report}");
    assert!(report.contains("snapshot"), "{report}");
    assert!(
        report.contains("code-change") && report.contains("before the pause"),
        "an idle process's state is migrated before the pause: {report}"
    );

    assert_eq!(
        node.ok(&["call", "kv", r#"{"op":"get","key":"a"}"#]).trim(),
        "42"
    );
    assert_eq!(node.ok(&["state", "kv"]).trim(), r#"{"entries":{"a":42}}"#);
    let ps = node.ok(&["ps"]);
    let row = ps.lines().find(|l| l.contains(" kv ")).expect("kv in ps");
    let columns: Vec<_> = row.split_whitespace().collect();
    assert_eq!(columns[3], "1", "vsn column: {ps}");
    assert_eq!(columns[5], "2", "two calls handled: {ps}");

    let modules = node.ok(&["modules"]);
    assert_eq!(
        modules.lines().count(),
        3,
        "a header and two versions: {modules}"
    );
}

#[test]
fn failures_print_one_line_and_exit_non_zero() {
    let node = RunningNode::start("failures");
    node.ok(&["call", "kv", r#"{"op":"put","key":"a","value":1}"#]);

    let trap = guest("kv-migrate-trap");
    let error = node.fails(&["swap", "kv", path(&trap)]);
    assert_eq!(error.trim().lines().count(), 1, "one line: {error}");
    assert!(error.starts_with("error: "), "{error}");
    assert!(error.contains("trapped in code-change"), "{error}");

    let error = node.fails(&["swap", "kv", "/nonexistent.wasm"]);
    assert!(error.contains("/nonexistent.wasm"), "{error}");
    let error = node.fails(&["call", "nobody", "{}"]);
    assert!(error.contains("no process named \"nobody\""), "{error}");
    let error = node.fails(&["call", "kv", r#"{"op":"nope"}"#]);
    assert!(error.contains("unknown"), "{error}");

    assert_eq!(
        node.ok(&["call", "kv", r#"{"op":"get","key":"a"}"#]).trim(),
        "1"
    );
    let unreachable = Command::new(HOTSWAP)
        .args(["--node", "127.0.0.1:1", "ps"])
        .output()
        .expect("run the cli");
    assert!(!unreachable.status.success());
    let error = String::from_utf8_lossy(&unreachable.stderr);
    assert!(error.contains("cannot reach the node"), "{error}");
}

#[test]
fn a_malformed_config_is_refused_with_its_cause() {
    let dir = std::env::temp_dir().join(format!("hotswap-badconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("bad.toml");
    std::fs::write(&config, "[[process]]\nname = \"kv\"\nmodule = \"kv\"\n").expect("write");
    let out = Command::new(HOTSWAP)
        .arg("run")
        .arg(&config)
        .output()
        .expect("run");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("no [[module]] entry"), "{error}");
}

#[test]
fn changes_need_the_token_and_inspection_does_not() {
    let node = RunningNode::start("token");
    let wrong = |args: &[&str]| {
        Command::new(HOTSWAP)
            .args(["--node", &node.addr, "--token", "not-the-token"])
            .args(args)
            .output()
            .expect("run the cli")
    };
    let out = wrong(&["call", "kv", r#"{"op":"put","key":"a","value":1}"#]);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("needs its control token"), "{error}");
    assert!(wrong(&["ps"]).status.success(), "ps needs no token");
    assert!(
        !wrong(&["state", "kv"]).status.success(),
        "state runs guest code and shows the whole state: it needs the token"
    );
    assert_eq!(
        node.ok(&["call", "kv", r#"{"op":"get","key":"a"}"#]).trim(),
        "null"
    );
}

#[test]
fn a_node_refuses_to_listen_beyond_loopback_without_a_token() {
    let dir = std::env::temp_dir().join(format!("hotswap-open-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("open.toml");
    std::fs::write(&config, "control = \"0.0.0.0:0\"\n").expect("write");
    let out = Command::new(HOTSWAP)
        .arg("run")
        .arg(&config)
        .output()
        .expect("run");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains("refusing to listen on 0.0.0.0:0 without a control token"),
        "{error}"
    );
}

#[test]
fn an_operator_suspends_upgrades_and_downgrades_a_release() {
    let node = RunningNode::start("release");
    node.ok(&["call", "kv", r#"{"op":"put","key":"a","value":42}"#]);

    node.ok(&["suspend", "kv"]);
    assert!(node.ok(&["ps"]).contains("suspended"));
    node.ok(&["resume", "kv"]);
    assert!(!node.ok(&["ps"]).contains("suspended"));

    let release = node.dir.join("release.toml");
    std::fs::write(
        &release,
        format!(
            "name = \"logging\"\n[[module]]\nname = \"kv\"\nfile = \"{}\"\nextra = \"hi\"\n",
            guest("kv-v1").display()
        ),
    )
    .expect("release file");
    let report = node.ok(&["upgrade", path(&release)]);
    assert!(report.contains("logging: 1 processes moved"), "{report}");
    assert!(report.contains("0 -> 1"), "{report}");
    assert!(report.contains("whole release: pause"), "{report}");

    let bad = node.dir.join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "name = \"bad\"\n[[module]]\nname = \"kv\"\nfile = \"{}\"\n",
            guest("kv-migrate-error").display()
        ),
    )
    .expect("release file");
    let error = node.fails(&["upgrade", path(&bad)]);
    assert!(error.contains("release bad rolled back"), "{error}");

    let back = node.ok(&["downgrade"]);
    assert!(back.contains("1 -> 0"), "{back}");
    assert_eq!(
        node.ok(&["call", "kv", r#"{"op":"get","key":"a"}"#]).trim(),
        "42"
    );
    let modules = node.ok(&["modules"]);
    assert!(
        modules.contains("error"),
        "the refused version stays loaded: {modules}"
    );

    let state = node.ok(&["replace-state", "kv", r#"{"entries":{"z":1}}"#]);
    assert!(state.contains("replaced the state"), "{state}");
    assert_eq!(node.ok(&["state", "kv"]).trim(), r#"{"entries":{"z":1}}"#);
}
