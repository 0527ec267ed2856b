//! Guarantee 6: a component that does not fit the world is refused at load time, named.

use hotswap::{LoadError, Node, Policy};

use crate::common::*;

fn node() -> Node {
    Node::new(Policy::default()).expect("node")
}

#[tokio::test]
async fn a_core_module_is_refused_as_such() {
    // The smallest core module: the magic and version 1.
    let error = node()
        .load_bytes("kv", b"\0asm\x01\x00\x00\x00".to_vec(), "core.wasm")
        .await
        .expect_err("a core module is not a component");
    assert!(matches!(error, LoadError::CoreModule { .. }), "{error}");
    assert!(
        error.to_string().contains("core WebAssembly module"),
        "{error}"
    );
}

#[tokio::test]
async fn a_truncated_component_is_refused() {
    let mut bytes = std::fs::read(guest("kv-v0")).expect("kv v0");
    bytes.truncate(bytes.len() / 2);
    let error = node()
        .load_bytes("kv", bytes, "half.wasm")
        .await
        .expect_err("half a component");
    assert!(matches!(error, LoadError::Compile { .. }), "{error}");
    assert!(error.to_string().contains("half.wasm"), "{error}");
}

#[tokio::test]
async fn a_load_names_the_vsn_the_component_exports() {
    let node = node();
    let v1 = node.load_file("kv", guest("kv-v1")).await.expect("v1");
    assert_eq!(&*v1.vsn, "1");
    assert_eq!(v1.hash.len(), 64, "a sha-256 in hex");
    let error = node
        .load_bytes("k v", Vec::new(), "x")
        .await
        .expect_err("bad name");
    assert!(matches!(error, LoadError::BadName { .. }), "{error}");
}
