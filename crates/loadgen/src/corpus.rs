//! Recorded node-exporter scrapes, replayed as many hosts.
//!
//! A corpus file is text expositions one after the other, each preceded
//! by a `# SCRAPE` line.

use std::collections::{BTreeMap, HashMap};

use crate::error::LoadgenError;
use crate::series::{Kind, SeriesSet, SeriesSpec};

pub const SCRAPE_MARK: &str = "# SCRAPE";

type LabelSet = Vec<(String, String)>;

/// Scrapes `url` `times` times, `every` apart, into a corpus text.
pub async fn record(
    client: &reqwest::Client,
    url: &str,
    times: usize,
    every: std::time::Duration,
) -> Result<String, LoadgenError> {
    let mut out = String::new();
    for i in 0..times {
        if i > 0 {
            tokio::time::sleep(every).await;
        }
        let text = client
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        out.push_str(SCRAPE_MARK);
        out.push('\n');
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// One parsed sample line: labels (with `__name__`, sorted) and value.
fn parse_line(line: &str) -> Result<(LabelSet, f64), LoadgenError> {
    let bad = || LoadgenError::Corpus(format!("cannot parse {line:?}"));
    let name_end = line.find(['{', ' ']).ok_or_else(bad)?;
    let mut labels = vec![("__name__".to_owned(), line[..name_end].to_owned())];
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let consumed;
        loop {
            while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                chars.next();
            }
            match chars.peek() {
                Some((i, '}')) => {
                    consumed = i + 1;
                    break;
                }
                None => return Err(bad()),
                _ => {}
            }
            let mut name = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                name.push(c);
            }
            if chars.next().map(|x| x.1) != Some('"') {
                return Err(bad());
            }
            let mut value = String::new();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|x| x.1) {
                        Some('n') => value.push('\n'),
                        Some(o) => value.push(o),
                        None => return Err(bad()),
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    o => value.push(o),
                }
            }
            if !closed {
                return Err(bad());
            }
            // an empty value means "no such label" to every receiver
            if !value.is_empty() {
                labels.push((name.trim().to_owned(), value));
            }
        }
        rest = &r[consumed..];
    }
    let v = rest.split_whitespace().next().ok_or_else(bad)?;
    let v = match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        o => o.parse().map_err(|_| bad())?,
    };
    labels.sort();
    Ok((labels, v))
}

/// Builds `n` series from a corpus, relabelling `instance`/`job` so each
/// copy of the recorded host is a distinct simulated host.
pub fn series_from_corpus(text: &str, n: usize, seed: u64) -> Result<SeriesSet, LoadgenError> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut scrapes: Vec<BTreeMap<LabelSet, f64>> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line == SCRAPE_MARK {
            scrapes.push(BTreeMap::new());
        } else if let Some(t) = line.strip_prefix("# TYPE ") {
            let mut p = t.split_whitespace();
            if let (Some(name), Some(kind)) = (p.next(), p.next()) {
                types.insert(name.to_owned(), kind.to_owned());
            }
        } else if !line.is_empty() && !line.starts_with('#') {
            let (mut labels, v) = parse_line(line)?;
            labels.retain(|(k, _)| k != "instance" && k != "job");
            scrapes
                .last_mut()
                .ok_or_else(|| LoadgenError::Corpus("sample before the first # SCRAPE".into()))?
                .insert(labels, v);
        }
    }
    if scrapes.is_empty() {
        return Err(LoadgenError::Corpus("no scrapes".into()));
    }
    // a series present in every scrape with finite values only: the replay
    // has a value for every scrape and the check compares bits
    let first = &scrapes[0];
    let mut tracks = Vec::new();
    let mut kinds = Vec::new();
    for (labels, _) in first.iter() {
        let vals: Option<Vec<f64>> = scrapes.iter().map(|s| s.get(labels).copied()).collect();
        let Some(vals) = vals.filter(|v| v.iter().all(|x| x.is_finite())) else {
            continue;
        };
        let name = &labels
            .iter()
            .find(|(k, _)| k == "__name__")
            .map(|x| x.1.clone())
            .unwrap_or_default();
        let family = ["_bucket", "_count", "_sum", "_total"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        let counter = matches!(
            types.get(name.as_str()).map(String::as_str),
            Some("counter")
        ) || matches!(
            types.get(family).map(String::as_str),
            Some("counter" | "histogram" | "summary")
        ) && name != family
            && !labels.iter().any(|(k, _)| k == "quantile");
        tracks.push(vals);
        kinds.push((labels.clone(), counter));
    }
    if kinds.is_empty() {
        return Err(LoadgenError::Corpus(
            "no series present in every scrape".into(),
        ));
    }
    let mut specs = Vec::with_capacity(n);
    'hosts: for host in 0.. {
        for (track, (labels, counter)) in kinds.iter().enumerate() {
            if specs.len() >= n {
                break 'hosts;
            }
            let mut l = labels.clone();
            l.push(("instance".into(), format!("corpus-{host}:9100")));
            l.push(("job".into(), "node".into()));
            l.sort();
            specs.push(SeriesSpec {
                labels: l,
                kind: Kind::Replay {
                    track,
                    counter: *counter,
                },
            });
        }
    }
    Ok(SeriesSet {
        specs,
        tracks,
        seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# SCRAPE\n# TYPE node_cpu_seconds_total counter\nnode_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 10.5\n# TYPE node_load1 gauge\nnode_load1 0.25\nweird{path=\"a\\\"b\",x=\"\"} 1\n# SCRAPE\nnode_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 12.5\nnode_load1 0.5\nweird{path=\"a\\\"b\",x=\"\"} 1\nonly_once 3\n";

    #[test]
    fn corpus_series_replay_and_counters_keep_growing() {
        let s = series_from_corpus(TEXT, 7, 0).unwrap();
        // three series present in both scrapes, two full hosts plus one
        assert_eq!(s.len(), 7);
        let cpu = s
            .specs
            .iter()
            .position(|x| x.labels.contains(&("mode".into(), "idle".into())))
            .unwrap();
        let load = s
            .specs
            .iter()
            .position(|x| x.labels.contains(&("__name__".into(), "node_load1".into())))
            .unwrap();
        assert_eq!(s.value(cpu, 0), 10.5);
        assert_eq!(s.value(cpu, 1), 12.5);
        // second lap continues from the last value plus a step
        assert_eq!(s.value(cpu, 2), 14.5);
        assert_eq!(s.value(load, 2), 0.25);
        let weird = s
            .specs
            .iter()
            .find(|x| x.labels.contains(&("__name__".into(), "weird".into())))
            .unwrap();
        assert!(weird.labels.contains(&("path".into(), "a\"b".into())));
        assert!(!weird.labels.iter().any(|(k, _)| k == "x"), "{weird:?}");
        assert!(
            s.specs[6]
                .labels
                .contains(&("instance".into(), "corpus-2:9100".into()))
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "# SCRAPE\nx{a=\"b} 1\n",
            "# SCRAPE\nx{a=b} 1\n",
            "# SCRAPE\nx abc\n",
            "x 1\n",
            "",
        ] {
            assert!(series_from_corpus(bad, 10, 0).is_err(), "{bad:?}");
        }
    }
}
