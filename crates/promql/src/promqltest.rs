//! Runner for the public PromQL test script format: `load` blocks of
//! series, `clear`, and `eval instant`/`eval range` commands followed by the
//! expected result lines (`eval_fail`, `eval_ordered` and the newer
//! `expect fail` / `expect ordered` lines are understood too).

use pharos_model::{Labels, STALE_NAN, Sample};

use crate::engine::{Engine, EngineOptions};
use crate::storage::MemStorage;
use crate::value::Value;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ScriptReport {
    pub passed: usize,
    pub failed: usize,
    pub failures: Vec<String>,
}

/// Runs a script with default engine options.
pub fn run_script(text: &str) -> ScriptReport {
    run_script_with(&Engine::new(EngineOptions::default()), text)
}

/// Prometheus' script timestamps are offsets from the Unix epoch.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

fn parse_number(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// One value slot of a series description; `None` is an omitted sample.
fn expand_values(desc: &str) -> Result<Vec<Option<f64>>, String> {
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
            let n: usize = n.parse().map_err(|_| format!("bad repetition {tok:?}"))?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        if let Some(v) = parse_number(tok) {
            out.push(Some(v));
            continue;
        }
        // a+bxN, a-bxN, axN
        let (head, times) = tok
            .rsplit_once('x')
            .ok_or_else(|| format!("bad value {tok:?}"))?;
        let times: usize = times.parse().map_err(|_| format!("bad value {tok:?}"))?;
        let bytes = head.as_bytes();
        let mut split = None;
        for i in 1..bytes.len() {
            if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
                split = Some(i);
            }
        }
        let (start, inc) = match split {
            Some(i) => {
                let a = parse_number(&head[..i]).ok_or_else(|| format!("bad value {tok:?}"))?;
                let b = parse_number(&head[i + 1..]).ok_or_else(|| format!("bad value {tok:?}"))?;
                (a, if bytes[i] == b'-' { -b } else { b })
            }
            None => (
                parse_number(head).ok_or_else(|| format!("bad value {tok:?}"))?,
                0.0,
            ),
        };
        let mut v = start;
        for _ in 0..=times {
            out.push(Some(v));
            v += inc;
        }
    }
    Ok(out)
}

/// Splits `name{a="b"} rest` into labels and the rest of the line.
fn parse_metric(line: &str) -> Result<(Labels, &str), String> {
    let line = line.trim();
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push(("__name__".into(), name.into()));
    }
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let mut end = None;
        loop {
            while chars
                .peek()
                .is_some_and(|(_, c)| c.is_whitespace() || *c == ',')
            {
                chars.next();
            }
            match chars.peek() {
                Some((i, '}')) => {
                    end = Some(*i + 1);
                    break;
                }
                None => break,
                _ => {}
            }
            let mut key = String::new();
            while let Some((_, c)) = chars.peek() {
                if *c == '=' || c.is_whitespace() {
                    break;
                }
                key.push(*c);
                chars.next();
            }
            while chars
                .peek()
                .is_some_and(|(_, c)| c.is_whitespace() || *c == '=')
            {
                chars.next();
            }
            if chars.next().map(|x| x.1) != Some('"') {
                return Err(format!("bad label value in {line:?}"));
            }
            let mut val = String::new();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => val.push('\n'),
                        Some((_, c)) => val.push(c),
                        None => return Err(format!("unterminated string in {line:?}")),
                    },
                    Some((_, '"')) => break,
                    Some((_, c)) => val.push(c),
                    None => return Err(format!("unterminated string in {line:?}")),
                }
            }
            pairs.push((key, val));
        }
        let end = end.ok_or_else(|| format!("missing '}}' in {line:?}"))?;
        rest = &r[end..];
    }
    Ok((Labels::from_pairs(pairs), rest.trim()))
}

fn almost_equal(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    const EPS: f64 = 1e-6;
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < f64::MIN_POSITIVE {
        return diff < EPS * f64::MIN_POSITIVE;
    }
    diff / (a.abs() + b.abs()) < EPS
}

enum Mode {
    Instant(i64),
    Range(i64, i64, i64),
}

struct EvalCmd {
    line: usize,
    mode: Mode,
    expr: String,
    fail: bool,
    ordered: bool,
    expected: Vec<String>,
}

fn parse_eval(line: usize, text: &str) -> Result<EvalCmd, String> {
    let (cmd, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let fail = cmd == "eval_fail";
    let ordered = cmd == "eval_ordered";
    let rest = rest.trim();
    if let Some(r) = rest.strip_prefix("instant at ") {
        let (t, expr) = r
            .trim()
            .split_once(char::is_whitespace)
            .ok_or("missing expression")?;
        let t = parse_duration_ms(t).ok_or_else(|| format!("bad time {t:?}"))?;
        return Ok(EvalCmd {
            line,
            mode: Mode::Instant(t),
            expr: expr.trim().to_owned(),
            fail,
            ordered,
            expected: Vec::new(),
        });
    }
    if let Some(r) = rest.strip_prefix("range from ") {
        let w: Vec<&str> = r.trim().splitn(6, char::is_whitespace).collect();
        if w.len() < 6 || w[1] != "to" || w[3] != "step" {
            return Err("expected 'range from <t> to <t> step <d> <expr>'".into());
        }
        let p = |s: &str| parse_duration_ms(s).ok_or_else(|| format!("bad duration {s:?}"));
        return Ok(EvalCmd {
            line,
            mode: Mode::Range(p(w[0])?, p(w[2])?, p(w[4])?),
            expr: w[5].trim().to_owned(),
            fail,
            ordered,
            expected: Vec::new(),
        });
    }
    Err(format!("cannot parse eval command {text:?}"))
}

/// Runs a script with the given engine.
pub fn run_script_with(engine: &Engine, text: &str) -> ScriptReport {
    let mut report = ScriptReport::default();
    let storage = MemStorage::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let fail = |report: &mut ScriptReport, msg: String| {
        report.failed += 1;
        report.failures.push(msg);
    };
    while i < lines.len() {
        let raw = lines[i].trim();
        let lineno = i + 1;
        i += 1;
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        if raw == "clear" {
            storage.clear();
            continue;
        }
        if let Some(d) = raw.strip_prefix("load ") {
            let Some(interval) = parse_duration_ms(d.trim()) else {
                fail(
                    &mut report,
                    format!("line {lineno}: bad load interval {d:?}"),
                );
                continue;
            };
            while i < lines.len() && !lines[i].trim().is_empty() {
                let l = lines[i].trim();
                i += 1;
                if l.starts_with('#') {
                    continue;
                }
                let parsed = parse_metric(l).and_then(|(lb, rest)| Ok((lb, expand_values(rest)?)));
                match parsed {
                    Ok((lb, vals)) => storage.add(
                        lb,
                        vals.into_iter()
                            .enumerate()
                            .filter_map(|(k, v)| v.map(|v| Sample::new(k as i64 * interval, v))),
                    ),
                    Err(e) => fail(&mut report, format!("line {}: {e}", i)),
                }
            }
            continue;
        }
        if raw.starts_with("eval") {
            let mut cmd = match parse_eval(lineno, raw) {
                Ok(c) => c,
                Err(e) => {
                    fail(&mut report, format!("line {lineno}: {e}"));
                    continue;
                }
            };
            while i < lines.len() && !lines[i].trim().is_empty() {
                let l = lines[i].trim();
                i += 1;
                if l.starts_with('#') {
                    continue;
                }
                if let Some(e) = l.strip_prefix("expect ") {
                    match e.split_whitespace().next() {
                        Some("fail") => cmd.fail = true,
                        Some("ordered") => cmd.ordered = true,
                        _ => {}
                    }
                    continue;
                }
                cmd.expected.push(l.to_owned());
            }
            // a command written right below a failing eval (no blank line)
            // would be taken as its result line and silently never run
            if cmd.fail && !cmd.expected.is_empty() {
                fail(
                    &mut report,
                    format!(
                        "line {lineno}: a failing eval takes no result lines, got {:?}",
                        cmd.expected[0]
                    ),
                );
                continue;
            }
            match check_eval(engine, &storage, &cmd) {
                Ok(()) => report.passed += 1,
                Err(e) => fail(&mut report, format!("line {}: {}: {e}", cmd.line, cmd.expr)),
            }
            continue;
        }
        fail(
            &mut report,
            format!("line {lineno}: unknown command {raw:?}"),
        );
    }
    report
}

fn check_eval(engine: &Engine, storage: &MemStorage, cmd: &EvalCmd) -> Result<(), String> {
    let res = match cmd.mode {
        Mode::Instant(t) => engine.instant(storage, &cmd.expr, t),
        Mode::Range(s, e, st) => engine.range(storage, &cmd.expr, s, e, st),
    };
    let val = match (res, cmd.fail) {
        (Err(_), true) => return Ok(()),
        (Ok(v), true) => return Err(format!("expected an error, got {v:?}")),
        (Err(e), false) => return Err(format!("unexpected error: {e}")),
        (Ok(v), false) => v,
    };
    compare(cmd, &val)?;
    // like upstream, an instant eval must give the same answer as the
    // middle step of a range query around it
    if let (Mode::Instant(t), Value::Vector(_) | Value::Scalar(..)) = (&cmd.mode, &val) {
        let t = *t;
        let r = engine
            .range(storage, &cmd.expr, t - 60_000, t + 60_000, 60_000)
            .map_err(|e| format!("range mode: unexpected error: {e}"))?;
        let Value::Matrix(m) = r else {
            return Err("range mode: expected a matrix".into());
        };
        let at_t: Vec<(Labels, i64, f64)> = m
            .into_iter()
            .filter_map(|(l, pts)| pts.iter().find(|p| p.t == t).map(|p| (l, t, p.v)))
            .collect();
        let as_val = match val {
            Value::Scalar(..) => Value::Scalar(t, at_t.first().map_or(f64::NAN, |x| x.2)),
            _ => Value::Vector(at_t),
        };
        let unordered = EvalCmd {
            line: cmd.line,
            mode: Mode::Instant(t),
            expr: String::new(),
            fail: false,
            ordered: false,
            expected: cmd.expected.clone(),
        };
        compare(&unordered, &as_val).map_err(|e| format!("range mode: {e}"))?;
    }
    Ok(())
}

fn compare(cmd: &EvalCmd, val: &Value) -> Result<(), String> {
    match val {
        Value::Scalar(_, v) => {
            let v = *v;
            let [exp] = cmd.expected.as_slice() else {
                return Err(format!(
                    "got scalar {v}, expected {} lines",
                    cmd.expected.len()
                ));
            };
            let want = parse_number(exp.trim()).ok_or_else(|| format!("bad scalar {exp:?}"))?;
            if almost_equal(want, v) {
                Ok(())
            } else {
                Err(format!("expected scalar {want}, got {v}"))
            }
        }
        Value::String(_, s) => {
            let [exp] = cmd.expected.as_slice() else {
                return Err(format!("got string {s:?}"));
            };
            if exp.trim().trim_matches('"') == s.as_str() {
                Ok(())
            } else {
                Err(format!("expected string {exp}, got {s:?}"))
            }
        }
        Value::Vector(got) => {
            let mut want = Vec::new();
            for e in &cmd.expected {
                let (lb, rest) = parse_metric(e)?;
                let v = parse_number(rest).ok_or_else(|| format!("bad value in {e:?}"))?;
                want.push((lb, v));
            }
            if want.len() != got.len() {
                return Err(format!(
                    "expected {} samples, got {}: {}",
                    want.len(),
                    got.len(),
                    show_vector(got)
                ));
            }
            for (pos, (lb, v)) in want.iter().enumerate() {
                let Some(gi) = got.iter().position(|g| g.0 == *lb) else {
                    return Err(format!("missing {lb}; got {}", show_vector(got)));
                };
                if !almost_equal(*v, got[gi].2) {
                    return Err(format!("{lb}: expected {v}, got {}", got[gi].2));
                }
                if cmd.ordered && gi != pos {
                    return Err(format!("{lb}: expected at position {pos}, got {gi}"));
                }
            }
            Ok(())
        }
        Value::Matrix(got) => {
            let (start, step) = match cmd.mode {
                Mode::Range(s, _, st) => (s, st),
                // instant range selectors are compared sample by sample at
                // their own timestamps is not supported by the format
                Mode::Instant(_) => return Err("range vector results are not comparable".into()),
            };
            let mut want = Vec::new();
            for e in &cmd.expected {
                let (lb, rest) = parse_metric(e)?;
                let vals = expand_values(rest)?;
                let pts: Vec<Sample> = vals
                    .into_iter()
                    .enumerate()
                    .filter_map(|(k, v)| v.map(|v| Sample::new(start + k as i64 * step, v)))
                    .collect();
                want.push((lb, pts));
            }
            if want.len() != got.len() {
                return Err(format!(
                    "expected {} series, got {}: {:?}",
                    want.len(),
                    got.len(),
                    got.iter().map(|s| s.0.to_string()).collect::<Vec<_>>()
                ));
            }
            for (lb, pts) in &want {
                let Some(g) = got.iter().find(|g| g.0 == *lb) else {
                    return Err(format!("missing series {lb}"));
                };
                let same = g.1.len() == pts.len()
                    && g.1
                        .iter()
                        .zip(pts)
                        .all(|(a, b)| a.t == b.t && almost_equal(a.v, b.v));
                if !same {
                    return Err(format!("{lb}: expected {pts:?}, got {:?}", g.1));
                }
            }
            Ok(())
        }
    }
}

fn show_vector(v: &[(Labels, i64, f64)]) -> String {
    v.iter()
        .map(|(l, _, x)| format!("{l} {x}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_series_descriptions() {
        let v = expand_values("1+2x3 _ stale 5 -1-1x1 _x2 7x1 1e3").unwrap();
        let shown: Vec<String> = v
            .iter()
            .map(|x| match x {
                None => "_".into(),
                Some(f) if f.to_bits() == STALE_NAN => "stale".into(),
                Some(f) => f.to_string(),
            })
            .collect();
        assert_eq!(
            shown,
            vec![
                "1", "3", "5", "7", "_", "stale", "5", "-1", "-2", "_", "_", "7", "7", "1000"
            ]
        );
        assert!(expand_values("abc").is_err());
    }

    #[test]
    fn parses_metrics_and_durations() {
        let (l, rest) = parse_metric(r#"foo{a="1", b="x\"y"} 1 2"#).unwrap();
        assert_eq!(l.to_string(), r#"{__name__="foo", a="1", b="x\"y"}"#);
        assert_eq!(rest, "1 2");
        let (l, rest) = parse_metric("{} 3").unwrap();
        assert!(l.is_empty());
        assert_eq!(rest, "3");
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("x"), None);
    }

    #[test]
    fn a_wrong_expectation_fails() {
        let r = run_script("load 1m\n  m 1 2 3\n\neval instant at 2m m\n  m 4\n");
        assert_eq!((r.passed, r.failed), (0, 1), "{:?}", r.failures);
        let r = run_script("load 1m\n  m 1 2 3\n\neval instant at 2m m\n  m 3\n");
        assert_eq!((r.passed, r.failed), (1, 0), "{:?}", r.failures);
    }
}
