//! Reading samples back through a Prometheus-compatible query API and
//! checking them bit for bit against what was acknowledged.

use std::collections::{HashMap, HashSet};

use crate::error::LoadgenError;
use crate::plan::Plan;
use crate::run::{Outcome, RunReport};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Acknowledged samples of the checked series.
    pub expected: u64,
    /// Acknowledged samples found with the exact bits.
    pub exact: u64,
    /// Samples found with a different value than generated.
    pub mismatched: u64,
    /// Acknowledged samples not found.
    pub missing: u64,
    /// A timestamp answered twice for one series.
    pub duplicates: u64,
    /// Samples never sent (unknown series, off-grid time, unsent request).
    pub unexpected: u64,
    /// Samples of requests without a 2xx that were kept anyway (allowed).
    pub unacked_present: u64,
    pub series_returned: u64,
    /// The first few problems, for a readable failure.
    pub examples: Vec<String>,
}

impl VerifyReport {
    pub fn is_lossless(&self) -> bool {
        self.mismatched == 0 && self.missing == 0 && self.duplicates == 0 && self.unexpected == 0
    }

    fn note(&mut self, s: impl FnOnce() -> String) {
        if self.examples.len() < 10 {
            self.examples.push(s());
        }
    }
}

/// Checks every series whose `instance` label is in `instances`.
///
/// `query_url` is the `/api/v1/query` endpoint; `at_ms` must be after the
/// last sample sent.
pub async fn verify(
    client: &reqwest::Client,
    query_url: &str,
    plan: &Plan,
    report: &RunReport,
    instances: &[String],
    at_ms: i64,
) -> Result<VerifyReport, LoadgenError> {
    let index: HashMap<&[(String, String)], usize> = plan
        .set
        .specs
        .iter()
        .enumerate()
        .map(|(i, s)| (s.labels.as_slice(), i))
        .collect();
    let range_ms = (at_ms - plan.start_ms + plan.interval_ms).max(1);
    let mut out = VerifyReport::default();
    let wanted: HashSet<&str> = instances.iter().map(String::as_str).collect();
    for inst in instances {
        let q = format!("{{instance=\"{inst}\"}}[{range_ms}ms]");
        let url = format!(
            "{query_url}?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("query", &q)
                .append_pair("time", &format!("{:.3}", at_ms as f64 / 1000.0))
                .finish()
        );
        let resp = client.get(&url).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| LoadgenError::Query {
                query: q.clone(),
                body: String::from_utf8_lossy(&body).chars().take(300).collect(),
            })?;
        if !status.is_success() || v["status"] != "success" {
            return Err(LoadgenError::Query {
                query: q,
                body: v.to_string().chars().take(300).collect(),
            });
        }
        let results = v["data"]["result"].as_array().cloned().unwrap_or_default();
        for r in &results {
            out.series_returned += 1;
            let mut labels: Vec<(String, String)> = r["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            labels.sort();
            let values = r["values"].as_array().cloned().unwrap_or_default();
            let Some(&idx) = index.get(labels.as_slice()) else {
                out.unexpected += values.len() as u64;
                out.note(|| format!("unknown series {labels:?}"));
                continue;
            };
            let mut seen = HashSet::new();
            for pair in &values {
                let t = (pair[0].as_f64().unwrap_or(f64::NAN) * 1000.0).round() as i64;
                let got: Option<f64> = pair[1].as_str().and_then(|s| s.parse().ok());
                let Some(k) = plan.scrape_of(t) else {
                    out.unexpected += 1;
                    out.note(|| format!("series {idx}: off-grid timestamp {t}"));
                    continue;
                };
                if !seen.insert(k) {
                    out.duplicates += 1;
                    out.note(|| format!("series {idx}: timestamp {t} answered twice"));
                    continue;
                }
                let want = plan.set.value(idx, k);
                let acked = match report.outcome(plan.batch_of(idx, k)) {
                    None => {
                        out.unexpected += 1;
                        out.note(|| format!("series {idx}: sample at {t} was never sent"));
                        continue;
                    }
                    Some(o) => o == Outcome::Acked,
                };
                if got.map(f64::to_bits) != Some(want.to_bits()) {
                    out.mismatched += 1;
                    out.note(|| format!("series {idx} at {t}: got {} want {want:?}", pair[1]));
                } else if acked {
                    out.exact += 1;
                } else {
                    out.unacked_present += 1;
                }
            }
            // what was acknowledged for this series but not answered
            for k in acked_scrapes(plan, report, idx) {
                if !seen.contains(&k) {
                    out.missing += 1;
                    out.note(|| {
                        format!(
                            "series {idx}: acknowledged sample at {} missing",
                            plan.timestamp(k)
                        )
                    });
                }
            }
        }
        // series with acknowledged samples the server did not answer at all
        let answered: HashSet<usize> = results
            .iter()
            .filter_map(|r| {
                let mut l: Vec<(String, String)> = r["metric"]
                    .as_object()?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                l.sort();
                index.get(l.as_slice()).copied()
            })
            .collect();
        for (idx, spec) in plan.set.specs.iter().enumerate() {
            let here = spec
                .labels
                .iter()
                .any(|(k, v)| k == "instance" && v == inst && wanted.contains(v.as_str()));
            if !here {
                continue;
            }
            let acked = acked_scrapes(plan, report, idx).count() as u64;
            out.expected += acked;
            if !answered.contains(&idx) && acked > 0 {
                out.missing += acked;
                out.note(|| {
                    format!("series {idx} ({inst}) absent with {acked} acknowledged samples")
                });
            }
        }
    }
    Ok(out)
}

/// Scrapes of series `idx` whose request got a 2xx.
fn acked_scrapes<'a>(
    plan: &'a Plan,
    report: &'a RunReport,
    idx: usize,
) -> impl Iterator<Item = u64> + 'a {
    let shard = idx % plan.shards;
    let sent = report.shards.get(shard).map_or(0, Vec::len) as u64;
    let bps = plan.batches_per_scrape(shard).max(1);
    (0..sent.div_ceil(bps))
        .filter(move |&k| report.outcome(plan.batch_of(idx, k)) == Some(Outcome::Acked))
}
