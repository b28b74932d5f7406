//! Parses and evaluates arbitrary query text, instant and range, against a
//! small store: every input must end in a value or an error, never a panic,
//! and the limits must keep memory and time bounded.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pharos_model::{Labels, Sample};
use pharos_promql::{Engine, EngineOptions, MemStorage};

fn store() -> &'static MemStorage {
    static STORE: OnceLock<MemStorage> = OnceLock::new();
    STORE.get_or_init(|| {
        let st = MemStorage::new();
        for (i, job) in ["api", "db", "web"].iter().enumerate() {
            for inst in 0..2 {
                let inst = format!("h{inst}:9100");
                st.add(
                    Labels::from_pairs([("__name__", "up"), ("job", job), ("instance", &inst)]),
                    (0..40)
                        .map(|k| Sample::new(k * 15_000, ((k + i as i64) % 3 != 0) as i64 as f64)),
                );
                st.add(
                    Labels::from_pairs([
                        ("__name__", "http_requests_total"),
                        ("job", job),
                        ("instance", &inst),
                    ]),
                    // a counter with a reset in the middle
                    (0..40).map(|k| Sample::new(k * 15_000, ((k % 25) * (i as i64 + 1)) as f64)),
                );
                for le in ["0.1", "1", "+Inf"] {
                    st.add(
                        Labels::from_pairs([
                            ("__name__", "latency_bucket"),
                            ("job", job),
                            ("instance", &inst),
                            ("le", le),
                        ]),
                        (0..40).map(|k| Sample::new(k * 15_000, (k * le.len() as i64) as f64)),
                    );
                }
            }
        }
        st.add(
            Labels::from_pairs([("__name__", "odd"), ("v", "nan")]),
            [Sample::new(0, f64::NAN), Sample::new(15_000, f64::INFINITY)],
        );
        st
    })
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(EngineOptions {
            max_samples: 200_000,
            timeout: Duration::from_secs(2),
            ..EngineOptions::default()
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let st = store();
    let e = engine();
    let _ = e.instant(st, query, 300_000);
    let _ = e.range(st, query, 0, 600_000, 30_000);
});
