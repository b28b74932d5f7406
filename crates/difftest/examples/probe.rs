//! Investigation helper: loads the differential data set into Prometheus and
//! Pharos and prints both answers to the queries given as arguments.
//! `cargo run -p pharos-difftest --example probe -- [--range START END STEP | --at T] QUERY...`
//! (times in Unix seconds).

use pharos_difftest::compare::{Outcome, compare};
use pharos_difftest::data::{Config, generate};
use pharos_difftest::prom::{Prometheus, binaries};
use pharos_promql::{Engine, EngineOptions, MemStorage};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut range = None;
    let mut at = 1_700_003_600_000;
    if args.first().map(String::as_str) == Some("--range") {
        let n: Vec<i64> = args[1..4]
            .iter()
            .map(|a| a.parse::<i64>().unwrap() * 1000)
            .collect();
        range = Some((n[0], n[1], n[2]));
        args.drain(..4);
    } else if args.first().map(String::as_str) == Some("--at") {
        at = (args[1].parse::<f64>().unwrap() * 1000.0) as i64;
        args.drain(..2);
    }
    let (promtool, prometheus) = binaries().expect("promtool and prometheus on PATH");
    let data = generate(&Config::default());
    let prom = Prometheus::start(&promtool, &prometheus, &data).unwrap();
    let (lo, hi) = data.bounds().unwrap();
    let st = MemStorage::new();
    for (l, s) in prom.read_back(lo, hi + 60_000).unwrap() {
        st.add(l, s);
    }
    let e = Engine::new(EngineOptions::default());
    for q in &args {
        let (p, o) = match range {
            Some((s, en, step)) => (
                prom.range(q, s, en, step).unwrap(),
                e.range(&st, q, s, en, step),
            ),
            None => (prom.instant(q, at).unwrap(), e.instant(&st, q, at)),
        };
        println!("== {q}\nprometheus: {p}\npharos: {o:?}");
        println!(
            "compare: {:?}",
            compare(
                &Outcome::from_prometheus(&p),
                &Outcome::from_pharos(o),
                false
            )
        );
    }
}
