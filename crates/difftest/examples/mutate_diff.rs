//! Exploration tool, not a test: mutates corpus queries with a seeded PRNG
//! and prints those where Prometheus 2.42 and Pharos disagree (instant
//! queries only). Mutated queries hit corners no one writes on purpose; a
//! disagreement here is a lead to investigate, not necessarily a bug.
//! With a third argument `gen`, queries come from the grammar-driven
//! generator instead of corpus mutation.
//! `cargo run -p pharos-difftest --example mutate_diff -- [COUNT] [SEED] [gen]`

use pharos_difftest::compare::{Outcome, compare};
use pharos_difftest::corpus::{mutate, ordered, parse_queries, random_query, testdata_dir};
use pharos_difftest::data::{Config, START_MS, generate};
use pharos_difftest::prom::{Prometheus, binaries};
use pharos_difftest::rng::Rng;
use pharos_promql::{Engine, EngineOptions, MemStorage};

fn main() {
    let generated = std::env::args().nth(3).as_deref() == Some("gen");
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .take(2)
        .map(|a| a.parse().expect("numeric argument"))
        .collect();
    let count = args.first().copied().unwrap_or(2000);
    let seed = args.get(1).copied().unwrap_or(1);
    let (promtool, prometheus) = binaries().expect("promtool and prometheus on PATH");
    let data = generate(&Config::default());
    let prom = Prometheus::start(&promtool, &prometheus, &data).unwrap();
    let (lo, hi) = data.bounds().unwrap();
    let st = MemStorage::new();
    for (l, s) in prom.read_back(lo, hi + 60_000).unwrap() {
        st.add(l, s);
    }
    let e = Engine::new(EngineOptions::default());
    let corpus =
        parse_queries(&std::fs::read_to_string(testdata_dir().join("queries.txt")).unwrap());
    let mut rng = Rng::new(seed);
    let t = START_MS + 2 * 3_600_000 + 7_000 + 3_600_000 * (seed as i64 % 2);
    let (mut both_ok, mut differ) = (0, 0);
    for _ in 0..count {
        let q = if generated {
            random_query(&mut rng, 3)
        } else {
            mutate(&mut rng, &corpus)
        };
        let p = Outcome::from_prometheus(&prom.instant(&q, t).unwrap());
        let o = Outcome::run_pharos(|| e.instant(&st, &q, t));
        both_ok += usize::from(!p.is_error() && !o.is_error());
        if let Err(d) = compare(&p, &o, ordered(&q)) {
            differ += 1;
            println!("{q}\n    {d}");
        }
    }
    println!("{count} mutated queries: {both_ok} succeed in both, {differ} differ");
}
