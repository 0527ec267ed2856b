//! The on-disk compile cache: a second node start loads from it; a damaged or foreign entry
//! is detected before use, and rebuilt.

use std::time::Duration;

use hotswap::code::Origin;
use hotswap::{Node, NodeOptions, Policy};

use crate::common::*;

fn node(cache: &std::path::Path) -> Node {
    Node::with_options(NodeOptions {
        default_policy: Policy::default(),
        cache_dir: Some(cache.to_path_buf()),
        ..NodeOptions::default()
    })
    .expect("node")
}

#[tokio::test]
async fn a_second_start_loads_from_the_cache_and_damage_is_rebuilt() {
    let dir = std::env::temp_dir().join(format!("hotswap-cache-{}", rand::random::<u64>()));
    let first = node(&dir)
        .load_file("kv", guest("kv-v1"))
        .await
        .expect("load");
    assert_eq!(first.origin, Origin::Compiled);
    let second = node(&dir)
        .load_file("kv", guest("kv-v1"))
        .await
        .expect("load");
    assert_eq!(second.origin, Origin::Cached);
    assert_eq!(&*second.vsn, "1");
    assert_eq!(second.hash, first.hash);
    // The guest file was built long enough ago to be known by its stat from now on.
    let remembered = std::fs::read_dir(dir.join("files")).map_or(0, |d| d.count());
    assert_eq!(remembered, 1, "one remembered file hash");

    // Damage the entry: flip one byte in the middle of the compiled code.
    let file_with = |extension: &str| {
        let found: Vec<_> = std::fs::read_dir(&dir)
            .expect("cache dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == extension))
            .collect();
        assert_eq!(found.len(), 1, "one .{extension} file: {found:?}");
        found[0].clone()
    };
    let code = file_with("cwasm");
    let mut bytes = std::fs::read(&code).expect("entry");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&code, &bytes).expect("damage");
    let third = node(&dir)
        .load_file("kv", guest("kv-v1"))
        .await
        .expect("load");
    assert_eq!(
        third.origin,
        Origin::Compiled,
        "a damaged entry is never used"
    );

    // Truncated code, and a file that is not ours at all, under the entry's name.
    let bytes = std::fs::read(&code).expect("entry");
    std::fs::write(&code, &bytes[..bytes.len() - 1]).expect("truncate");
    let fourth = node(&dir)
        .load_file("kv", guest("kv-v1"))
        .await
        .expect("load");
    assert_eq!(
        fourth.origin,
        Origin::Compiled,
        "a truncated entry is never used"
    );
    std::fs::write(&code, b"\0asm not a cache entry").expect("replace");
    let fifth = node(&dir)
        .load_file("kv", guest("kv-v1"))
        .await
        .expect("load");
    assert_eq!(fifth.origin, Origin::Compiled);

    // An entry without its seal (a writer that died half way) is not used either.
    std::fs::remove_file(file_with("seal")).expect("unseal");
    let sixth = node(&dir)
        .load_file("kv", guest("kv-v1"))
        .await
        .expect("load");
    assert_eq!(sixth.origin, Origin::Compiled);
    let seventh = node(&dir)
        .load_file("kv", guest("kv-v1"))
        .await
        .expect("load");
    assert_eq!(seventh.origin, Origin::Cached, "the rebuilt entry is sound");
    assert_eq!(&*seventh.vsn, "1", "the vsn comes from the seal");

    // The cache serves the node that made it: calls work on a cached component.
    assert_serves_calls(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A node on the cache in `dir` loads kv from it, and a kv process it spawns serves a put.
async fn assert_serves_calls(dir: &std::path::Path) {
    let node = node(dir);
    node.load_file("kv", guest("kv-v1")).await.expect("load");
    node.spawn(hotswap::SpawnSpec::new("kv").name("kv"))
        .await
        .expect("spawn from cached code");
    let kv = hotswap::ProcessRef::from("kv");
    assert_eq!(
        put(&node, &kv, "a", serde_json::json!(1)).await,
        serde_json::json!(null)
    );
}

#[tokio::test]
async fn a_settled_entry_is_loaded_by_its_stamp_and_a_later_write_is_still_caught() {
    let dir = std::env::temp_dir().join(format!("hotswap-settled-{}", rand::random::<u64>()));
    let load = || async { node(&dir).load_file("kv", guest("kv-v1")).await };
    assert_eq!(load().await.expect("load").origin, Origin::Compiled);
    // Loads this soon after the compile digest the code: a write in the same clock tick as
    // its stamp would not show in it.
    assert_eq!(load().await.expect("load").origin, Origin::Cached);
    let remembered = || std::fs::read_dir(dir.join("files")).map_or(0, |d| d.count());
    assert!(
        remembered() <= 1,
        "the guest file at most, if built 3 s ago"
    );

    tokio::time::sleep(hotswap::code::file_hashes::SETTLED + Duration::from_millis(200)).await;
    assert_eq!(load().await.expect("load").origin, Origin::Cached);
    assert_eq!(
        remembered(),
        2,
        "and now the entry's code, checked against its seal"
    );
    assert_eq!(load().await.expect("load").origin, Origin::Cached);

    // One byte flipped in place, the length unchanged: the write changes the file's stamp,
    // so the next load digests the code again and rebuilds the entry.
    let code = std::fs::read_dir(&dir)
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("the entry's code");
    let mut bytes = std::fs::read(&code).expect("entry");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&code, &bytes).expect("damage");
    let rebuilt = load().await.expect("load");
    assert_eq!(
        rebuilt.origin,
        Origin::Compiled,
        "a damaged entry is never used"
    );
    assert_serves_calls(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}
