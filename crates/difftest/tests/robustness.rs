//! "Fuzz-lite": thousands of mutated corpus queries against the engine with
//! a fixed seed. Every one must return (a value or an error) without
//! panicking, within a bounded time.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use pharos_difftest::corpus::{mutate, parse_known, parse_queries, random_query, testdata_dir};
use pharos_difftest::data::{Config, START_MS, generate};
use pharos_difftest::rng::Rng;
use pharos_promql::{Engine, EngineOptions, MemStorage};

#[test]
fn mutated_queries_never_panic() {
    let data = generate(&Config {
        scrapes: 80,
        ..Config::default()
    });
    let st = MemStorage::new();
    for (l, s) in data.series {
        st.add(l, s);
    }
    let engine = Engine::new(EngineOptions {
        timeout: Duration::from_secs(2),
        max_samples: 2_000_000,
        ..EngineOptions::default()
    });
    let mut corpus =
        parse_queries(&std::fs::read_to_string(testdata_dir().join("queries.txt")).unwrap());
    // Panics already found and tracked in known_differences.txt would be
    // rediscovered by nearly every mutation of their query; leave those seeds
    // out until the fix removes the entry, and look for new ones instead.
    let known = parse_known(
        &std::fs::read_to_string(testdata_dir().join("known_differences.txt")).unwrap(),
    )
    .unwrap();
    let before = corpus.len();
    corpus.retain(|q| !known.get(q).is_some_and(|r| r.contains("PANIC")));
    eprintln!(
        "robustness: {} known-panic queries left out of the mutation seeds",
        before - corpus.len()
    );
    let mut rng = Rng::new(0xf022);
    let started = Instant::now();
    let mut ok = 0;
    let mut slowest = (Duration::ZERO, String::new());
    let n = 10_000;
    for i in 0..n {
        // three text mutations of the corpus to one grammar-built query
        let q = if i % 4 == 3 {
            random_query(&mut rng, 3)
        } else {
            mutate(&mut rng, &corpus)
        };
        let t0 = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| {
            let a = engine.instant(&st, &q, START_MS + 10 * 60_000);
            let b = engine.range(&st, &q, START_MS, START_MS + 20 * 60_000, 60_000);
            a.is_ok() as usize + b.is_ok() as usize
        }));
        let took = t0.elapsed();
        match r {
            Ok(k) => ok += k,
            Err(_) => panic!("query #{i} panicked: {q:?}"),
        }
        if took > slowest.0 {
            slowest = (took, q.clone());
        }
        assert!(
            took < Duration::from_secs(5),
            "query #{i} took {took:?}: {q:?}"
        );
    }
    eprintln!(
        "robustness: {n} mutated and generated queries, {ok} successful evaluations, {:.1}s, slowest {:?} for {:?}",
        started.elapsed().as_secs_f64(),
        slowest.0,
        slowest.1
    );
    // the mutations must not all be syntax errors, or this tests only the parser
    assert!(ok > n / 5, "only {ok} evaluations succeeded");
}
