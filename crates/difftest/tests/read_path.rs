//! The TSDB's read path (blocks plus head, long ranges read in time slices
//! on several threads) returns exactly what was written, compared with the
//! in-memory storage the engine's own tests use.

use std::time::Duration;

use pharos_difftest::data::{Config, generate};
use pharos_model::{Labels, MatchOp, Matcher, Sample};
use pharos_promql::{MemStorage, Queryable};
use pharos_tsdb::{HeadOptions, Tsdb, TsdbOptions};

#[test]
fn tsdb_select_matches_memory_across_blocks_head_and_slices() {
    // 4 h at 15 s; 30 min blocks so maintenance leaves several blocks
    // and a head, and ranges over 40 min are read in slices
    let data = generate(&Config::default());
    let dir = tempfile::tempdir().unwrap();
    let opts = TsdbOptions {
        head: HeadOptions {
            chunk_range: Duration::from_secs(1800),
            ..HeadOptions::default()
        },
        ..TsdbOptions::default()
    };
    let db = Tsdb::open(dir.path(), opts).unwrap();
    let mem = MemStorage::new();
    let (lo, hi) = data.bounds().unwrap();
    let mut t = lo;
    while t <= hi {
        let batch: Vec<(Labels, Vec<Sample>)> = data
            .series
            .iter()
            .map(|(l, s)| {
                let a = s.partition_point(|x| x.t < t);
                let b = s.partition_point(|x| x.t < t + 300_000);
                (l.clone(), s[a..b].to_vec())
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        let rep = db.append(&batch).unwrap();
        assert!(rep.errors.is_empty(), "{:?}", rep.errors);
        t += 300_000;
    }
    for (l, s) in &data.series {
        mem.add(l.clone(), s.iter().copied());
    }
    let cut = db.maintain().unwrap();
    assert!(cut.cut.len() >= 4, "expected blocks, got {cut:?}");

    let all = Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap();
    let cpu = Matcher::equal("__name__", "node_cpu_seconds_total");
    let not_idle = Matcher::new(MatchOp::NotEqual, "mode", "idle").unwrap();
    let ranges = [
        (i64::MIN, i64::MAX),
        (lo, hi),
        (lo - 1, lo),
        (lo + 1_234_567, hi - 7_654_321),
        (lo + 1_800_000, lo + 1_800_000 + 45 * 60_000),
        (hi - 300_000, hi + 1),
        (hi + 1, hi + 10_000_000),
    ];
    for matchers in [vec![all], vec![cpu, not_idle]] {
        for &(a, b) in &ranges {
            let got: Vec<(Labels, Vec<Sample>)> = db.select(&matchers, a, b).unwrap();
            let want: Vec<(Labels, Vec<Sample>)> = mem
                .select(&matchers, a, b)
                .unwrap()
                .into_iter()
                .map(|s| (s.labels, s.samples))
                .collect();
            assert_eq!(got.len(), want.len(), "series in {a}..{b}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.0, w.0);
                let bits = |s: &[Sample]| -> Vec<(i64, u64)> {
                    s.iter().map(|x| (x.t, x.v.to_bits())).collect()
                };
                assert_eq!(bits(&g.1), bits(&w.1), "{} in {a}..{b}", g.0);
            }
        }
    }
}
