//! The query corpus, the list of accepted differences, and query mutation
//! for the no-panic robustness test.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::rng::Rng;

/// `crates/promql/testdata/differential`, next to the engine's other
/// conformance data.
pub fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../promql/testdata/differential")
}

/// Queries one per line; blank lines and `#` comment lines are skipped.
pub fn parse_queries(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// `<query> ## <reason>` per line; every entry must give a reason.
pub fn parse_known(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (q, reason) = line
            .rsplit_once(" ## ")
            .ok_or_else(|| format!("line {}: expected `<query> ## <reason>`", i + 1))?;
        if reason.trim().is_empty() {
            return Err(format!("line {}: empty reason", i + 1));
        }
        out.insert(q.trim().to_string(), reason.trim().to_string());
    }
    Ok(out)
}

/// Whether Prometheus guarantees the order of this query's instant result.
pub fn ordered(query: &str) -> bool {
    let q = query.trim_start();
    q.starts_with("sort(") || q.starts_with("sort_desc(")
}

const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    " ",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "@",
    "start()",
    "end()",
    "bool",
    "and",
    "or",
    "unless",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "==",
    "!=",
    ">",
    "<",
    ">=",
    "<=",
    "=~",
    "!~",
    "\"",
    "'",
    "`",
    "5m",
    "1s",
    "0s",
    "1y",
    "999999999999d",
    "[5m:1m]",
    "[1h:]",
    ":",
    "NaN",
    "Inf",
    "-Inf",
    "0x1f",
    "1e308",
    "-1",
    "0",
    "1e-320",
    "sum",
    "rate",
    "topk",
    "quantile",
    "count_values",
    "label_replace",
    "histogram_quantile",
    "absent",
    "scalar",
    "vector",
    "time()",
    "up",
    "__name__",
    "\\",
    "\u{0}",
    "é",
    "le",
    "#",
];

/// A random edit of a corpus query (or a splice of two), biased toward
/// syntax the engine must handle or reject: tokens from PromQL's grammar,
/// extreme numbers and durations, truncation and duplication.
pub fn mutate(rng: &mut Rng, corpus: &[String]) -> String {
    let mut q: Vec<char> = corpus[rng.below(corpus.len())].chars().collect();
    for _ in 0..1 + rng.below(3) {
        let len = q.len();
        let at = if len == 0 { 0 } else { rng.below(len + 1) };
        match rng.below(6) {
            0 if len > 0 => {
                let n = 1 + rng.below(len.min(8));
                let end = (at + n).min(len);
                q.drain(at.min(end)..end);
            }
            1 | 2 => {
                let tok = TOKENS[rng.below(TOKENS.len())];
                q.splice(at..at, tok.chars());
            }
            3 if len > 0 => q.truncate(at),
            4 if len > 0 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(12)).min(len);
                let piece: Vec<char> = q[from..to].to_vec();
                q.splice(at..at, piece);
            }
            _ => {
                let other: Vec<char> = corpus[rng.below(corpus.len())].chars().collect();
                let cut = rng.below(other.len() + 1);
                q.truncate(at);
                q.extend_from_slice(&other[cut..]);
            }
        }
    }
    q.into_iter().collect()
}

const METRICS: &[&str] = &[
    "node_load1",
    "up",
    "up{job=\"node\"}",
    "node_cpu_seconds_total{mode=\"idle\"}",
    "node_network_receive_bytes_total",
    "node_memory_MemAvailable_bytes",
    "http_requests_total",
    "http_requests_total{status=~\"5..\"}",
    "http_request_duration_seconds_bucket",
    "app_edge_value",
    "app_temperature_celsius",
    "app_queue_length",
    "does_not_exist",
];
const LABELS: &[&str] = &[
    "instance", "job", "handler", "le", "mode", "cpu", "kind", "status",
];
const RANGE_FUNCS: &[&str] = &[
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "changes",
    "resets",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "stddev_over_time",
    "last_over_time",
    "present_over_time",
    "absent_over_time",
];
const VEC_FUNCS: &[&str] = &[
    "abs",
    "ceil",
    "floor",
    "exp",
    "ln",
    "sqrt",
    "sgn",
    "timestamp",
    "absent",
    "sort",
    "sort_desc",
    "hour",
    "minute",
    "day_of_week",
];
const AGGS: &[&str] = &[
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "group",
];
const BINOPS: &[&str] = &[
    "+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless",
];
const DURATIONS: &[&str] = &["15s", "1m", "2m", "5m", "7m", "10m", "1h"];
const NUMBERS: &[&str] = &["0", "1", "2", "0.5", "-1", "100", "NaN", "Inf", "1e-9"];

fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.below(xs.len())]
}

fn grouping(rng: &mut Rng) -> String {
    let n = rng.below(3);
    let labels: Vec<&str> = (0..n).map(|_| pick(rng, LABELS)).collect();
    let mut uniq = labels.clone();
    uniq.dedup();
    uniq.join(", ")
}

fn selector(rng: &mut Rng) -> String {
    let mut s = pick(rng, METRICS).to_string();
    match rng.below(8) {
        0 => s.push_str(&format!(" offset {}", pick(rng, DURATIONS))),
        1 => s.push_str(&format!(" @ {}", 1_700_000_000 + 60 * rng.below(300))),
        _ => {}
    }
    s
}

/// A random, mostly well-typed PromQL expression over the differential data
/// set's metrics: grammar-driven where [`mutate`] is text-driven, so it
/// reaches combinations the corpus does not spell out.
pub fn random_query(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 {
        return match rng.below(6) {
            0 => pick(rng, NUMBERS).to_string(),
            _ => selector(rng),
        };
    }
    let d = depth - 1;
    match rng.below(9) {
        0 | 1 => {
            let f = pick(rng, RANGE_FUNCS);
            if rng.chance(0.7) {
                format!("{f}({}[{}])", selector(rng), pick(rng, DURATIONS))
            } else {
                format!(
                    "{f}(({})[{}:{}])",
                    random_query(rng, d),
                    pick(rng, DURATIONS),
                    pick(rng, &["", "15s", "1m", "45s"])
                )
            }
        }
        2 => format!("{}({})", pick(rng, VEC_FUNCS), random_query(rng, d)),
        3 | 4 => {
            let agg = pick(rng, AGGS);
            let g = grouping(rng);
            let by = match rng.below(3) {
                0 => String::new(),
                1 => format!(" by ({g})"),
                _ => format!(" without ({g})"),
            };
            format!("{agg}{by} ({})", random_query(rng, d))
        }
        5 => {
            let (agg, param) = match rng.below(4) {
                0 => ("topk", pick(rng, &["1", "2", "5"]).to_string()),
                1 => ("bottomk", pick(rng, &["1", "3"]).to_string()),
                2 => ("quantile", pick(rng, &["0", "0.5", "0.9", "1"]).to_string()),
                _ => ("count_values", "\"v\"".to_string()),
            };
            format!(
                "{agg} by ({}) ({param}, {})",
                grouping(rng),
                random_query(rng, d)
            )
        }
        6 | 7 => {
            let op = pick(rng, BINOPS);
            let lhs = random_query(rng, d);
            let rhs = if rng.chance(0.5) {
                pick(rng, NUMBERS).to_string()
            } else {
                random_query(rng, d)
            };
            let cmp = matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=");
            let b = if cmp && rng.chance(0.4) { " bool" } else { "" };
            let m = match rng.below(4) {
                0 => format!(" on ({})", grouping(rng)),
                1 => format!(" ignoring ({})", grouping(rng)),
                _ => String::new(),
            };
            format!("({lhs}) {op}{b}{m} ({rhs})")
        }
        _ => match rng.below(4) {
            0 => format!(
                "clamp_min({}, {})",
                random_query(rng, d),
                pick(rng, NUMBERS)
            ),
            1 => format!(
                "round({}, {})",
                random_query(rng, d),
                pick(rng, &["0.1", "5", "1"])
            ),
            2 => format!(
                "label_replace({}, \"x\", \"$1\", \"instance\", \"(.*):.*\")",
                random_query(rng, d)
            ),
            _ => format!("scalar({})", random_query(rng, d)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_corpus_and_known_lists() {
        let q = parse_queries("# c\n\n up \nrate(x[5m])\n");
        assert_eq!(q, vec!["up", "rate(x[5m])"]);
        let k = parse_known("# c\nsum(x) ## order of float addition\n").unwrap();
        assert_eq!(k["sum(x)"], "order of float addition");
        assert!(parse_known("sum(x)\n").is_err());
        assert!(parse_known("sum(x) ##  \n").is_err());
        assert!(ordered(" sort_desc(x)"));
        assert!(!ordered("topk(1, x)"));
    }

    #[test]
    fn mutation_is_deterministic_and_changes_queries() {
        let corpus = vec!["sum by (job) (rate(x[5m]))".to_string(), "up".to_string()];
        let a: Vec<String> = {
            let mut r = Rng::new(1);
            (0..50).map(|_| mutate(&mut r, &corpus)).collect()
        };
        let b: Vec<String> = {
            let mut r = Rng::new(1);
            (0..50).map(|_| mutate(&mut r, &corpus)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().any(|q| !corpus.contains(q)));
    }

    #[test]
    fn random_queries_are_deterministic_and_mostly_parse() {
        let gen_all = |seed| {
            let mut r = Rng::new(seed);
            (0..200)
                .map(|_| random_query(&mut r, 3))
                .collect::<Vec<_>>()
        };
        let a = gen_all(5);
        assert_eq!(a, gen_all(5));
        let parsed = a.iter().filter(|q| pharos_promql::parse(q).is_ok()).count();
        assert!(parsed > 100, "only {parsed} of 200 generated queries parse");
    }
}
