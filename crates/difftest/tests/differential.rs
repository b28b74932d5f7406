//! Runs the committed query corpus against a real Prometheus 2.42 and the
//! Pharos engine over the same samples, instant and range, and requires
//! identical answers except for the documented known differences.

use std::collections::BTreeMap;
use std::time::Instant;

use pharos_difftest::compare::{Outcome, compare};
use pharos_difftest::corpus::{ordered, parse_known, parse_queries, testdata_dir};
use pharos_difftest::data::{Config, START_MS, generate};
use pharos_difftest::prom::{Prometheus, binaries};
use pharos_promql::{Engine, EngineOptions, MemStorage};

const S: i64 = 1000;
const M: i64 = 60 * S;
const H: i64 = 60 * M;

/// Instant evaluation times, chosen around the data set's events: early
/// data, an odd millisecond offset, exactly on node-0's scrape (window
/// boundaries), inside node-2's outage (its last sample just leaving the
/// lookback window), right after app-1's restart, and past the end of the
/// data where only lookback keeps series alive.
const INSTANTS: [i64; 6] = [
    START_MS + 5 * M,
    START_MS + H + 7_500,
    START_MS + 2 * H,
    START_MS + 80 * M + 12 * S,
    START_MS + 160 * M + 50 * S,
    START_MS + 4 * H + 105 * S,
];

/// (start, end, step) of the range evaluations: an hour at 1m across the
/// end of the `/old` series, an unaligned start and a step that divides
/// nothing across node-2's outage, 30 min at 15s across the restart, and the
/// whole data set at 5m.
const RANGES: [(i64, i64, i64); 4] = [
    (START_MS + H, START_MS + 2 * H, M),
    (START_MS + 70 * M + 333, START_MS + 100 * M, 37 * S),
    (START_MS + 150 * M, START_MS + 180 * M, 15 * S),
    (START_MS, START_MS + 4 * H + 5 * M, 5 * M),
];

#[test]
fn differential_against_prometheus_2_42() {
    let Some((promtool, prometheus)) = binaries() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool/prometheus not found but CI is set: the differential test must run in CI"
        );
        eprintln!(
            "SKIPPED differential test: promtool and prometheus (2.42) not on PATH; \
             install the Debian `prometheus` package or set PROMTOOL/PROMETHEUS"
        );
        return;
    };
    let started = Instant::now();
    let data = generate(&Config::default());
    let prom = Prometheus::start(&promtool, &prometheus, &data).expect("start prometheus");
    let setup_prom = started.elapsed();

    // Pharos evaluates over exactly what Prometheus stored
    let (lo, hi) = data.bounds().expect("data set is not empty");
    let stored = prom.read_back(lo, hi + M).expect("read back");
    let stored_samples: usize = stored.iter().map(|(_, s)| s.len()).sum();
    assert_eq!(stored.len(), data.series.len(), "series stored by promtool");
    assert_eq!(stored_samples, data.samples(), "samples stored by promtool");
    let st = MemStorage::new();
    for (l, s) in stored {
        st.add(l, s);
    }
    let engine = Engine::new(EngineOptions::default());

    let dir = testdata_dir();
    let queries = parse_queries(&std::fs::read_to_string(dir.join("queries.txt")).unwrap());
    let known =
        parse_known(&std::fs::read_to_string(dir.join("known_differences.txt")).unwrap()).unwrap();
    assert!(queries.len() >= 300, "corpus has {} queries", queries.len());
    for q in known.keys() {
        assert!(queries.contains(q), "known difference not in corpus: {q}");
    }

    let mut mismatches: BTreeMap<&str, String> = BTreeMap::new();
    let mut both_error = 0;
    let mut with_data = 0;
    let mut t_prom = std::time::Duration::ZERO;
    let mut t_ours = std::time::Duration::ZERO;
    for q in &queries {
        let mut first: Option<String> = None;
        let mut errors = 0;
        let mut last_error = String::new();
        let mut has_data = false;
        for t in INSTANTS {
            let a = Instant::now();
            let p = Outcome::from_prometheus(&prom.instant(q, t).expect("prometheus reachable"));
            t_prom += a.elapsed();
            let a = Instant::now();
            let o = Outcome::run_pharos(|| engine.instant(&st, q, t));
            t_ours += a.elapsed();
            errors += usize::from(p.is_error() && o.is_error());
            has_data |= p.has_data();
            if let Outcome::Error(e) = &p {
                last_error.clone_from(e);
            }
            if first.is_none()
                && let Err(e) = compare(&p, &o, ordered(q))
            {
                first = Some(format!("instant @{}: {e}", t / S));
            }
        }
        for (start, end, step) in RANGES {
            let a = Instant::now();
            let p = Outcome::from_prometheus(
                &prom
                    .range(q, start, end, step)
                    .expect("prometheus reachable"),
            );
            t_prom += a.elapsed();
            has_data |= p.has_data();
            let a = Instant::now();
            let o = Outcome::run_pharos(|| engine.range(&st, q, start, end, step));
            t_ours += a.elapsed();
            if first.is_none()
                && let Err(e) = compare(&p, &o, false)
            {
                first = Some(format!(
                    "range {}..{} step {}s: {e}",
                    start / S,
                    end / S,
                    step / S
                ));
            }
        }
        with_data += usize::from(has_data);
        if errors == INSTANTS.len() {
            both_error += 1;
            // listed so a typo that breaks a query in both engines is seen
            eprintln!("both fail: {q}\n    {last_error}");
        }
        if let Some(e) = first {
            mismatches.insert(q, e);
        }
    }

    let total = queries.len();
    let matched = total - mismatches.len();
    let mut unexpected = Vec::new();
    for (q, e) in &mismatches {
        let tag = if known.contains_key(*q) {
            "known"
        } else {
            "MISMATCH"
        };
        eprintln!("{tag}: {q}\n    {e}");
        if !known.contains_key(*q) {
            unexpected.push(*q);
        }
    }
    let fixed: Vec<&String> = known
        .keys()
        .filter(|q| !mismatches.contains_key(q.as_str()))
        .collect();
    for q in &fixed {
        eprintln!("known difference now matches, remove it from known_differences.txt: {q}");
    }
    eprintln!(
        "differential: {matched}/{total} queries match ({:.1}%); {} known differences; \
         {with_data} return data somewhere, {both_error} fail in both at every instant; prometheus setup {:.1}s, \
         prometheus queries {:.1}s, pharos queries {:.1}s, total {:.1}s",
        matched as f64 * 100.0 / total as f64,
        known.len(),
        setup_prom.as_secs_f64(),
        t_prom.as_secs_f64(),
        t_ours.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    // agreement on empty answers proves little: most of the corpus must
    // produce samples
    assert!(
        with_data * 10 >= total * 8,
        "only {with_data} of {total} queries return any data; is the data set loaded?"
    );
    assert!(
        unexpected.is_empty(),
        "{} queries differ from Prometheus 2.42 (see above)",
        unexpected.len()
    );
    assert!(fixed.is_empty(), "stale entries in known_differences.txt");
}
