//! `/federate`: the latest sample of every matching series in the text
//! exposition format, as Prometheus 2.42's `web/federate.go` writes it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use pharos_model::{Labels, METRIC_NAME, Matcher};
use pharos_promql::Queryable;

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` as the text format writes
/// sample values.
pub fn format_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e = format!("{v:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    // shortest %g switches to exponent form outside [1e-4, 1e6)
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.unsigned_abs())
    } else {
        format!("{v}")
    }
}

fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// The latest non-stale sample at or before `maxt` (and after `mint`) of
/// every series matching any set, in exposition text.
pub fn render(
    q: &dyn Queryable,
    sets: &[Vec<Matcher>],
    mint: i64,
    maxt: i64,
    external: &BTreeMap<String, String>,
) -> Result<String, pharos_promql::QueryError> {
    let mut latest: BTreeMap<(String, Labels), (i64, f64)> = BTreeMap::new();
    for set in sets {
        for s in q.select(set, mint, maxt)? {
            let Some(last) = s.samples.iter().rev().find(|p| p.t <= maxt) else {
                continue;
            };
            // the exposition formats cannot carry staleness markers
            if last.is_stale() {
                continue;
            }
            let Some(name) = s.labels.get(METRIC_NAME).map(str::to_owned) else {
                tracing::warn!(series = %format!("{:?}", s.labels), "ignoring nameless metric during federation");
                continue;
            };
            latest.insert((name, s.labels), (last.t, last.v));
        }
    }
    let mut ext = external.clone();
    ext.entry("instance".into()).or_default();
    let mut out = String::new();
    let mut last_name: Option<&str> = None;
    for ((name, labels), (t, v)) in &latest {
        if last_name != Some(name.as_str()) {
            let _ = writeln!(out, "# TYPE {name} untyped");
            last_name = Some(name);
        }
        out.push_str(name);
        let mut pairs: Vec<(&str, &str)> = labels
            .iter()
            .filter(|l| l.name != METRIC_NAME && !l.value.is_empty())
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        for (n, v) in &ext {
            if labels.get(n).is_none() {
                pairs.push((n, v));
            }
        }
        if !pairs.is_empty() {
            out.push('{');
            for (i, (n, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(n);
                out.push_str("=\"");
                escape_label_value(&mut out, v);
                out.push('"');
            }
            out.push('}');
        }
        let _ = writeln!(out, " {} {t}", format_g(*v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::Sample;
    use pharos_promql::MemStorage;

    #[test]
    fn g_format_matches_go() {
        assert_eq!(format_g(1.0), "1");
        assert_eq!(format_g(123456.0), "123456");
        assert_eq!(format_g(1234567.0), "1.234567e+06");
        assert_eq!(format_g(0.0001), "0.0001");
        assert_eq!(format_g(0.00001), "1e-05");
        assert_eq!(format_g(-2.5e300), "-2.5e+300");
        assert_eq!(format_g(f64::NAN), "NaN");
        assert_eq!(format_g(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn renders_latest_sorted_with_external_labels() {
        let st = MemStorage::new();
        st.add(
            Labels::from_pairs([("__name__", "up"), ("job", "b"), ("instance", "i")]),
            [Sample::new(10, 0.0), Sample::new(20, 1.0)],
        );
        st.add(
            Labels::from_pairs([("__name__", "up"), ("job", "a\"x")]),
            [Sample::new(15, 2.0)],
        );
        st.add(
            Labels::from_pairs([("__name__", "gone"), ("job", "a")]),
            [Sample::new(15, 2.0), Sample::stale(18)],
        );
        st.add(
            Labels::from_pairs([("__name__", "aaa")]),
            [Sample::new(19, 1e7)],
        );
        let ext = BTreeMap::from([("zone".to_string(), "eu".to_string())]);
        let sets = vec![vec![
            Matcher::new(pharos_model::MatchOp::Regex, "__name__", ".+").unwrap(),
        ]];
        let got = render(&st, &sets, 0, 100, &ext).unwrap();
        assert_eq!(
            got,
            "# TYPE aaa untyped\n\
             aaa{instance=\"\",zone=\"eu\"} 1e+07 19\n\
             # TYPE up untyped\n\
             up{instance=\"i\",job=\"b\",zone=\"eu\"} 1 20\n\
             up{job=\"a\\\"x\",instance=\"\",zone=\"eu\"} 2 15\n"
        );
        assert_eq!(render(&st, &[], 0, 100, &ext).unwrap(), "");
    }
}
