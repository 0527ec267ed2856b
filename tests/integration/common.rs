//! Helpers shared by the tests: where the guests are, a node with a `kv` process, JSON
//! requests, and a log capture of what guests write through `runtime.log`.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use hotswap::{Node, NodeId, Pid, Policy, ProcessRef, SpawnSpec};
use serde_json::{Value, json};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The component built from guest crate `crate_name` (e.g. `kv-v0`).
pub fn guest(crate_name: &str) -> PathBuf {
    let file = format!("{}.wasm", crate_name.replace('-', "_"));
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../guests/rust/target/wasm32-wasip2/release")
        .join(file);
    assert!(
        path.exists(),
        "{} is missing: build the guests first (`just guests`)",
        path.display()
    );
    path
}

/// A node with `kv` v0 loaded and a process registered as `kv`.
pub async fn node_with_kv() -> (Node, ProcessRef) {
    let node = Node::new(Policy::default()).expect("node");
    node.load_file("kv", guest("kv-v0"))
        .await
        .expect("load kv v0");
    node.spawn(SpawnSpec::new("kv").name("kv"))
        .await
        .expect("spawn kv");
    (node, ProcessRef::from("kv"))
}

pub async fn call_json(node: &Node, target: &ProcessRef, request: Value) -> Value {
    let reply = node
        .call(target, request.to_string().into_bytes(), TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("call {request} failed: {e}"));
    serde_json::from_slice(&reply).expect("reply is JSON")
}

pub async fn put(node: &Node, target: &ProcessRef, key: &str, value: Value) -> Value {
    call_json(
        node,
        target,
        json!({"op": "put", "key": key, "value": value}),
    )
    .await
}

pub async fn get(node: &Node, target: &ProcessRef, key: &str) -> Value {
    call_json(node, target, json!({"op": "get", "key": key})).await
}

pub async fn state(node: &Node, target: &ProcessRef) -> Value {
    let blob = node.get_state(target).await.expect("state");
    serde_json::from_slice(&blob).expect("state is JSON")
}

pub fn vsn(node: &Node, target: &ProcessRef) -> String {
    node.process(target).expect("process alive").describe().vsn
}

/// Lets every `slow` code change of the `hostile-migrate` fixture end: it works until a
/// process is registered under this name. A test opens the gate once it has done what must
/// happen during the migration, so that no timing decides the test.
pub async fn open_slow_migration_gate(node: &Node, module: &str) {
    node.spawn(SpawnSpec::new(module).name("slow-migration-may-end"))
        .await
        .expect("the gate's process");
}

/// A captured guest log line.
#[derive(Debug, Clone)]
pub struct GuestLine {
    pub node: Option<NodeId>,
    pub pid: Pid,
    pub vsn: String,
    pub message: String,
}

static GUEST_LINES: OnceLock<Mutex<Vec<GuestLine>>> = OnceLock::new();

/// The guest log lines written so far by `pid` of `node`. Installs the capturing subscriber
/// on first use (process-wide, since guests log from the node's worker threads). The node
/// matters: tests run side by side in this binary, and each node numbers its pids from 1.
pub fn guest_lines(node: &Node, pid: Pid) -> Vec<GuestLine> {
    capture_guest_logs();
    lines()
        .iter()
        .filter(|line| line.node == Some(node.id()) && line.pid == pid)
        .cloned()
        .collect()
}

/// Waits (up to 10 s) until `pid` of `node` has logged a line containing `text`: how a test
/// knows that a guest has reached a point, without guessing how long it takes to get there.
pub async fn logged(node: &Node, pid: Pid, text: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !guest_lines(node, pid)
        .iter()
        .any(|line| line.message.contains(text))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "pid {pid} did not log {text:?} within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

fn lines() -> std::sync::MutexGuard<'static, Vec<GuestLine>> {
    GUEST_LINES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Installs the subscriber that records `target: "guest"` events. Call before the guest logs.
pub fn capture_guest_logs() {
    use tracing_subscriber::layer::SubscriberExt;
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(GuestCapture);
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

struct GuestCapture;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for GuestCapture {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if event.metadata().target() != "guest" {
            return;
        }
        let mut visitor = FieldVisitor::default();
        event.record(&mut visitor);
        lines().push(GuestLine {
            node: visitor.node,
            pid: visitor.pid,
            vsn: visitor.vsn,
            message: visitor.message,
        });
    }
}

#[derive(Default)]
struct FieldVisitor {
    node: Option<NodeId>,
    pid: Pid,
    vsn: String,
    message: String,
}

impl tracing::field::Visit for FieldVisitor {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        match field.name() {
            "node" => self.node = Some(NodeId(value)),
            "pid" => self.pid = value,
            _ => {}
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "vsn" {
            self.vsn = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "vsn" => self.vsn = format!("{value:?}"),
            _ => {}
        }
    }
}
