//! promtool's rule unit tests (`promtool test rules`) and rule checking
//! (`promtool check rules`), evaluated the way promtool 2.42 does.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use pharos_config::Duration;
use pharos_model::{Labels, STALE_NAN, Sample};
use pharos_promql::{Engine, EngineOptions, MemStorage};
use serde::Deserialize;

use crate::file::{self, RuleFile};
use crate::group::{Group, NoopSender, mem::MemSink};
use crate::rule::{AlertState, EvalEnv, Rule};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<Duration>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Duration,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<PromqlTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    #[serde(default)]
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    #[serde(default)]
    eval_time: Duration,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromqlTest {
    #[serde(default)]
    expr: String,
    #[serde(default)]
    eval_time: Duration,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    value: f64,
}

/// The verdict for one test file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileResult {
    pub file: String,
    /// Empty when every test passed.
    pub errors: Vec<String>,
    /// Patterns in `rule_files` that matched nothing (promtool warns).
    pub warnings: Vec<String>,
}

impl FileResult {
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
    }

    /// What promtool prints for this file (stdout and stderr interleaved).
    pub fn render(&self) -> String {
        let mut s = format!("Unit Testing:  {}\n", self.file);
        for w in &self.warnings {
            let _ = writeln!(s, "  WARNING: no file match pattern {w}");
        }
        if self.passed() {
            s.push_str("  SUCCESS\n");
        } else {
            s.push_str("  FAILED:\n");
            for e in &self.errors {
                let _ = writeln!(s, "{e}\n");
            }
        }
        s.push('\n');
        s
    }
}

/// Runs every file like `promtool test rules`; the exit status is 0 when
/// all pass and 1 otherwise.
pub fn test_rules(files: &[PathBuf]) -> (Vec<FileResult>, i32) {
    let results: Vec<FileResult> = files.iter().map(|f| run_file(f)).collect();
    let code = if results.iter().all(FileResult::passed) {
        0
    } else {
        1
    };
    (results, code)
}

/// Runs one unit-test file.
pub fn run_file(path: &Path) -> FileResult {
    let name = path.display().to_string();
    let mut res = FileResult {
        file: name,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            res.errors.push(format!("open {}: {e}", path.display()));
            return res;
        }
    };
    let tf: TestFile = match serde_yaml::from_str(&text) {
        Ok(t) => t,
        Err(e) => {
            res.errors.push(file::go_yaml_error(&e, &|path| {
                let last = path.rsplit('.').next().unwrap_or_default();
                match last.split('[').next().unwrap_or_default() {
                    "input_series" => "main.series",
                    "exp_alerts" => "main.alert",
                    "alert_rule_test" => "main.alertTestCase",
                    "exp_samples" => "main.sample",
                    "promql_expr_test" => "main.promqlTestCase",
                    "tests" => "main.testGroup",
                    _ => "main.unitTestFile",
                }
            }));
            return res;
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut rule_files = Vec::new();
    for rf in &tf.rule_files {
        match file::expand_globs(std::slice::from_ref(rf), base) {
            Ok(m) if m.is_empty() => res.warnings.push(base.join(rf).display().to_string()),
            Ok(m) => rule_files.extend(m),
            Err(e) => {
                res.errors.push(e.to_string());
                return res;
            }
        }
    }
    let eval_interval = tf
        .evaluation_interval
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(60));
    let mut order: BTreeMap<String, usize> = BTreeMap::new();
    for (i, g) in tf.group_eval_order.iter().enumerate() {
        if order.insert(g.clone(), i).is_some() {
            res.errors
                .push(format!("group name repeated in evaluation order: {g}"));
            return res;
        }
    }
    for t in &tf.tests {
        res.errors
            .extend(run_test_group(t, ms(eval_interval), &order, &rule_files));
    }
    res
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_std().as_millis()).unwrap_or(i64::MAX)
}

fn run_test_group(
    tg: &TestGroup,
    eval_interval: i64,
    order: &BTreeMap<String, usize>,
    rule_files: &[PathBuf],
) -> Vec<String> {
    let interval = ms(tg.interval);
    // Input series, loaded lazily up to each evaluation time as promtool's
    // LazyLoader does.
    let mut input: Vec<(Labels, Vec<Sample>)> = Vec::new();
    // An interval of 0 (unset) stacks every value at time 0, as promtool's
    // `load 0s` does.
    for s in &tg.input_series {
        let labels = match parse_metric(&s.series) {
            Ok(l) => l,
            Err(e) => return vec![format!("error in input series {:?}: {e}", s.series)],
        };
        let vals = match expand_series_values(&s.values) {
            Ok(v) => v,
            Err(e) => return vec![format!("error in input series {:?}: {e}", s.series)],
        };
        let samples: Vec<Sample> = vals
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| Sample::new(i as i64 * interval, v)))
            .collect();
        input.push((labels, samples));
    }
    let storage = Arc::new(MemStorage::new());
    let env = EvalEnv {
        engine: Arc::new(Engine::new(EngineOptions {
            max_samples: 10_000,
            timeout: StdDuration::from_secs(100),
            no_step_subquery_interval: StdDuration::from_millis(eval_interval as u64),
            ..EngineOptions::default()
        })),
        queryable: storage.clone(),
        external_labels: Labels::from_pairs(tg.external_labels.clone()),
        external_url: tg.external_url.clone(),
    };
    let sink = MemSink(storage.clone());

    let mut files: Vec<RuleFile> = Vec::new();
    let mut load_errs = Vec::new();
    for f in rule_files {
        match file::load_file(f) {
            Ok(rf) => files.push(rf),
            Err(e) => load_errs.extend(e),
        }
        if !load_errs.is_empty() {
            return load_errs;
        }
    }
    let mut groups: Vec<Group> = Vec::new();
    for f in &files {
        for g in &f.groups {
            let mut grp = Group::from_spec(g, &f.path, interval.max(1), false);
            // promtool marks alerting rules restored so ALERTS is written.
            for r in &mut grp.rules {
                if let Rule::Alerting(ar) = r {
                    ar.restored = true;
                }
            }
            groups.retain(|x| x.key() != grp.key());
            groups.push(grp);
        }
    }
    groups.sort_by_key(|g| order.get(&g.name).copied().unwrap_or(0));

    let maxt = tg
        .alert_rule_test
        .iter()
        .map(|a| ms(a.eval_time))
        .chain(tg.promql_expr_test.iter().map(|p| ms(p.eval_time)))
        .max()
        .unwrap_or(0);

    for a in &tg.alert_rule_test {
        if a.alertname.is_empty() {
            let in_group = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                a.eval_time
            )];
        }
    }
    let mut alert_times: Vec<i64> = tg.alert_rule_test.iter().map(|a| ms(a.eval_time)).collect();
    alert_times.sort_unstable();
    alert_times.dedup();
    let mut curr = 0usize;
    let mut cursors = vec![0usize; input.len()];
    let test_name = if tg.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", tg.name)
    };
    let opts = crate::group::GroupOptions::default();
    let mut errs = Vec::new();
    let load_till = |t: i64, cursors: &mut Vec<usize>| {
        for (i, (l, s)) in input.iter().enumerate() {
            let end = s.partition_point(|x| x.t <= t);
            if cursors[i] < end {
                storage.add(l.clone(), s[cursors[i]..end].iter().copied());
                cursors[i] = end;
            }
        }
    };
    let mut ts = 0i64;
    while ts <= maxt {
        load_till(ts, &mut cursors);
        let mut eval_errs = Vec::new();
        for g in &mut groups {
            g.eval(ts, &env, &sink, &NoopSender, &opts);
            for r in &g.rules {
                if let Some(e) = &r.status().last_error {
                    eval_errs.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.name(),
                        go_duration(ts)
                    ));
                }
            }
        }
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return errs;
        }
        while curr < alert_times.len()
            && ts <= alert_times[curr]
            && alert_times[curr] < ts + eval_interval
        {
            let t = alert_times[curr];
            let tests: Vec<&AlertTest> = tg
                .alert_rule_test
                .iter()
                .filter(|a| ms(a.eval_time) == t)
                .collect();
            for tc in tests {
                let mut got: Vec<LabelsAndAnnotations> = Vec::new();
                for g in &groups {
                    for r in &g.rules {
                        let Rule::Alerting(ar) = r else { continue };
                        if ar.name != tc.alertname {
                            continue;
                        }
                        for a in ar.active.values() {
                            if a.state == AlertState::Firing {
                                got.push(LabelsAndAnnotations {
                                    labels: pairs(&a.labels),
                                    annotations: a
                                        .annotations
                                        .iter()
                                        .map(|(k, v)| (k.clone(), v.clone()))
                                        .collect(),
                                });
                            }
                        }
                    }
                }
                let mut exp: Vec<LabelsAndAnnotations> = tc
                    .exp_alerts
                    .iter()
                    .map(|a| {
                        let mut l = a.exp_labels.clone();
                        l.insert("alertname".into(), tc.alertname.clone());
                        LabelsAndAnnotations {
                            labels: l.into_iter().collect(),
                            annotations: a.exp_annotations.clone().into_iter().collect(),
                        }
                    })
                    .collect();
                got.sort();
                exp.sort();
                if exp != got {
                    errs.push(format!(
                        "{test_name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        tc.alertname,
                        tc.eval_time,
                        indent_lines(&la_string(&exp), "            "),
                        indent_lines(&la_string(&got), "            ")
                    ));
                }
            }
            curr += 1;
        }
        ts += eval_interval;
    }

    'outer: for tc in &tg.promql_expr_test {
        let t = ms(tc.eval_time);
        let got = match env.query(&tc.expr, t) {
            Ok(v) => v,
            Err(e) => {
                errs.push(format!(
                    "    expr: {:?}, time: {}, err: {e}",
                    tc.expr, tc.eval_time
                ));
                continue;
            }
        };
        let mut got: Vec<(Labels, f64)> = got;
        let mut exp: Vec<(Labels, f64)> = Vec::new();
        for s in &tc.exp_samples {
            match parse_metric(&s.labels) {
                Ok(l) => exp.push((l, s.value)),
                Err(e) => {
                    errs.push(format!(
                        "    expr: {:?}, time: {}, err: labels {:?}: {e}",
                        tc.expr, tc.eval_time, s.labels
                    ));
                    continue 'outer;
                }
            }
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same =
            exp.len() == got.len() && exp.iter().zip(&got).all(|(a, b)| a.0 == b.0 && a.1 == b.1);
        if !same {
            errs.push(format!(
                "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
                tc.expr,
                tc.eval_time,
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    errs
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LabelsAndAnnotations {
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
}

fn pairs(l: &Labels) -> Vec<(String, String)> {
    l.iter()
        .map(|x| (x.name.clone(), x.value.clone()))
        .collect()
}

/// Go's `strconv.Quote` for the characters label values usually hold.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn pairs_string(p: &[(String, String)]) -> String {
    let inner: Vec<String> = p
        .iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

fn la_string(la: &[LabelsAndAnnotations]) -> String {
    if la.is_empty() {
        return "[]".into();
    }
    let one = |x: &LabelsAndAnnotations| {
        format!(
            "Labels:{}\nAnnotations:{}",
            pairs_string(&x.labels),
            pairs_string(&x.annotations)
        )
    };
    let mut s = format!("[\n0:{}", indent_lines(&format!("\n{}", one(&la[0])), "  "));
    for (i, l) in la.iter().enumerate().skip(1) {
        let _ = write!(s, ",\n{i}:{}", indent_lines(&format!("\n{}", one(l)), "  "));
    }
    s.push_str("\n]");
    s
}

fn indent_lines(lines: &str, indent: &str) -> String {
    let parts: Vec<&str> = lines.split('\n').collect();
    let mut out = String::new();
    for (i, l) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str(indent);
        }
        out.push_str(l);
        if i != parts.len() - 1 {
            out.push('\n');
        }
    }
    out
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`.
fn go_float_e(v: f64) -> String {
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
    let s = format!("{v:E}");
    let (mant, exp) = s.split_once('E').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}E{sign}{:02}", exp.abs())
}

fn samples_string(s: &[(Labels, f64)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v)| format!("{} {}", pairs_string(&pairs(l)), go_float_e(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Go's `time.Duration.String()` for whole milliseconds.
pub fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let ms = ms.unsigned_abs();
    let h = ms / 3_600_000;
    let m = (ms / 60_000) % 60;
    let s = (ms / 1000) % 60;
    let frac = ms % 1000;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if ms < 1000 {
        let _ = write!(out, "{ms}ms");
        return out;
    }
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    if frac == 0 {
        let _ = write!(out, "{s}s");
    } else {
        let f = format!("{frac:03}");
        let _ = write!(out, "{s}.{}s", f.trim_end_matches('0'));
    }
    out
}

/// Parses `name{a="b", ...}` (either part optional), the series notation
/// of promtool files.
pub fn parse_metric(s: &str) -> Result<Labels, String> {
    let s = s.trim();
    let name_end = s.find(['{', ' ', '\t']).unwrap_or(s.len());
    let name = &s[..name_end];
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        if !file::valid_metric_name(name) {
            return Err(format!("invalid metric name {name:?}"));
        }
        pairs.push(("__name__".into(), name.into()));
    }
    let rest = s[name_end..].trim();
    if rest.is_empty() {
        if name.is_empty() {
            return Err("unexpected end of input".into());
        }
        return Ok(Labels::from_pairs(pairs));
    }
    let body = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("unexpected characters in {s:?}"))?;
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                key.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if key.is_empty() {
            return Err(format!("expected label name in {s:?}"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("expected '=' after label {key:?}"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let quote = chars
            .next()
            .filter(|c| matches!(c, '"' | '\'' | '`'))
            .ok_or_else(|| format!("expected quoted value for label {key:?}"))?;
        let mut val = String::new();
        loop {
            match chars.next() {
                Some('\\') if quote != '`' => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some('t') => val.push('\t'),
                    Some(c) => val.push(c),
                    None => return Err("unterminated quoted string".into()),
                },
                Some(c) if c == quote => break,
                Some(c) => val.push(c),
                None => return Err("unterminated quoted string".into()),
            }
        }
        pairs.push((key, val));
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            Some(',') | None => {}
            Some(c) => return Err(format!("unexpected {c:?} in label matching")),
        }
    }
    Ok(Labels::from_pairs(pairs))
}

fn parse_num(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = match body.to_ascii_lowercase().as_str() {
        "inf" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            // No hex: in series notation `0x12` is zero repeated.
            if body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
                body.parse().ok()?
            } else {
                return None;
            }
        }
    };
    Some(if neg { -v } else { v })
}

/// Expands promtool's value notation: `1 2 _ stale`, `a+bxN` / `a-bxN`
/// (N+1 values), `axN` (a repeated N+1 times) and `_xN` (N gaps).
pub fn expand_series_values(desc: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for tok in desc.split_whitespace() {
        if tok == "_" {
            out.push(None);
            continue;
        }
        if tok == "stale" {
            out.push(Some(f64::from_bits(STALE_NAN)));
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n
                .parse()
                .map_err(|_| format!("invalid repetition in {tok:?}"))?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        if let Some(v) = parse_num(tok) {
            out.push(Some(v));
            continue;
        }
        let (head, times) = tok
            .rsplit_once('x')
            .ok_or_else(|| format!("invalid value {tok:?}"))?;
        let times: usize = times
            .parse()
            .map_err(|_| format!("invalid repetition in {tok:?}"))?;
        let b = head.as_bytes();
        // The sign separating start and step is the last one that does not
        // follow an exponent marker and is not the leading sign.
        let split = (1..b.len())
            .rev()
            .find(|&i| matches!(b[i], b'+' | b'-') && !matches!(b[i - 1], b'e' | b'E'));
        let (start, step) = match split {
            Some(i) => {
                let a = parse_num(&head[..i]).ok_or_else(|| format!("invalid value {tok:?}"))?;
                let d =
                    parse_num(&head[i + 1..]).ok_or_else(|| format!("invalid value {tok:?}"))?;
                (a, if b[i] == b'-' { -d } else { d })
            }
            None => (
                parse_num(head).ok_or_else(|| format!("invalid value {tok:?}"))?,
                0.0,
            ),
        };
        for k in 0..=times {
            out.push(Some(start + step * k as f64));
        }
    }
    Ok(out)
}

/// Summary of `promtool check rules` for one file.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub file: String,
    pub rules: usize,
    pub errors: Vec<String>,
}

impl CheckResult {
    pub fn render(&self) -> String {
        if self.errors.is_empty() {
            format!(
                "Checking {}\n  SUCCESS: {} rules found\n\n",
                self.file, self.rules
            )
        } else {
            let mut s = format!("Checking {}\n  FAILED:\n", self.file);
            for e in &self.errors {
                let _ = writeln!(s, "{e}");
            }
            s.push('\n');
            s
        }
    }
}

/// Checks rule files like `promtool check rules`: all files are checked;
/// `Err` when any failed.
pub fn check_rules(files: &[PathBuf]) -> Result<Vec<CheckResult>, Vec<CheckResult>> {
    let mut out = Vec::new();
    let mut failed = false;
    for f in files {
        let r = match file::load_file(f) {
            Ok(rf) => CheckResult {
                file: f.display().to_string(),
                rules: rf.groups.iter().map(|g| g.rules.len()).sum(),
                errors: Vec::new(),
            },
            Err(errors) => CheckResult {
                file: f.display().to_string(),
                rules: 0,
                errors,
            },
        };
        failed |= !r.errors.is_empty();
        out.push(r);
    }
    if failed { Err(out) } else { Ok(out) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_values_like_promtool() {
        let v = expand_series_values("1+2x3 _ stale -1-1x1 _x2 0x2 1e3").unwrap();
        let f = |x: Option<f64>| x.map(|v| if v.to_bits() == STALE_NAN { -999.0 } else { v });
        let got: Vec<Option<f64>> = v.into_iter().map(f).collect();
        assert_eq!(
            got,
            vec![
                Some(1.0),
                Some(3.0),
                Some(5.0),
                Some(7.0),
                None,
                Some(-999.0),
                Some(-1.0),
                Some(-2.0),
                None,
                None,
                Some(0.0),
                Some(0.0),
                Some(0.0),
                Some(1000.0)
            ]
        );
        assert!(expand_series_values("1+x").is_err());
    }

    #[test]
    fn metric_notation() {
        assert_eq!(
            parse_metric(r#"up{job="a", instance='b'}"#)
                .unwrap()
                .to_string(),
            r#"{__name__="up", instance="b", job="a"}"#
        );
        assert_eq!(parse_metric("{x=\"1\"}").unwrap().to_string(), r#"{x="1"}"#);
        assert!(parse_metric("up{job=a}").is_err());
    }

    #[test]
    fn go_formats() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(300_000), "5m0s");
        assert_eq!(go_duration(3_723_500), "1h2m3.5s");
        assert_eq!(go_float_e(1.0), "1E+00");
        assert_eq!(go_float_e(123.456), "1.23456E+02");
        assert_eq!(go_float_e(0.05), "5E-02");
    }
}
