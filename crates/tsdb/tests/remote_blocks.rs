//! Blocks in object storage: upload after cut and merge, a store that is
//! down, a fresh local disk, retention by time and size, the block cache.
//! The store is [`MemoryRemote`]; `pharos-metrics` runs the same paths over
//! the real storage backends.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pharos_model::{Labels, MatchOp, Matcher, Sample};
use pharos_tsdb::{
    FsyncPolicy, HeadOptions, MemoryRemote, RemoteBlocks, Tsdb, TsdbOptions, WalOptions,
};

/// Blocks cover 5 minutes; samples every 10 s.
const RANGE_MS: i64 = 300_000;
const STEP_MS: i64 = 10_000;

fn opts(remote: &Arc<MemoryRemote>, cache_size: u64) -> TsdbOptions {
    TsdbOptions {
        head: HeadOptions {
            chunk_range: Duration::from_millis(RANGE_MS as u64),
            ..HeadOptions::default()
        },
        wal: WalOptions {
            fsync: FsyncPolicy::Never,
            ..WalOptions::default()
        },
        retention: None,
        remote: Some(remote.clone() as Arc<dyn RemoteBlocks>),
        cache_size,
        ..TsdbOptions::default()
    }
}

fn series(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "m".to_owned()), ("instance", format!("h{i}"))])
}

fn value(step: i64, i: usize) -> f64 {
    (step * (i as i64 + 1)) as f64 / 4.0
}

/// Appends steps `from..to` for three series, running maintenance every
/// `every` steps when given.
fn fill(db: &Tsdb, from: i64, to: i64, every: Option<i64>) {
    for step in from..to {
        let batch: Vec<(Labels, Vec<Sample>)> = (0..3)
            .map(|i| (series(i), vec![Sample::new(step * STEP_MS, value(step, i))]))
            .collect();
        let rep = db.append(&batch).unwrap();
        assert!(rep.errors.is_empty(), "{:?}", rep.errors);
        if every.is_some_and(|e| step % e == e - 1) {
            db.maintain().unwrap();
        }
    }
}

/// What `fill(0, to)` wrote, for timestamps in `[mint, maxt)`.
fn expected(to: i64, mint: i64, maxt: i64) -> Vec<(String, Vec<(i64, u64)>)> {
    (0..3)
        .map(|i| {
            let s = (0..to)
                .map(|k| (k * STEP_MS, value(k, i).to_bits()))
                .filter(|(t, _)| *t >= mint && *t < maxt)
                .collect();
            (series(i).to_string(), s)
        })
        .collect()
}

fn dump(db: &Tsdb, mint: i64, maxt: i64) -> Vec<(String, Vec<(i64, u64)>)> {
    db.select(
        &[Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()],
        mint,
        maxt - 1,
    )
    .unwrap()
    .into_iter()
    .map(|(l, s)| {
        (
            l.to_string(),
            s.iter().map(|x| (x.t, x.v.to_bits())).collect(),
        )
    })
    .collect()
}

/// Block ULIDs with a `meta.json` in the store, and every ULID with any
/// object there.
fn remote_blocks(remote: &MemoryRemote) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut complete = BTreeSet::new();
    let mut any = BTreeSet::new();
    for p in remote.paths() {
        let (ulid, file) = p.split_once('/').unwrap();
        any.insert(ulid.to_owned());
        if file == "meta.json" {
            complete.insert(ulid.to_owned());
        }
    }
    (complete, any)
}

fn remote_sizes(remote: &MemoryRemote) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for o in remote.list().unwrap() {
        let ulid = o.path.split_once('/').unwrap().0.to_owned();
        *out.entry(ulid).or_default() += o.size;
    }
    out
}

fn local_blocks(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn ulids(db: &Tsdb) -> BTreeSet<String> {
    db.blocks().into_iter().map(|m| m.ulid).collect()
}

#[test]
fn blocks_are_uploaded_merged_and_read_back_from_an_empty_disk() {
    let remote = Arc::new(MemoryRemote::new());
    let dir1 = tempfile::tempdir().unwrap();
    // no cache at all: every uploaded block leaves the local disk
    let db1 = Tsdb::open(dir1.path(), opts(&remote, 0)).unwrap();
    let steps = 600; // 100 minutes
    fill(&db1, 0, steps, Some(30));
    let metas = db1.blocks();
    assert!(metas.len() >= 2, "{metas:?}");
    assert!(
        metas.iter().any(|m| m.compaction_level == 3),
        "45-minute blocks expected: {metas:?}"
    );
    // the store holds exactly the live blocks, complete; merged sources
    // were deleted there after the merged block was uploaded
    let (complete, any) = remote_blocks(&remote);
    assert_eq!(complete, ulids(&db1));
    assert_eq!(any, complete);
    for m in &metas {
        for f in ["index", "chunks", "meta.json"] {
            assert!(remote.paths().contains(&format!("{}/{f}", m.ulid)));
        }
    }
    assert!(local_blocks(dir1.path()).is_empty());
    let st = db1.remote_stats();
    assert_eq!((st.pending_uploads, st.cached_bytes), (0, 0));
    assert!(st.uploads >= metas.len() as u64);
    assert!(st.remote_deletes > 0);

    // queries download what they need
    assert_eq!(
        dump(&db1, 0, steps * STEP_MS),
        expected(steps, 0, steps * STEP_MS)
    );
    assert!(db1.remote_stats().downloads >= metas.len() as u64);

    // another server with an empty disk and the same store
    let end = metas.iter().map(|m| m.max_time).max().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let biggest = *remote_sizes(&remote).values().max().unwrap();
    let db2 = Tsdb::open(dir2.path(), opts(&remote, biggest)).unwrap();
    assert_eq!(db2.blocks(), metas);
    assert_eq!(db2.remote_stats().downloads, 0);
    assert_eq!(dump(&db2, 0, end), expected(steps, 0, end));
    // everything was downloaded once; a query keeps what it uses, the next
    // maintenance trims the cache to one block
    db2.maintain().unwrap();
    let st = db2.remote_stats();
    assert_eq!(st.downloads, metas.len() as u64);
    assert!(st.cached_bytes <= biggest, "{st:?}");
    assert_eq!(st.evictions, metas.len() as u64 - 1);

    // least recently used goes first
    let (a, b) = (&metas[0], &metas[1]);
    dump(&db2, a.min_time, a.max_time);
    let before = db2.remote_stats();
    dump(&db2, a.min_time, a.max_time);
    assert_eq!(db2.remote_stats().downloads, before.downloads, "cache hit");
    dump(&db2, b.min_time, b.max_time);
    assert_eq!(local_blocks(dir2.path()), BTreeSet::from([b.ulid.clone()]));
    dump(&db2, a.min_time, a.max_time);
    assert_eq!(local_blocks(dir2.path()), BTreeSet::from([a.ulid.clone()]));
    assert_eq!(db2.remote_stats().downloads, before.downloads + 2);
}

#[test]
fn an_unreachable_store_keeps_blocks_local_until_it_answers() {
    let remote = Arc::new(MemoryRemote::new());
    remote.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let steps = 60; // 10 minutes: one block cut
    {
        let db = Tsdb::open(dir.path(), opts(&remote, 0)).unwrap();
        fill(&db, 0, steps, None);
        let rep = db.maintain().unwrap();
        assert_eq!(rep.cut.len(), 1);
        assert!(rep.upload_failed && rep.uploaded.is_empty(), "{rep:?}");
        let ulid = rep.cut[0].ulid.clone();
        assert!(remote.paths().is_empty());
        assert_eq!(local_blocks(dir.path()), BTreeSet::from([ulid.clone()]));
        let st = db.remote_stats();
        assert_eq!((st.pending_uploads, st.upload_failures), (1, 1));
        assert_eq!(
            dump(&db, 0, steps * STEP_MS),
            expected(steps, 0, steps * STEP_MS)
        );
        // a second round fails the same way and loses nothing
        assert!(db.maintain().unwrap().upload_failed);
        assert_eq!(local_blocks(dir.path()), BTreeSet::from([ulid]));
        // dropped without a clean shutdown, as after kill -9
        std::mem::forget(db);
    }
    // restarted while the store is still down
    let db = Tsdb::open(dir.path(), opts(&remote, 0)).unwrap();
    assert_eq!(db.blocks().len(), 1);
    assert_eq!(
        dump(&db, 0, steps * STEP_MS),
        expected(steps, 0, steps * STEP_MS)
    );
    assert!(db.maintain().unwrap().upload_failed);

    remote.set_down(false);
    let rep = db.maintain().unwrap();
    assert!(!rep.upload_failed);
    assert_eq!(rep.uploaded, vec![db.blocks()[0].ulid.clone()]);
    let (complete, _) = remote_blocks(&remote);
    assert_eq!(complete, ulids(&db));
    assert!(
        local_blocks(dir.path()).is_empty(),
        "uploaded, cache size 0"
    );
    assert_eq!(db.remote_stats().pending_uploads, 0);

    let fresh = tempfile::tempdir().unwrap();
    let db2 = Tsdb::open(fresh.path(), opts(&remote, 1 << 30)).unwrap();
    assert_eq!(dump(&db2, 0, RANGE_MS), expected(steps, 0, RANGE_MS));
}

#[test]
fn retention_deletes_remote_blocks_by_time_and_by_size() {
    let remote = Arc::new(MemoryRemote::new());
    let dir = tempfile::tempdir().unwrap();
    let steps = 600;
    {
        let db = Tsdb::open(dir.path(), opts(&remote, 1 << 30)).unwrap();
        fill(&db, 0, steps, Some(30));
    }
    let reopen = |o: TsdbOptions| Tsdb::open(dir.path(), o).unwrap();

    // by time: counted back from the newest sample (at ~100 min)
    let before = reopen(opts(&remote, 1 << 30)).blocks();
    let newest = (steps - 1) * STEP_MS;
    let keep = Duration::from_secs(40 * 60);
    let cutoff = newest - keep.as_millis() as i64;
    let db = reopen(TsdbOptions {
        retention: Some(keep),
        ..opts(&remote, 1 << 30)
    });
    let rep = db.maintain().unwrap();
    let want_gone: BTreeSet<String> = before
        .iter()
        .filter(|m| m.max_time <= cutoff)
        .map(|m| m.ulid.clone())
        .collect();
    assert!(!want_gone.is_empty() && want_gone.len() < before.len());
    assert_eq!(
        rep.deleted.iter().cloned().collect::<BTreeSet<_>>(),
        want_gone
    );
    let (complete, any) = remote_blocks(&remote);
    assert_eq!(complete, ulids(&db));
    assert_eq!(any, complete);
    assert!(
        want_gone
            .iter()
            .all(|u| !local_blocks(dir.path()).contains(u))
    );
    drop(db);

    // by size: the newest block alone fits, the older ones go
    let sizes = remote_sizes(&remote);
    let db = reopen(opts(&remote, 1 << 30));
    let metas = db.blocks();
    assert!(metas.len() >= 2, "{metas:?}");
    let newest = metas
        .iter()
        .max_by_key(|m| m.max_time)
        .unwrap()
        .ulid
        .clone();
    drop(db);
    let db = reopen(TsdbOptions {
        retention_size: Some(sizes[&newest]),
        ..opts(&remote, 1 << 30)
    });
    let rep = db.maintain().unwrap();
    assert_eq!(rep.deleted.len(), metas.len() - 1);
    assert_eq!(ulids(&db), BTreeSet::from([newest.clone()]));
    assert_eq!(remote_blocks(&remote).1, BTreeSet::from([newest]));
    // 0 means off
    let db2 = {
        drop(db);
        reopen(TsdbOptions {
            retention_size: Some(0),
            ..opts(&remote, 1 << 30)
        })
    };
    assert!(db2.maintain().unwrap().deleted.is_empty());
}

#[test]
fn a_merge_interrupted_before_its_upload_neither_loses_nor_doubles_data() {
    let remote = Arc::new(MemoryRemote::new());
    let dir = tempfile::tempdir().unwrap();
    let steps = 141; // 23.5 minutes
    let merged = {
        let db = Tsdb::open(dir.path(), opts(&remote, 1 << 30)).unwrap();
        fill(&db, 0, 105, None);
        let rep = db.maintain().unwrap();
        assert_eq!((rep.cut.len(), rep.uploaded.len()), (2, 2));
        fill(&db, 105, steps, None);
        remote.set_down(true);
        let rep = db.maintain().unwrap();
        assert_eq!(rep.compacted.len(), 1, "{rep:?}");
        assert!(rep.upload_failed);
        let merged = rep.compacted[0].clone();
        assert_eq!(merged.sources.len(), 3);
        merged
    };
    // the two uploaded sources are still in the store
    remote.set_down(false);
    assert_eq!(remote_blocks(&remote).0.len(), 2);
    let db = Tsdb::open(dir.path(), opts(&remote, 1 << 30)).unwrap();
    let live = ulids(&db);
    assert!(live.contains(&merged.ulid));
    assert!(remote_blocks(&remote).0.iter().all(|u| !live.contains(u)));
    assert_eq!(
        dump(&db, 0, steps * STEP_MS),
        expected(steps, 0, steps * STEP_MS)
    );
    let rep = db.maintain().unwrap();
    assert!(rep.uploaded.contains(&merged.ulid));
    let (complete, any) = remote_blocks(&remote);
    assert_eq!(complete, ulids(&db));
    assert_eq!(any, complete);
    assert!(merged.sources.iter().all(|u| !any.contains(u)));
}

#[test]
fn leftovers_of_interrupted_uploads_are_deleted() {
    let remote = Arc::new(MemoryRemote::new());
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("part");
    std::fs::write(&part, b"half a block").unwrap();
    remote
        .upload("01ARZ3NDEKTSV4RRFFQ69G5FAV/index", &part)
        .unwrap();
    let db = Tsdb::open(dir.path().join("db").as_path(), opts(&remote, 0)).unwrap();
    assert!(remote.paths().is_empty());
    assert!(db.blocks().is_empty());
}

#[test]
fn a_block_is_complete_in_the_store_only_once_its_meta_is_there() {
    let remote = Arc::new(MemoryRemote::new());
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts(&remote, 0)).unwrap();
    fill(&db, 0, 60, None);
    // the listing and the index go through, the chunks do not
    remote.go_down_after(2);
    let rep = db.maintain().unwrap();
    assert!(rep.upload_failed);
    let ulid = rep.cut[0].ulid.clone();
    assert_eq!(remote.paths(), vec![format!("{ulid}/index")]);
    // another server does not take the half block for one
    let other = tempfile::tempdir().unwrap();
    remote.set_down(false);
    let calls = remote.calls();
    let db2 = Tsdb::open(other.path(), opts(&remote, 0)).unwrap();
    assert!(remote.calls() > calls);
    assert!(db2.blocks().is_empty());
    drop(db2);
    // the writer finishes the upload on its next round
    let rep = db.maintain().unwrap();
    assert_eq!(rep.uploaded, vec![ulid.clone()]);
    let want: Vec<String> = ["chunks", "index", "meta.json"]
        .iter()
        .map(|f| format!("{ulid}/{f}"))
        .collect();
    assert_eq!(remote.paths(), want);
}

#[test]
fn a_damaged_pending_block_is_not_uploaded() {
    let remote = Arc::new(MemoryRemote::new());
    remote.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let ulid = {
        let db = Tsdb::open(dir.path(), opts(&remote, 0)).unwrap();
        fill(&db, 0, 60, None);
        db.maintain().unwrap().cut[0].ulid.clone()
    };
    let index = dir.path().join("blocks").join(&ulid).join("index");
    let mut raw = std::fs::read(&index).unwrap();
    raw[8] ^= 0xff;
    std::fs::write(&index, raw).unwrap();
    remote.set_down(false);
    let db = Tsdb::open(dir.path(), opts(&remote, 0)).unwrap();
    let rep = db.maintain().unwrap();
    assert!(rep.uploaded.is_empty() && !rep.upload_failed, "{rep:?}");
    assert!(remote.paths().is_empty());
    // still local, for an operator to look at
    assert_eq!(local_blocks(dir.path()), BTreeSet::from([ulid]));
}
