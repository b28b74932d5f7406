//! Ingestion benchmark with node-exporter-like data.
//!
//! `cargo run --release -p pharos-tsdb --example ingest -- [series] [samples] [fsync] [jitter]`
//! (defaults: 10000 series, 480 samples = 2 h at 15 s, fsync `never`
//! (`always` fsyncs every append call), ±5 ms timestamp jitter; `--kinds`
//! prints the cost per kind of series instead). Appends go in remote_write-sized
//! batches (2000 series x 1 sample) round by round, like scrapes arrive.
//! Prints samples/s (wall and CPU), chunk bytes per sample and estimated
//! head memory per series, then reopens the database to time WAL replay
//! and check that every sample came back.

use std::time::Instant;

use pharos_model::{Labels, MatchOp, Matcher, Sample};
use pharos_tsdb::{FsyncPolicy, Tsdb, TsdbOptions, WalOptions};

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// How one series' value evolves.
#[derive(Clone, Copy)]
enum Kind {
    /// packets, interrupts, context switches: +0..k per scrape
    SmallCounter(u64),
    /// bytes counters: +0..k, larger
    ByteCounter(u64),
    /// cpu seconds: +0.00..k.kk, printed with 2 decimals by the kernel
    SecondsCounter(u64),
    /// load, temperatures, ratios: 2-6 significant digits, wandering
    FloatGauge(u32),
    /// memory bytes in pages
    PageGauge,
    /// filesystem size, info metrics
    Constant,
}

fn next_value(kind: Kind, v: f64, rng: &mut Rng) -> f64 {
    match kind {
        Kind::SmallCounter(k) | Kind::ByteCounter(k) => v + rng.below(k) as f64,
        // the exporter prints centiseconds / 100
        Kind::SecondsCounter(k) => ((v * 100.0).round() + rng.below(k) as f64) / 100.0,
        Kind::FloatGauge(digits) => {
            let scale = 10f64.powi(digits as i32 - 2);
            let x = (v * scale + rng.below(21) as f64 - 10.0).abs();
            x.round() / scale
        }
        Kind::PageGauge => (v + (rng.below(64) as f64 - 32.0) * 4096.0).abs(),
        Kind::Constant => v,
    }
}

/// Bytes per sample of 120-sample chunks for one kind of series, so the
/// totals can be explained.
fn per_kind(name: &str, kind: Kind, jitter: bool) {
    let mut rng = Rng(7);
    let mut bytes = 0usize;
    let mut n = 0usize;
    for _ in 0..50 {
        let mut v = rng.below(1 << 20) as f64;
        let mut a = pharos_tsdb::ChunkAppender::new();
        for k in 0..120i64 {
            v = next_value(kind, v, &mut rng);
            let j = if jitter { rng.below(11) as i64 - 5 } else { 0 };
            a.append(k * 15_000 + j, v);
        }
        n += a.len();
        bytes += a.finish_best().0.bytes().len();
    }
    println!("  {name:<40} {:.3} bytes/sample", bytes as f64 / n as f64);
}

/// Resident memory in bytes, from /proc (0 elsewhere).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn cpu_seconds() -> f64 {
    let mut ru = [0u64; 2];
    if let Ok(s) = std::fs::read_to_string("/proc/self/stat") {
        // fields after the parenthesised command name; utime and stime are
        // the 14th and 15th fields overall, in clock ticks (100/s on Linux)
        if let Some(rest) = s.rsplit(')').next() {
            let f: Vec<&str> = rest.split_whitespace().collect();
            ru[0] = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0);
            ru[1] = f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0);
        }
    }
    (ru[0] + ru[1]) as f64 / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n_series: usize = args.get(1).map_or(Ok(10_000), |s| s.parse())?;
    let n_samples: usize = args.get(2).map_or(Ok(480), |s| s.parse())?;
    let fsync = match args.get(3).map(String::as_str) {
        Some("always") => FsyncPolicy::Always,
        _ => FsyncPolicy::Never,
    };
    // timestamps are the 15 s grid plus uniform jitter in [-jitter, jitter] ms
    let jitter: u64 = args.get(4).map_or(Ok(5), |s| s.parse())?;
    let dir = std::env::temp_dir().join(format!("pharos-tsdb-ingest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = TsdbOptions {
        wal: WalOptions {
            fsync,
            ..WalOptions::default()
        },
        ..TsdbOptions::default()
    };

    let mut rng = Rng(42);
    let names = [
        ("node_network_receive_packets_total", Kind::SmallCounter(40)),
        ("node_intr_total", Kind::SmallCounter(3000)),
        (
            "node_network_receive_bytes_total",
            Kind::ByteCounter(200_000),
        ),
        ("node_cpu_seconds_total", Kind::SecondsCounter(1500)),
        ("node_load1", Kind::FloatGauge(2)),
        ("node_hwmon_temp_celsius", Kind::FloatGauge(3)),
        ("node_filesystem_avail_ratio", Kind::FloatGauge(6)),
        ("node_memory_MemFree_bytes", Kind::PageGauge),
        ("node_filesystem_size_bytes", Kind::Constant),
        ("node_vmstat_pgfault", Kind::SmallCounter(5)),
    ];
    let mut labels = Vec::with_capacity(n_series);
    let mut kinds = Vec::with_capacity(n_series);
    let mut values = Vec::with_capacity(n_series);
    for i in 0..n_series {
        let (name, kind) = names[i % names.len()];
        labels.push(Labels::from_pairs([
            ("__name__", name.to_owned()),
            ("job", "node".to_owned()),
            (
                "instance",
                format!("10.1.{}.{}:9100", (i / 2500) % 256, (i / 10) % 250),
            ),
            ("device", format!("dev{}", i / (names.len() * 250))),
        ]));
        kinds.push(kind);
        values.push(match kind {
            Kind::Constant => (rng.below(1 << 30) * 4096) as f64,
            Kind::PageGauge => (rng.below(1 << 20) * 4096) as f64,
            Kind::FloatGauge(_) => rng.below(1000) as f64 / 10.0,
            _ => rng.below(1 << 30) as f64,
        });
    }

    if args.iter().any(|a| a == "--kinds") {
        for jitter in [false, true] {
            println!("per kind, 120-sample chunks, timestamp jitter {jitter}:");
            for (name, kind) in names {
                per_kind(name, kind, jitter);
            }
        }
        return Ok(());
    }
    let db = Tsdb::open(&dir, opts.clone())?;
    let batch_size = 2000;
    // batches are built once and only their samples change, so the label
    // cloning a real decoder would do is not charged to the engine
    let mut batches: Vec<Vec<(Labels, Vec<Sample>)>> = labels
        .chunks(batch_size)
        .map(|c| {
            c.iter()
                .map(|l| (l.clone(), vec![Sample::new(0, 0.0)]))
                .collect()
        })
        .collect();
    let rss0 = rss_bytes();
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let t0: i64 = 1_700_000_000_000;
    let mut errors = 0usize;
    for round in 0..n_samples {
        let base = t0 + round as i64 * 15_000;
        for (b, batch) in batches.iter_mut().enumerate() {
            for (k, (_, samples)) in batch.iter_mut().enumerate() {
                let i = b * batch_size + k;
                values[i] = next_value(kinds[i], values[i], &mut rng);
                // scrape timestamps: the interval plus a few ms of jitter
                let t = base + rng.below(2 * jitter + 1) as i64 - jitter as i64;
                samples[0] = Sample::new(t, values[i]);
            }
            errors += db.append(batch)?.errors.len();
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = (cpu_seconds() - cpu0).max(0.01);
    let total = (n_series * n_samples) as f64;
    let st = db.stats();
    println!(
        "series {n_series}, samples/series {n_samples}, fsync {fsync:?}, jitter ±{jitter}ms, rejected {errors}"
    );
    println!(
        "ingest: {:.0} samples/s wall ({wall:.2}s), {:.0} samples per CPU-second ({cpu:.2}s CPU)",
        total / wall,
        total / cpu
    );
    println!(
        "chunks: {} bytes, {:.3} bytes/sample",
        st.chunk_bytes,
        st.chunk_bytes as f64 / st.samples as f64
    );
    println!(
        "head memory (estimate): {} bytes, {:.0} bytes/series",
        st.memory_bytes,
        st.memory_bytes as f64 / st.series as f64
    );
    println!(
        "rss growth during ingest: {:.0} bytes/series (includes allocator slack)",
        rss_bytes().saturating_sub(rss0) as f64 / st.series as f64
    );
    let wal_bytes: u64 = std::fs::read_dir(dir.join("wal"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!("wal: {:.2} bytes/sample", wal_bytes as f64 / total);

    let q = Instant::now();
    let sel = [Matcher::new(
        MatchOp::Regex,
        "__name__",
        "node_cpu.*|node_load1",
    )?];
    let got = db.select(&sel, i64::MIN, i64::MAX)?;
    let n: usize = got.iter().map(|(_, s)| s.len()).sum();
    println!(
        "query: {} series, {n} samples decoded in {:.1} ms",
        got.len(),
        q.elapsed().as_secs_f64() * 1e3
    );

    // on-disk size: all of it written as one block
    let all = db.select(
        &[Matcher::new(MatchOp::Regex, "__name__", ".+")?],
        i64::MIN,
        i64::MAX,
    )?;
    let bdir = dir.join("bench-blocks");
    let w = Instant::now();
    let meta = pharos_tsdb::write_block(&bdir, i64::MIN, i64::MAX, 1, all)?;
    let size = |f: &str| std::fs::metadata(bdir.join(&meta.ulid).join(f)).map_or(0, |m| m.len());
    println!(
        "block: chunks {:.3} bytes/sample, index {:.1} bytes/series, written in {:.2}s",
        size("chunks") as f64 / total,
        size("index") as f64 / n_series as f64,
        w.elapsed().as_secs_f64()
    );
    drop(db);

    let r = Instant::now();
    let db = Tsdb::open(&dir, opts)?;
    let st2 = db.stats();
    println!(
        "replay: {:.2}s for {} samples ({})",
        r.elapsed().as_secs_f64(),
        st2.samples,
        if st2.samples == st.samples {
            "all back"
        } else {
            "MISMATCH"
        }
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
