//! Chunk decoding micro-benchmark.
//!
//! `cargo run --release -p pharos-tsdb --example decode -- [chunks] [rounds]`
//! (defaults: 200 chunks of 480 samples per kind, 30 rounds). Builds
//! chunks the way the head does (each series' next chunk starts in the
//! encoding its previous one closed with, and is closed with
//! `finish_best`), then times `Chunk::decode_checked` (block reads) and
//! `Chunk::samples_into` (head reads) over all of them and prints the
//! nanoseconds per sample for each kind of series.

use std::hint::black_box;
use std::time::Instant;

use pharos_model::Sample;
use pharos_tsdb::{Chunk, ChunkAppender, Encoding};

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

#[derive(Clone, Copy)]
enum Kind {
    /// packets counter, +0..20 per scrape, timestamps jittered by ±5 ms
    JitterCounter,
    /// the same on exact 15 s timestamps
    RegularCounter,
    /// cpu seconds with two decimals, jittered timestamps
    SecondsCounter,
    /// a gauge in whole 4096-byte pages, wandering (ranged in pages)
    PageGauge,
    /// a gauge that holds its value for a few scrapes (step deltas)
    HeldGauge,
    /// a counter growing by the same amount nearly every scrape
    SteadyCounter,
    /// a float gauge with random full mantissas (XOR)
    FloatGauge,
    /// a smooth float gauge (ranged bit patterns)
    SmoothGauge,
}

const KINDS: [(Kind, &str); 8] = [
    (Kind::JitterCounter, "counter, jittered ts"),
    (Kind::RegularCounter, "counter, regular ts"),
    (Kind::SecondsCounter, "seconds counter .2f"),
    (Kind::PageGauge, "page-sized gauge"),
    (Kind::HeldGauge, "held gauge"),
    (Kind::SteadyCounter, "steady counter"),
    (Kind::FloatGauge, "random float gauge"),
    (Kind::SmoothGauge, "smooth float gauge"),
];

const SAMPLES_PER_CHUNK: usize = 480;

/// `chunks` closed chunks of one series of this kind, in the order the
/// head would close them.
fn build(kind: Kind, chunks: usize, rng: &mut Rng) -> Vec<Chunk> {
    let mut out = Vec::with_capacity(chunks);
    let mut enc = Encoding::default();
    let mut t = 1_700_000_000_000i64;
    let mut v = 0.0f64;
    let mut m = rng.below(1_000_000) as i64;
    let mut phase = 0.0f64;
    // one warm-up chunk so the measured ones start in the chosen encoding
    for i in 0..=chunks {
        let mut a = ChunkAppender::with_encoding(enc);
        for _ in 0..SAMPLES_PER_CHUNK {
            t += 15_000;
            let ts = match kind {
                Kind::RegularCounter => t,
                _ => t + rng.jitter(5),
            };
            v = match kind {
                Kind::JitterCounter | Kind::RegularCounter => v + rng.below(21) as f64,
                Kind::SecondsCounter => {
                    m += 90 + rng.below(30) as i64;
                    m as f64 / 100.0
                }
                Kind::PageGauge => {
                    m += rng.below(9) as i64 - 4;
                    (m * 4096) as f64
                }
                Kind::HeldGauge => {
                    if rng.below(5) == 0 {
                        m += rng.below(200) as i64 - 100;
                    }
                    m as f64
                }
                Kind::SteadyCounter => v + if rng.below(20) == 0 { 16.0 } else { 15.0 },
                Kind::FloatGauge => {
                    // a ratio that often repeats and spans binades
                    if rng.below(3) == 0 {
                        v
                    } else {
                        (rng.next() >> 11) as f64 / (1u64 << 53) as f64
                            * f64::from(1u32 << rng.below(12))
                    }
                }
                Kind::SmoothGauge => {
                    phase += 0.01;
                    0.5 + 0.3 * phase.sin() + (rng.below(1000) as f64) * 1e-7
                }
            };
            assert!(a.append(ts, v));
        }
        let (c, next) = a.finish_best();
        enc = next;
        if i > 0 {
            out.push(c);
        }
    }
    out
}

/// Best nanoseconds per sample over `rounds` passes of `f` over `chunks`.
fn time(chunks: &[Chunk], rounds: usize, mut f: impl FnMut(&Chunk, &mut Vec<Sample>)) -> f64 {
    let samples: usize = chunks.iter().map(Chunk::len).sum();
    let mut out = Vec::with_capacity(SAMPLES_PER_CHUNK);
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let start = Instant::now();
        for c in chunks {
            out.clear();
            f(c, &mut out);
            black_box(&out);
        }
        let ns = start.elapsed().as_nanos() as f64 / samples as f64;
        best = best.min(ns);
    }
    best
}

fn main() {
    let mut args = std::env::args().skip(1);
    let chunks: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(30);
    let mut rng = Rng(42);
    println!(
        "{:<22} {:<52} {:>6} {:>9} {:>9}",
        "kind", "encoding", "B/smp", "checked", "into"
    );
    let (mut all_c, mut all_i, mut kinds) = (0.0, 0.0, 0.0);
    for (kind, name) in KINDS {
        let cs = build(kind, chunks, &mut rng);
        let bytes: usize = cs.iter().map(|c| c.bytes().len()).sum();
        let samples: usize = cs.iter().map(Chunk::len).sum();
        let checked = time(&cs, rounds, |c, out| {
            assert!(Chunk::decode_checked(
                black_box(c.bytes()),
                i64::MIN,
                i64::MAX,
                out
            ));
        });
        let into = time(&cs, rounds, |c, out| {
            c.samples_into(i64::MIN, i64::MAX, out);
        });
        // every decoder agrees
        let mut a = Vec::new();
        let mut b = Vec::new();
        for c in &cs {
            a.clear();
            b.clear();
            assert!(Chunk::decode_checked(c.bytes(), i64::MIN, i64::MAX, &mut a));
            c.samples_into(i64::MIN, i64::MAX, &mut b);
            let it: Vec<Sample> = c.iter().collect();
            assert_eq!(a.len(), c.len());
            for ((x, y), z) in a.iter().zip(&b).zip(&it) {
                assert_eq!((x.t, x.v.to_bits()), (y.t, y.v.to_bits()));
                assert_eq!((x.t, x.v.to_bits()), (z.t, z.v.to_bits()));
            }
        }
        let enc = match cs.last().and_then(Chunk::encoding) {
            Some(e) => format!("{:?} {:?}", e.time, e.value),
            None => "?".to_string(),
        };
        println!(
            "{:<22} {:<52} {:>6.2} {:>7.2}ns {:>7.2}ns",
            name,
            enc,
            bytes as f64 / samples as f64,
            checked,
            into
        );
        all_c += checked;
        all_i += into;
        kinds += 1.0;
    }
    println!(
        "{:<22} {:<52} {:>6} {:>7.2}ns {:>7.2}ns",
        "mean",
        "",
        "",
        all_c / kinds,
        all_i / kinds
    );
}
