//! One behaviour suite for every backend, so that code tested on `memory`
//! behaves the same on a filesystem and on S3.
//!
//! [`run_all`] panics with a message naming the case on the first
//! difference. Every run works under its own fresh prefix and removes it at
//! the end, so it can run against a shared bucket and alongside other runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::error::StorageError;
use crate::store::{MIN_PART_SIZE, ObjectStorage};

/// Runs every case against `store` (typically a fresh or scoped store).
pub async fn run_all(store: &ObjectStorage) {
    let root = store.scoped(&unique_prefix());
    round_trip(&root.scoped("round-trip")).await;
    overwrite(&root.scoped("overwrite")).await;
    missing(&root.scoped("missing")).await;
    head(&root.scoped("head")).await;
    ranges(&root.scoped("ranges")).await;
    listing(&root.scoped("listing")).await;
    delete(&root.scoped("delete")).await;
    delete_prefix(&root.scoped("delete-prefix")).await;
    multipart(&root.scoped("multipart")).await;
    multipart_abort(&root.scoped("multipart-abort")).await;
    put_if_absent(&root.scoped("put-if-absent")).await;
    scopes(&root.scoped("scopes")).await;
    odd_keys(&root.scoped("odd-keys")).await;
    invalid_paths(&root.scoped("invalid-paths")).await;

    root.delete_prefix("")
        .await
        .unwrap_or_else(|e| panic!("cleanup: delete_prefix of the run prefix failed: {e}"));
    let left = list_paths(&root, "cleanup", "").await;
    assert!(left.is_empty(), "cleanup: objects left behind: {left:?}");
}

fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("conformance-{nanos}-{}-{n}", std::process::id())
}

/// Deterministic, position-dependent bytes so a shifted or truncated read
/// cannot compare equal by accident.
fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed)
        .collect::<Vec<_>>()
        .into()
}

async fn put(store: &ObjectStorage, case: &str, path: &str, data: Bytes) {
    store
        .put(path, data)
        .await
        .unwrap_or_else(|e| panic!("{case}: put {path:?} failed: {e}"));
}

async fn get(store: &ObjectStorage, case: &str, path: &str) -> Bytes {
    store
        .get(path)
        .await
        .unwrap_or_else(|e| panic!("{case}: get {path:?} failed: {e}"))
}

async fn list_paths(store: &ObjectStorage, case: &str, prefix: &str) -> Vec<String> {
    store
        .list(prefix)
        .await
        .unwrap_or_else(|e| panic!("{case}: list {prefix:?} failed: {e}"))
        .into_iter()
        .map(|m| m.path)
        .collect()
}

async fn list_dirs(store: &ObjectStorage, case: &str, prefix: &str) -> Vec<String> {
    store
        .list_dirs(prefix)
        .await
        .unwrap_or_else(|e| panic!("{case}: list_dirs {prefix:?} failed: {e}"))
}

fn assert_bytes(case: &str, what: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let first_diff = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{case}: {what}: got {} bytes, want {} bytes, first difference at {first_diff:?}",
            got.len(),
            want.len()
        );
    }
}

async fn round_trip(store: &ObjectStorage) {
    let case = "round_trip";
    for (path, data) in [
        ("a/b/c.bin", pattern(4096, 1)),
        ("top-level", Bytes::from_static(b"hello")),
        ("empty", Bytes::new()),
    ] {
        put(store, case, path, data.clone()).await;
        assert_bytes(case, path, &get(store, case, path).await, &data);
    }
}

async fn overwrite(store: &ObjectStorage) {
    let case = "overwrite";
    put(store, case, "obj", pattern(1000, 1)).await;
    put(store, case, "obj", pattern(10, 2)).await;
    assert_bytes(
        case,
        "second write",
        &get(store, case, "obj").await,
        &pattern(10, 2),
    );
    let meta = store
        .head("obj")
        .await
        .unwrap_or_else(|e| panic!("{case}: head: {e}"));
    assert_eq!(
        meta.size, 10,
        "{case}: head after overwrite reports the old size"
    );
}

async fn missing(store: &ObjectStorage) {
    let case = "missing";
    match store.get("nope/nothing").await {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("{case}: get of a missing object: want NotFound, got {other:?}"),
    }
    match store.head("nope").await {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("{case}: head of a missing object: want NotFound, got {other:?}"),
    }
    match store.get_range("nope", 0..1).await {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("{case}: get_range of a missing object: want NotFound, got {other:?}"),
    }
    let listed = list_paths(store, case, "nope").await;
    assert!(
        listed.is_empty(),
        "{case}: list of a missing prefix: {listed:?}"
    );
}

async fn head(store: &ObjectStorage) {
    let case = "head";
    let before = SystemTime::now() - Duration::from_secs(300);
    put(store, case, "dir/obj", pattern(12345, 3)).await;
    let meta = store
        .head("dir/obj")
        .await
        .unwrap_or_else(|e| panic!("{case}: head: {e}"));
    assert_eq!(
        meta.path, "dir/obj",
        "{case}: path must be relative to the scope"
    );
    assert_eq!(meta.size, 12345, "{case}: size");
    let after = SystemTime::now() + Duration::from_secs(300);
    assert!(
        meta.last_modified > before && meta.last_modified < after,
        "{case}: last_modified {:?} is not around now",
        meta.last_modified
    );
}

async fn ranges(store: &ObjectStorage) {
    let case = "ranges";
    let data = pattern(1000, 4);
    put(store, case, "obj", data.clone()).await;
    for range in [0..10, 100..200, 990..1000, 0..1000, 999..1000] {
        let got = store
            .get_range("obj", range.clone())
            .await
            .unwrap_or_else(|e| panic!("{case}: get_range {range:?} failed: {e}"));
        let want = &data[range.start as usize..range.end as usize];
        assert_bytes(case, &format!("range {range:?}"), &got, want);
    }
    for range in [1000..1001, 5000..6000, 990..1001, 10..10] {
        match store.get_range("obj", range.clone()).await {
            Err(StorageError::InvalidRange { .. }) => {}
            other => panic!("{case}: get_range {range:?}: want InvalidRange, got {other:?}"),
        }
    }
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 20..10;
    assert!(
        matches!(
            store.get_range("obj", reversed).await,
            Err(StorageError::InvalidRange { .. })
        ),
        "{case}: a reversed range must be InvalidRange"
    );
}

async fn listing(store: &ObjectStorage) {
    let case = "listing";
    let objects = ["top", "x/a", "x/b/c", "x/b/d", "x/e/f/g", "xy/q", "y/z"];
    for (i, path) in objects.iter().enumerate() {
        put(store, case, path, pattern(i + 1, 5)).await;
    }
    let all = store
        .list("")
        .await
        .unwrap_or_else(|e| panic!("{case}: list \"\": {e}"));
    let paths: Vec<_> = all.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(paths, objects, "{case}: recursive list of the whole scope");
    for (i, meta) in all.iter().enumerate() {
        assert_eq!(meta.size, i as u64 + 1, "{case}: size of {}", meta.path);
    }
    assert_eq!(
        list_paths(store, case, "x").await,
        ["x/a", "x/b/c", "x/b/d", "x/e/f/g"],
        "{case}: list \"x\" must match whole segments (not \"xy\")"
    );
    assert_eq!(
        list_paths(store, case, "x/b/").await,
        ["x/b/c", "x/b/d"],
        "{case}: list \"x/b/\""
    );
    assert_eq!(
        list_paths(store, case, "x/e").await,
        ["x/e/f/g"],
        "{case}: list \"x/e\""
    );

    assert_eq!(
        list_dirs(store, case, "").await,
        ["x", "xy", "y"],
        "{case}: list_dirs \"\""
    );
    assert_eq!(
        list_dirs(store, case, "x").await,
        ["b", "e"],
        "{case}: list_dirs \"x\""
    );
    assert_eq!(
        list_dirs(store, case, "x/e").await,
        ["f"],
        "{case}: list_dirs \"x/e\""
    );
    assert!(
        list_dirs(store, case, "x/b").await.is_empty(),
        "{case}: list_dirs of a leaf dir"
    );
    assert!(
        list_dirs(store, case, "nope").await.is_empty(),
        "{case}: list_dirs of a missing dir"
    );
}

async fn delete(store: &ObjectStorage) {
    let case = "delete";
    put(store, case, "a/obj", pattern(10, 6)).await;
    put(store, case, "a/keep", pattern(10, 6)).await;
    store
        .delete("a/obj")
        .await
        .unwrap_or_else(|e| panic!("{case}: delete: {e}"));
    assert!(
        matches!(store.get("a/obj").await, Err(StorageError::NotFound { .. })),
        "{case}: object still readable after delete"
    );
    store
        .delete("a/obj")
        .await
        .unwrap_or_else(|e| panic!("{case}: deleting a missing object must succeed: {e}"));
    store
        .delete("never/existed")
        .await
        .unwrap_or_else(|e| panic!("{case}: deleting a never-existing object must succeed: {e}"));
    assert_eq!(
        list_paths(store, case, "").await,
        ["a/keep"],
        "{case}: what is left"
    );
}

async fn delete_prefix(store: &ObjectStorage) {
    let case = "delete_prefix";
    for path in [
        "blocks/1/meta",
        "blocks/1/data",
        "blocks/2/meta",
        "blocksmore/x",
        "other/y",
    ] {
        put(store, case, path, pattern(3, 7)).await;
    }
    let removed = store
        .delete_prefix("blocks/1")
        .await
        .unwrap_or_else(|e| panic!("{case}: delete_prefix blocks/1: {e}"));
    assert_eq!(removed, 2, "{case}: number removed");
    assert_eq!(
        list_paths(store, case, "").await,
        ["blocks/2/meta", "blocksmore/x", "other/y"],
        "{case}: after removing blocks/1"
    );
    assert_eq!(
        list_dirs(store, case, "blocks").await,
        ["2"],
        "{case}: dirs after removal"
    );
    store
        .delete_prefix("blocks")
        .await
        .unwrap_or_else(|e| panic!("{case}: delete_prefix blocks: {e}"));
    assert_eq!(
        list_paths(store, case, "").await,
        ["blocksmore/x", "other/y"],
        "{case}: delete_prefix must match whole segments"
    );
    let removed = store
        .delete_prefix("nothing/here")
        .await
        .unwrap_or_else(|e| panic!("{case}: delete_prefix of an empty prefix: {e}"));
    assert_eq!(removed, 0, "{case}: nothing to remove");
}

async fn multipart(store: &ObjectStorage) {
    let case = "multipart";
    let store = store.clone().with_part_size(MIN_PART_SIZE);
    let total = 12 * 1024 * 1024 + 12345;
    let data = pattern(total, 8);
    let mut upload = store
        .upload("big/object")
        .await
        .unwrap_or_else(|e| panic!("{case}: upload start: {e}"));
    // Uneven writes so that parts are cut across write boundaries.
    let mut offset = 0;
    for (i, chunk) in [1, 3_000_000, 777, 4 * 1024 * 1024, 2_500_000]
        .iter()
        .cycle()
        .enumerate()
    {
        if offset == total {
            break;
        }
        let end = (offset + chunk).min(total);
        upload
            .write(data.slice(offset..end))
            .await
            .unwrap_or_else(|e| panic!("{case}: write #{i}: {e}"));
        offset = end;
    }
    assert!(
        list_paths(&store, case, "big").await.is_empty(),
        "{case}: object visible before complete"
    );
    let size = upload
        .complete()
        .await
        .unwrap_or_else(|e| panic!("{case}: complete: {e}"));
    assert_eq!(size, total as u64, "{case}: reported size");
    let meta = store
        .head("big/object")
        .await
        .unwrap_or_else(|e| panic!("{case}: head: {e}"));
    assert_eq!(meta.size, total as u64, "{case}: stored size");
    assert_bytes(
        case,
        "read back",
        &get(&store, case, "big/object").await,
        &data,
    );
    let tail = store
        .get_range("big/object", (total - 100) as u64..total as u64)
        .await
        .unwrap_or_else(|e| panic!("{case}: ranged read of the tail: {e}"));
    assert_bytes(case, "tail", &tail, &data[total - 100..]);

    // An upload smaller than one part still works.
    let mut small = store
        .upload("small")
        .await
        .unwrap_or_else(|e| panic!("{case}: small upload start: {e}"));
    small
        .write(Bytes::from_static(b"tiny"))
        .await
        .unwrap_or_else(|e| panic!("{case}: small write: {e}"));
    small
        .complete()
        .await
        .unwrap_or_else(|e| panic!("{case}: small complete: {e}"));
    assert_bytes(case, "small", &get(&store, case, "small").await, b"tiny");
}

async fn multipart_abort(store: &ObjectStorage) {
    let case = "multipart_abort";
    let store = store.clone().with_part_size(MIN_PART_SIZE);
    let mut upload = store
        .upload("aborted")
        .await
        .unwrap_or_else(|e| panic!("{case}: upload start: {e}"));
    upload
        .write(pattern(MIN_PART_SIZE + 10, 9))
        .await
        .unwrap_or_else(|e| panic!("{case}: write: {e}"));
    upload
        .abort()
        .await
        .unwrap_or_else(|e| panic!("{case}: abort: {e}"));
    assert!(
        matches!(
            store.get("aborted").await,
            Err(StorageError::NotFound { .. })
        ),
        "{case}: aborted upload is readable"
    );
    let left = list_paths(&store, case, "").await;
    assert!(
        left.is_empty(),
        "{case}: abort left objects behind: {left:?}"
    );
}

async fn put_if_absent(store: &ObjectStorage) {
    let case = "put_if_absent";
    store
        .put_if_absent("lock", Bytes::from_static(b"first"))
        .await
        .unwrap_or_else(|e| panic!("{case}: first put_if_absent: {e}"));
    match store
        .put_if_absent("lock", Bytes::from_static(b"second"))
        .await
    {
        Err(StorageError::AlreadyExists { .. }) => {}
        other => panic!("{case}: second put_if_absent: want AlreadyExists, got {other:?}"),
    }
    assert_bytes(case, "winner", &get(store, case, "lock").await, b"first");
}

async fn scopes(store: &ObjectStorage) {
    let case = "scopes";
    let a = store.scoped("tenant-a");
    let b = store.scoped("tenant-ab");
    let nested = a.scoped("blocks/01");
    put(&a, case, "shared/key", Bytes::from_static(b"from a")).await;
    put(&b, case, "shared/key", Bytes::from_static(b"from b")).await;
    put(&nested, case, "meta.json", Bytes::from_static(b"{}")).await;
    assert_bytes(
        case,
        "a's copy",
        &get(&a, case, "shared/key").await,
        b"from a",
    );
    assert_bytes(
        case,
        "b's copy",
        &get(&b, case, "shared/key").await,
        b"from b",
    );
    assert_eq!(
        list_paths(&a, case, "").await,
        ["blocks/01/meta.json", "shared/key"],
        "{case}: a sees only its own objects, relative to its scope"
    );
    assert_eq!(
        list_paths(&b, case, "").await,
        ["shared/key"],
        "{case}: b sees only its own"
    );
    assert_eq!(
        list_paths(&nested, case, "").await,
        ["meta.json"],
        "{case}: nested scope"
    );
    assert_eq!(
        list_dirs(store, case, "").await,
        ["tenant-a", "tenant-ab"],
        "{case}: tenants"
    );

    a.delete_prefix("")
        .await
        .unwrap_or_else(|e| panic!("{case}: delete all of a: {e}"));
    assert!(
        list_paths(&a, case, "").await.is_empty(),
        "{case}: a after deleting its scope"
    );
    assert_bytes(
        case,
        "b survives a's cleanup",
        &get(&b, case, "shared/key").await,
        b"from b",
    );

    // A hostile tenant id must name a directory inside the parent scope.
    let escape = store.scoped("..");
    put(&escape, case, "x", Bytes::from_static(b"inside")).await;
    let all = list_paths(store, case, "").await;
    assert_eq!(
        all.len(),
        2,
        "{case}: a `..` scope must land inside its parent: {all:?}"
    );
    assert!(
        all.iter()
            .any(|p| p.ends_with("/x") && !p.starts_with("../")),
        "{case}: a `..` scope must land inside its parent: {all:?}"
    );
    assert_bytes(
        case,
        "`..` scope",
        &get(&escape, case, "x").await,
        b"inside",
    );
}

async fn odd_keys(store: &ObjectStorage) {
    let case = "odd_keys";
    let keys = [
        "with space/file name.txt",
        "ünïcødé/日本語/ключ",
        "labels/job=node,env=prod/a+b@c;d.json",
        "emoji/📦",
    ];
    for (i, key) in keys.iter().enumerate() {
        put(store, case, key, pattern(i + 10, 10)).await;
        assert_bytes(
            case,
            key,
            &get(store, case, key).await,
            &pattern(i + 10, 10),
        );
    }
    let mut want: Vec<_> = keys.to_vec();
    want.sort();
    assert_eq!(
        list_paths(store, case, "").await,
        want,
        "{case}: listed keys round-trip"
    );
    let mut dirs = list_dirs(store, case, "").await;
    dirs.sort();
    assert_eq!(
        dirs,
        ["emoji", "labels", "with space", "ünïcødé"],
        "{case}: dir names round-trip"
    );
    assert_eq!(
        list_paths(store, case, "labels/job=node,env=prod").await,
        ["labels/job=node,env=prod/a+b@c;d.json"],
        "{case}: prefix with `=`"
    );
    for key in keys {
        store
            .delete(key)
            .await
            .unwrap_or_else(|e| panic!("{case}: delete {key:?}: {e}"));
    }
    assert!(
        list_paths(store, case, "").await.is_empty(),
        "{case}: all deleted"
    );
}

async fn invalid_paths(store: &ObjectStorage) {
    let case = "invalid_paths";
    for path in ["", "/", "a//b", "a/../b", "..", "a/./b", "ctrl\u{1}char"] {
        match store.put(path, Bytes::from_static(b"x")).await {
            Err(StorageError::InvalidPath { .. }) => {}
            other => panic!("{case}: put {path:?}: want InvalidPath, got {other:?}"),
        }
    }
    assert!(
        matches!(store.delete_prefix("").await, Ok(0)),
        "{case}: delete_prefix(\"\") on a scoped store clears only the (empty) scope"
    );
}
