//! Guarantee 3: a failed swap leaves the old instance serving with its state, and says why.

use hotswap::{LoadError, Node, ProcessRef, SwapError, SwapOptions};
use serde_json::json;

use crate::common::*;

/// A `kv` process on v0 holding `a = 42`, that has served two calls.
async fn serving_kv() -> (Node, ProcessRef) {
    let (node, kv) = node_with_kv().await;
    put(&node, &kv, "a", json!(42)).await;
    (node, kv)
}

/// The process still serves v0 with its state, and takes writes.
async fn assert_untouched(node: &Node, kv: &ProcessRef) {
    assert_eq!(vsn(node, kv), "0");
    assert_eq!(get(node, kv, "a").await, json!(42));
    put(node, kv, "after", json!(true)).await;
    assert_eq!(
        state(node, kv).await,
        json!({"entries": {"a": 42, "after": true}})
    );
}

#[tokio::test]
async fn a_trap_in_code_change_rolls_back() {
    let (node, kv) = serving_kv().await;
    let options = SwapOptions {
        extra: b"some extra".to_vec(),
        ..SwapOptions::default()
    };
    let error = node
        .swap_file(&kv, guest("kv-migrate-trap"), options)
        .await
        .expect_err("the swap must fail");
    let SwapError::CodeChangeTrapped {
        from, to, cause, ..
    } = &error
    else {
        panic!("expected a code-change trap, got: {error}");
    };
    assert_eq!((from.as_str(), to.as_str()), ("0", "trap"));
    assert!(cause.contains("wasm trap"), "{error}");
    assert!(cause.contains("traps in code_change on purpose"), "{error}");
    assert!(
        error.to_string().contains("trapped in code-change"),
        "{error}"
    );
    assert_untouched(&node, &kv).await;
}

#[tokio::test]
async fn an_error_from_code_change_rolls_back_and_names_the_reason() {
    let (node, kv) = serving_kv().await;
    let error = node
        .swap_file(&kv, guest("kv-migrate-error"), SwapOptions::default())
        .await
        .expect_err("the swap must fail");
    let SwapError::CodeChangeRefused { reason, to, .. } = &error else {
        panic!("expected a refusal, got: {error}");
    };
    assert_eq!(to, "error");
    assert!(reason.starts_with("refusing to migrate"), "{error}");
    assert_untouched(&node, &kv).await;
}

#[tokio::test]
async fn a_component_missing_an_export_is_refused_at_load_naming_it() {
    let (node, kv) = serving_kv().await;
    let error = node
        .swap_file(&kv, guest("kv-missing-export"), SwapOptions::default())
        .await
        .expect_err("the swap must fail");
    let SwapError::Load {
        source: LoadError::WorldMismatch { cause, .. },
        ..
    } = &error
    else {
        panic!("expected a world mismatch, got: {error}");
    };
    assert!(
        cause.contains("snapshot"),
        "the missing export is named: {error}"
    );
    assert_untouched(&node, &kv).await;
}

#[tokio::test]
async fn a_file_that_is_not_wasm_is_refused() {
    let (node, kv) = serving_kv().await;
    let not_wasm =
        std::env::temp_dir().join(format!("hotswap-not-wasm-{}.wasm", std::process::id()));
    std::fs::write(&not_wasm, "this is not a component\n").expect("write temp file");
    let error = node
        .swap_file(&kv, &not_wasm, SwapOptions::default())
        .await
        .expect_err("the swap must fail");
    let _ = std::fs::remove_file(&not_wasm);
    assert!(
        matches!(
            &error,
            SwapError::Load {
                source: LoadError::NotWasm { .. },
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("not a WebAssembly file"),
        "{error}"
    );
    assert_untouched(&node, &kv).await;
}

#[tokio::test]
async fn a_missing_file_and_an_unknown_process_are_named() {
    let (node, kv) = serving_kv().await;
    let error = node
        .swap_file(&kv, "/nonexistent/kv.wasm", SwapOptions::default())
        .await
        .expect_err("the swap must fail");
    assert!(
        error.to_string().contains("/nonexistent/kv.wasm"),
        "{error}"
    );
    let error = node
        .swap_file(
            &ProcessRef::from("nobody"),
            guest("kv-v1"),
            SwapOptions::default(),
        )
        .await
        .expect_err("no such process");
    assert!(matches!(error, SwapError::NoProcess { .. }), "{error}");
    assert_untouched(&node, &kv).await;
}

#[tokio::test]
async fn a_swap_to_another_module_is_refused() {
    let (node, kv) = serving_kv().await;
    let relay = node
        .load_file("relay", guest("relay"))
        .await
        .expect("relay");
    let error = node
        .swap(&kv, relay, SwapOptions::default())
        .await
        .expect_err("kv cannot become relay");
    assert!(matches!(error, SwapError::WrongModule { .. }), "{error}");
    assert_untouched(&node, &kv).await;
}
