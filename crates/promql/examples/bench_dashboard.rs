//! Rough timing of dashboard-style range queries over in-memory series:
//! `cargo run --release -p pharos-promql --example bench_dashboard`.

use std::time::Instant;

use pharos_model::{Labels, Sample};
use pharos_promql::{Engine, EngineOptions, MemStorage, Value};

fn main() {
    let st = MemStorage::new();
    let hour = 3_600_000;
    let scrape = 15_000;
    for i in 0..2_000 {
        let job = format!("job{}", i % 10);
        let inst = format!("inst{i}");
        st.add(
            Labels::from_pairs([
                ("__name__", "requests_total"),
                ("job", &job),
                ("instance", &inst),
            ]),
            (0..=hour / scrape).map(|k| Sample::new(k * scrape, (k * (i % 7 + 1)) as f64)),
        );
    }
    for (b, le) in ["0.1", "0.5", "1", "+Inf"].iter().enumerate() {
        for i in 0..200 {
            st.add(
                Labels::from_pairs([
                    ("__name__", "lat_bucket"),
                    ("le", *le),
                    ("instance", &format!("inst{i}")),
                ]),
                (0..=hour / scrape).map(|k| Sample::new(k * scrape, (k * (b as i64 + 1)) as f64)),
            );
        }
    }
    let e = Engine::new(EngineOptions::default());
    for q in [
        "sum by (job) (rate(requests_total[5m]))",
        "histogram_quantile(0.9, sum by (le) (rate(lat_bucket[5m])))",
        "topk(5, rate(requests_total[5m]))",
        "requests_total / on(instance) group_left sum by (instance) (requests_total)",
        "max_over_time(sum(requests_total)[10m:1m])",
    ] {
        let t = Instant::now();
        let r = e.range(&st, q, 0, hour, 15_000).expect("query failed");
        let n = match r {
            Value::Matrix(m) => m.len(),
            _ => 0,
        };
        println!(
            "{:>8.1} ms  {n:>5} series  {q}",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
}
