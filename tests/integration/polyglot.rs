//! The kv module in Python, JavaScript and C: each answers calls, swaps in and out with its
//! state, and has its traps contained; and one process goes the whole chain, Rust -> Python
//! -> JavaScript -> C -> Rust, under calls, keeping its state at every step.
//!
//! Python and JavaScript components take seconds to compile, so the tests share one compile
//! cache under target/, and each test loads each language once.

use std::path::PathBuf;
use std::sync::Arc;

use hotswap::{
    CallError, Direction, ExitReason, ModuleVersion, Node, NodeOptions, ProcessRef, SpawnSpec,
    SwapOptions,
};
use serde_json::json;

use crate::common::*;

/// (language, component, the vsn it exports)
const LANGUAGES: [(&str, &str, &str); 3] = [
    ("python", "kv_py", "py-1"),
    ("javascript", "kv_js", "js-1"),
    ("c", "kv_c", "c-1"),
];

/// What every kv answers to a put whose value nests more arrays and objects than a state can
/// hold and read back (serde_json reads 127 levels; a state holds each value two down).
const TOO_DEEP: &str =
    "value nested too deep: a state keeps at most 125 levels of arrays and objects";

/// The deepest value a kv keeps: 125 levels, an object of arrays.
fn deepest_value() -> serde_json::Value {
    let nested = format!("{{\"a\":{}{}}}", "[".repeat(124), "]".repeat(124));
    serde_json::from_str(&nested).expect("125 levels parse")
}

/// A field that no request uses is still read, in every language: nested deeper than
/// serde_json reads, or holding a number out of range, a lone surrogate or a byte that is not
/// UTF-8, it makes the request refused all the same. A client's request must not be served
/// by one version of a process and refused by the next because the next is in another
/// language.
async fn assert_refuses_a_malformed_field_it_ignores(node: &Node, kv: &ProcessRef, language: &str) {
    let too_deep = format!(
        r#"{{"op":"get","key":"a","x":{}{}}}"#,
        "[".repeat(127),
        "]".repeat(127)
    );
    match node.call(kv, too_deep.into_bytes(), TIMEOUT).await {
        Err(CallError::Refused { reason, .. }) => assert!(
            reason.contains("recursion limit exceeded"),
            "{language}: {reason}"
        ),
        other => panic!("{language}: {other:?}"),
    }
    let malformed: [&[u8]; 3] = [
        br#"{"op":"get","key":"a","x":1e400}"#,
        br#"{"op":"get","key":"a","x":"\ud800"}"#,
        b"{\"op\":\"get\",\"key\":\"a\",\"x\":\"\xff\"}",
    ];
    for request in malformed {
        let shown = String::from_utf8_lossy(request).into_owned();
        match node.call(kv, request.to_vec(), TIMEOUT).await {
            Err(CallError::Refused { reason, .. }) => assert!(
                reason.starts_with("unknown request: not JSON: "),
                "{language}, {shown}: {reason}"
            ),
            other => panic!("{language}, {shown}: {other:?}"),
        }
    }
}

/// A field the request uses (`op`; `key` but for `keys` and `count`; `value` in a put),
/// named twice, makes it refused in every language, as serde refuses it in Rust; any other
/// field may come twice.
async fn assert_refuses_a_field_named_twice(node: &Node, kv: &ProcessRef, language: &str) {
    let refused: [(&str, &str); 5] = [
        (r#"{"op":"get","op":"get","key":"a"}"#, "op"),
        (r#"{"op":"get","key":"a","key":"b"}"#, "key"),
        (r#"{"key":"a","op":"get","\u006bey":"b"}"#, "key"),
        (r#"{"x":"a\\","key":"a","op":"get","key":"b"}"#, "key"),
        (r#"{"op":"put","key":"a","value":1,"value":2}"#, "value"),
    ];
    for (request, field) in refused {
        match node.call(kv, request.as_bytes().to_vec(), TIMEOUT).await {
            Err(CallError::Refused { reason, .. }) => assert!(
                reason.starts_with(&format!("unknown request: duplicate field `{field}`")),
                "{language}, {request}: {reason}"
            ),
            other => panic!("{language}, {request}: {other:?}"),
        }
    }
    for request in [
        r#"{"op":"count","key":"a","key":"b"}"#,
        r#"{"op":"get","key":"a","value":1,"value":2,"x":3,"x":4}"#,
        r#"{"x":"a\",\"key\":1","op":"get","key":"a"}"#,
        r#"{"x":[{"key":1},{"key":2}],"op":"get","key":"a"}"#,
    ] {
        let reply = node.call(kv, request.as_bytes().to_vec(), TIMEOUT).await;
        assert!(reply.is_ok(), "{language}, {request}: {reply:?}");
    }
}

/// A request is an object in every language: serde would read `["get","a"]` as a get.
async fn assert_refuses_an_array(node: &Node, kv: &ProcessRef, language: &str) {
    let expected =
        "unknown request: invalid type: sequence, expected internally tagged enum Request";
    for request in [r#"["get","a"]"#, r#"["put","a",1]"#] {
        match node.call(kv, request.as_bytes().to_vec(), TIMEOUT).await {
            Err(CallError::Refused { reason, .. }) => {
                assert_eq!(reason, expected, "{language}, {request}")
            }
            other => panic!("{language}, {request}: {other:?}"),
        }
    }
}

/// A state is an object whose every field is read, in every language: an array (serde would
/// take `entries` from its first element) and a state with a malformed field beside
/// `entries` are refused, and the process keeps the state it had.
async fn assert_refuses_a_state_that_is_no_object(node: &Node, kv: &ProcessRef, language: &str) {
    let before = node.get_state(kv).await.expect(language);
    for state in [
        r#"[{"entries":{"a":1}}]"#,
        r#"{"entries":{"a":1},"x":1e400}"#,
    ] {
        let refused = node
            .replace_state(kv, state.as_bytes().to_vec(), Vec::new())
            .await;
        assert!(refused.is_err(), "{language}, {state}: {refused:?}");
    }
    assert_eq!(
        node.get_state(kv).await.expect(language),
        before,
        "{language}"
    );
}

fn polyglot(file: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../guests/out")
        .join(format!("{file}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the guests first (`just guests`)",
        path.display()
    );
    path
}

fn node() -> Node {
    Node::with_options(NodeOptions {
        cache_dir: Some(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-compile-cache"),
        ),
        ..NodeOptions::default()
    })
    .expect("node")
}

async fn load_all(node: &Node) -> Vec<(&'static str, Arc<ModuleVersion>)> {
    let mut versions = Vec::new();
    for (language, file, vsn) in LANGUAGES {
        let version = node.load_file("kv", polyglot(file)).await.expect(language);
        assert_eq!(&*version.vsn, vsn, "{language}");
        versions.push((language, version));
    }
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_language_serves_swaps_with_its_state_and_contains_its_traps() {
    let node = node();
    node.load_file("kv", guest("kv-v0")).await.expect("rust v0");
    let v1 = node.load_file("kv", guest("kv-v1")).await.expect("rust v1");
    node.spawn(SpawnSpec::new("kv").vsn("0").name("kv-rust"))
        .await
        .expect("rust process");
    assert_refuses_a_malformed_field_it_ignores(&node, &ProcessRef::from("kv-rust"), "rust").await;
    assert_refuses_a_field_named_twice(&node, &ProcessRef::from("kv-rust"), "rust").await;
    assert_refuses_an_array(&node, &ProcessRef::from("kv-rust"), "rust").await;
    assert_refuses_a_state_that_is_no_object(&node, &ProcessRef::from("kv-rust"), "rust").await;
    for (language, version) in load_all(&node).await {
        // Spawned directly: answers calls, refuses bad requests without dying.
        let name = format!("kv-{language}");
        node.spawn(SpawnSpec::new("kv").vsn(&*version.vsn).name(&name))
            .await
            .expect(language);
        let direct = ProcessRef::from(name.as_str());
        assert_eq!(
            put(&node, &direct, "a", json!(1)).await,
            json!(null),
            "{language}"
        );
        assert_eq!(
            put(&node, &direct, "a", json!({"x": [1, 2.5, "é"]})).await,
            json!(1)
        );
        assert_eq!(
            get(&node, &direct, "a").await,
            json!({"x": [1, 2.5, "é"]}),
            "{language}"
        );
        let refused = node
            .call(&direct, b"{\"op\":\"fly\"}".to_vec(), TIMEOUT)
            .await;
        assert!(
            matches!(refused, Err(CallError::Refused { .. })),
            "{language}: {refused:?}"
        );
        // One level deeper than a state can hold and read back: refused, in Rust's words.
        let too_deep = json!({"op": "put", "key": "deep", "value": [deepest_value()]});
        let refused = node
            .call(&direct, too_deep.to_string().into_bytes(), TIMEOUT)
            .await;
        match refused {
            Err(CallError::Refused { reason, .. }) => assert_eq!(reason, TOO_DEEP, "{language}"),
            other => panic!("{language}: {other:?}"),
        }
        assert_refuses_a_malformed_field_it_ignores(&node, &direct, language).await;
        assert_refuses_a_field_named_twice(&node, &direct, language).await;
        assert_refuses_an_array(&node, &direct, language).await;
        assert_refuses_a_state_that_is_no_object(&node, &direct, language).await;

        // Swapped in from Rust and out to Rust, state intact both ways.
        let from_rust = format!("from-rust-{language}");
        node.spawn(SpawnSpec::new("kv").vsn("0").name(&from_rust))
            .await
            .expect("rust process");
        let target = ProcessRef::from(from_rust.as_str());
        put(&node, &target, "k", json!([true, null, 3])).await;
        put(&node, &target, "deep", deepest_value()).await;
        let report = node
            .swap(&target, version.clone(), SwapOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{language}: swap in: {e}"));
        assert_eq!(report.to_vsn, version.vsn.to_string());
        assert_eq!(
            get(&node, &target, "k").await,
            json!([true, null, 3]),
            "{language}"
        );
        assert_eq!(
            get(&node, &target, "deep").await,
            deepest_value(),
            "{language}"
        );
        put(&node, &target, "added", json!(language)).await;
        node.swap(&target, v1.clone(), SwapOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{language}: swap out: {e}"));
        assert_eq!(
            state(&node, &target).await,
            json!({"entries": {"added": language, "deep": deepest_value(), "k": [true, null, 3]}}),
            "{language}"
        );

        // A crash ends only the crashing process.
        let crash = node
            .call(&direct, b"{\"op\":\"crash\"}".to_vec(), TIMEOUT)
            .await;
        assert!(
            matches!(
                crash,
                Err(CallError::Exited {
                    reason: ExitReason::Trapped { .. },
                    ..
                })
            ),
            "{language}: {crash:?}"
        );
        assert!(node.process(&direct).is_none(), "{language}");
        assert_eq!(get(&node, &target, "added").await, json!(language));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_goes_rust_python_javascript_c_rust_under_calls() {
    let node = node();
    node.load_file("kv", guest("kv-v0")).await.expect("rust v0");
    let v1 = node.load_file("kv", guest("kv-v1")).await.expect("rust v1");
    let mut chain: Vec<Arc<ModuleVersion>> =
        load_all(&node).await.into_iter().map(|(_, v)| v).collect();
    chain.push(v1);
    node.spawn(SpawnSpec::new("kv").vsn("0").name("kv"))
        .await
        .expect("spawn");
    let kv = ProcessRef::from("kv");
    put(&node, &kv, "a", json!(42)).await;

    // A client that puts a counter and checks each reply is the previous value.
    let client = {
        let (node, kv) = (node.clone(), kv.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            let stop = std::time::Instant::now() + std::time::Duration::from_secs(3);
            while std::time::Instant::now() < stop || n < 200 {
                let previous = put(&node, &kv, "counter", json!(n)).await;
                let expected = if n == 0 { json!(null) } else { json!(n - 1) };
                assert_eq!(previous, expected, "call #{n}");
                n += 1;
            }
            n
        })
    };
    let mut vsns = vec!["0".to_string()];
    for version in &chain {
        let report = node
            .swap(&kv, version.clone(), SwapOptions::default())
            .await
            .unwrap_or_else(|e| panic!("swap to {}: {e}", version.vsn));
        vsns.push(report.to_vsn.clone());
        assert_eq!(get(&node, &kv, "a").await, json!(42), "on {}", version.vsn);
    }
    // And back down the same way, as downgrades.
    for version in chain.iter().rev().skip(1) {
        let options = SwapOptions {
            direction: Direction::Downgrade,
            ..SwapOptions::default()
        };
        node.swap(&kv, version.clone(), options)
            .await
            .expect("downgrade");
        assert_eq!(get(&node, &kv, "a").await, json!(42), "on {}", version.vsn);
    }
    let calls = client.await.expect("client");
    assert_eq!(vsns, ["0", "py-1", "js-1", "c-1", "1"]);
    assert_eq!(
        state(&node, &kv).await,
        json!({"entries": {"a": 42, "counter": calls - 1}}),
        "every call applied exactly once"
    );
}
