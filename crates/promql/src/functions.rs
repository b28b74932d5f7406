//! PromQL functions with Prometheus 2.42 semantics.

use std::collections::HashMap;

use pharos_model::{Labels, Sample};
use promql_parser::parser::{Call, Expr};
use regex::Regex;

use crate::engine::{Ev, Grid, Out, RangeInput, finish_matrix, unwrap_parens};
use crate::error::{QueryError, exec};
use crate::storage::Series;
use crate::time::{civil_from_unix, days_in_month};

fn arg(c: &Call, i: usize) -> Result<&Expr, QueryError> {
    c.args
        .args
        .get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| exec(format!("missing argument {i} to {}", c.func.name)))
}

fn string_arg(c: &Call, i: usize) -> Result<String, QueryError> {
    match unwrap_parens(arg(c, i)?) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        _ => Err(exec(format!(
            "expected string literal as argument {i} to {}",
            c.func.name
        ))),
    }
}

pub(crate) fn valid_label_name(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && ch.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn eval_call(ev: &mut Ev<'_>, c: &Call, g: Grid) -> Result<Out, QueryError> {
    let name = c.func.name;
    match name {
        "rate" | "increase" | "delta" | "irate" | "idelta" | "deriv" | "predict_linear"
        | "holt_winters" | "changes" | "resets" | "avg_over_time" | "min_over_time"
        | "max_over_time" | "sum_over_time" | "count_over_time" | "stddev_over_time"
        | "stdvar_over_time" | "last_over_time" | "present_over_time" | "quantile_over_time"
        | "absent_over_time" => matrix_call(ev, c, g),
        "time" => Ok(Out::Scalar(
            (0..g.n()).map(|i| g.ts(i) as f64 / 1000.0).collect(),
        )),
        "pi" => Ok(Out::Scalar(vec![std::f64::consts::PI; g.n()])),
        "vector" => {
            let v = ev.eval_scalar(arg(c, 0)?, g)?;
            Ok(Out::Vector(vec![Series {
                labels: Labels::new(),
                samples: v
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Sample::new(g.ts(i), v))
                    .collect(),
            }]))
        }
        "scalar" => {
            let ss = ev.eval_vector(arg(c, 0)?, g)?;
            let mut count = vec![0u32; g.n()];
            let mut val = vec![f64::NAN; g.n()];
            for s in &ss {
                for p in &s.samples {
                    let i = g.idx(p.t);
                    count[i] += 1;
                    val[i] = p.v;
                }
            }
            Ok(Out::Scalar(
                val.into_iter()
                    .zip(count)
                    .map(|(v, n)| if n == 1 { v } else { f64::NAN })
                    .collect(),
            ))
        }
        "absent" => {
            let a = arg(c, 0)?;
            let ss = ev.eval_vector(a, g)?;
            let mut present = vec![false; g.n()];
            for s in &ss {
                for p in &s.samples {
                    present[g.idx(p.t)] = true;
                }
            }
            let labels = match unwrap_parens(a) {
                Expr::VectorSelector(vs) => crate::engine::absent_labels(vs),
                _ => Labels::new(),
            };
            let samples: Vec<Sample> = present
                .iter()
                .enumerate()
                .filter(|(_, p)| !**p)
                .map(|(i, _)| Sample::new(g.ts(i), 1.0))
                .collect();
            Ok(Out::Vector(if samples.is_empty() {
                Vec::new()
            } else {
                vec![Series { labels, samples }]
            }))
        }
        "timestamp" => {
            let a = arg(c, 0)?;
            let ss = match unwrap_parens(a) {
                // upstream recomputes the offset from `@` per step here,
                // which drops any `offset` written next to the `@`
                Expr::VectorSelector(vs) if vs.at.is_some() => {
                    let mut vs = vs.clone();
                    vs.offset = None;
                    ev.eval_vs(&vs, g, true)?
                }
                Expr::VectorSelector(vs) => ev.eval_vs(vs, g, true)?,
                _ => {
                    let mut ss = ev.eval_vector(a, g)?;
                    for s in &mut ss {
                        for p in &mut s.samples {
                            p.v = p.t as f64 / 1000.0;
                        }
                    }
                    ss
                }
            };
            let ss = ss
                .into_iter()
                .map(|s| Series {
                    labels: s.labels.without_metric_name(),
                    samples: s.samples,
                })
                .collect();
            Ok(Out::Vector(finish_matrix(ss)?))
        }
        "sort" | "sort_desc" => {
            let mut ss = ev.eval_vector(arg(c, 0)?, g)?;
            if g.n() == 1 {
                let desc = name == "sort_desc";
                // Go's Less with NaN always "less", applied in reverse
                let first = |s: &Series| s.samples.first().map_or(f64::NAN, |p| p.v);
                let less = |a: &Series, b: &Series| {
                    let (x, y) = (first(a), first(b));
                    if desc {
                        y.is_nan() || y < x
                    } else {
                        y.is_nan() || y > x
                    }
                };
                if ss.len() <= 12 {
                    crate::aggregate::go_insertion_sort(&mut ss, less);
                } else {
                    ss.sort_by(|a, b| {
                        let (x, y) = (first(a), first(b));
                        match (x.is_nan(), y.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            _ if desc => y.total_cmp(&x),
                            _ => x.total_cmp(&y),
                        }
                    });
                }
            }
            Ok(Out::Vector(ss))
        }
        "label_replace" => label_replace(ev, c, g),
        "label_join" => label_join(ev, c, g),
        "histogram_quantile" => histogram_quantile(ev, c, g),
        // native histograms only; float series never produce output
        "histogram_count" | "histogram_sum" => {
            ev.eval_vector(arg(c, 0)?, g)?;
            Ok(Out::Vector(Vec::new()))
        }
        "histogram_fraction" => {
            ev.eval_vector(arg(c, 2)?, g)?;
            Ok(Out::Vector(Vec::new()))
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => {
            let f = |secs: i64| -> f64 {
                let t = civil_from_unix(secs);
                f64::from(match name {
                    "day_of_month" => t.day,
                    "day_of_week" => t.weekday,
                    "day_of_year" => t.yday,
                    "days_in_month" => days_in_month(t.year, t.month),
                    "hour" => t.hour,
                    "minute" => t.minute,
                    "month" => t.month,
                    _ => return t.year as f64,
                })
            };
            if c.args.args.is_empty() {
                return Ok(Out::Vector(vec![Series {
                    labels: Labels::new(),
                    samples: (0..g.n())
                        .map(|i| {
                            let ts = g.ts(i);
                            Sample::new(ts, f(ts.div_euclid(1000)))
                        })
                        .collect(),
                }]));
            }
            let ss = ev.eval_vector(arg(c, 0)?, g)?;
            map_series(ss, |_, v| Some(f(go_f64_to_i64(v))))
        }
        "clamp" | "clamp_min" | "clamp_max" | "round" => {
            let ss = ev.eval_vector(arg(c, 0)?, g)?;
            let p1 = match c.args.args.get(1) {
                Some(a) => ev.eval_scalar(a, g)?,
                None => vec![1.0; g.n()],
            };
            let p2 = match c.args.args.get(2) {
                Some(a) => ev.eval_scalar(a, g)?,
                None => Vec::new(),
            };
            match name {
                "clamp" => map_series(ss, |t, v| {
                    let i = g.idx(t);
                    let (lo, hi) = (p1[i], p2[i]);
                    if hi < lo {
                        None
                    } else {
                        Some(go_max(lo, go_min(hi, v)))
                    }
                }),
                "clamp_min" => map_series(ss, |t, v| Some(go_max(p1[g.idx(t)], v))),
                "clamp_max" => map_series(ss, |t, v| Some(go_min(p1[g.idx(t)], v))),
                _ => map_series(ss, |t, v| {
                    let inv = 1.0 / p1[g.idx(t)];
                    Some((v * inv + 0.5).floor() / inv)
                }),
            }
        }
        _ => {
            let f: fn(f64) -> f64 = match name {
                "abs" => f64::abs,
                "ceil" => f64::ceil,
                "floor" => f64::floor,
                "exp" => f64::exp,
                "sqrt" => f64::sqrt,
                "ln" => crate::gomath::log,
                "log2" => crate::gomath::log2,
                "log10" => crate::gomath::log10,
                "sin" => f64::sin,
                "cos" => f64::cos,
                "tan" => f64::tan,
                "asin" => f64::asin,
                "acos" => f64::acos,
                "atan" => f64::atan,
                "sinh" => f64::sinh,
                "cosh" => f64::cosh,
                "tanh" => f64::tanh,
                "asinh" => f64::asinh,
                "acosh" => f64::acosh,
                "atanh" => f64::atanh,
                "rad" => |v| v * std::f64::consts::PI / 180.0,
                "deg" => |v| v * 180.0 / std::f64::consts::PI,
                "sgn" => |v: f64| {
                    if v < 0.0 {
                        -1.0
                    } else if v > 0.0 {
                        1.0
                    } else {
                        v
                    }
                },
                other => {
                    return Err(QueryError::NotImplemented(format!("function {other}")));
                }
            };
            let ss = ev.eval_vector(arg(c, 0)?, g)?;
            map_series(ss, |_, v| Some(f(v)))
        }
    }
}

/// Go's conversion of a float to int64 on amd64: out of range and NaN give
/// the minimum value.
fn go_f64_to_i64(v: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if !(-TWO_63..TWO_63).contains(&v) {
        i64::MIN
    } else {
        v as i64
    }
}

/// Go's `math.Max`: +Inf wins even over NaN, then NaN wins, +0 beats -0;
/// so `clamp_min(NaN, +Inf)` is +Inf in Prometheus.
fn go_max(a: f64, b: f64) -> f64 {
    if a == f64::INFINITY || b == f64::INFINITY {
        f64::INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: -Inf wins even over NaN, then NaN wins, -0 beats +0.
fn go_min(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY || b == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

/// Applies `f(t, v)` to every point, dropping the metric name.
fn map_series(ss: Vec<Series>, f: impl Fn(i64, f64) -> Option<f64>) -> Result<Out, QueryError> {
    let mut out = Vec::with_capacity(ss.len());
    for s in ss {
        let samples: Vec<Sample> = s
            .samples
            .iter()
            .filter_map(|p| f(p.t, p.v).map(|v| Sample::new(p.t, v)))
            .collect();
        if !samples.is_empty() {
            out.push(Series {
                labels: s.labels.without_metric_name(),
                samples,
            });
        }
    }
    Ok(Out::Vector(finish_matrix(out)?))
}

fn label_replace(ev: &mut Ev<'_>, c: &Call, g: Grid) -> Result<Out, QueryError> {
    let dst = string_arg(c, 1)?;
    let repl = string_arg(c, 2)?;
    let src = string_arg(c, 3)?;
    let re_str = string_arg(c, 4)?;
    let re = Regex::new(&format!("^(?:{re_str})$")).map_err(|_| {
        exec(format!(
            "invalid regular expression in label_replace(): {re_str}"
        ))
    })?;
    if !valid_label_name(&dst) {
        return Err(exec(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let ss = ev.eval_vector(arg(c, 0)?, g)?;
    let out = ss
        .into_iter()
        .map(|mut s| {
            let sv = s.labels.get(&src).unwrap_or("").to_owned();
            if let Some(caps) = re.captures(&sv) {
                let mut res = String::new();
                caps.expand(&repl, &mut res);
                s.labels.set(&dst, &res);
            }
            s
        })
        .collect();
    Ok(Out::Vector(finish_matrix(out)?))
}

fn label_join(ev: &mut Ev<'_>, c: &Call, g: Grid) -> Result<Out, QueryError> {
    let dst = string_arg(c, 1)?;
    let sep = string_arg(c, 2)?;
    let mut srcs = Vec::new();
    for i in 3..c.args.args.len() {
        let s = string_arg(c, i)?;
        if !valid_label_name(&s) {
            return Err(exec(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
        srcs.push(s);
    }
    if !valid_label_name(&dst) {
        return Err(exec(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let ss = ev.eval_vector(arg(c, 0)?, g)?;
    let out = ss
        .into_iter()
        .map(|mut s| {
            let joined = srcs
                .iter()
                .map(|n| s.labels.get(n).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(&sep);
            s.labels.set(&dst, &joined);
            s
        })
        .collect();
    Ok(Out::Vector(finish_matrix(out)?))
}

/// Parses an `le` value the way Go's strconv.ParseFloat accepts it.
fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    let lower = t.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        return Some(f64::NAN);
    }
    s.parse::<f64>().ok()
}

fn histogram_quantile(ev: &mut Ev<'_>, c: &Call, g: Grid) -> Result<Out, QueryError> {
    let q = ev.eval_scalar(arg(c, 0)?, g)?;
    let ss = ev.eval_vector(arg(c, 1)?, g)?;
    // group buckets by their labels without `le` (and the name)
    let mut groups: HashMap<Labels, usize> = HashMap::new();
    let mut members: Vec<(Labels, Vec<(usize, f64)>)> = Vec::new();
    for (i, s) in ss.iter().enumerate() {
        let Some(ub) = s.labels.get("le").and_then(parse_go_float) else {
            continue;
        };
        // grouped with the name, reported without it: two histograms that
        // differ only by name collide in the output and fail like upstream
        let mut key = s.labels.clone();
        key.remove("le");
        let gi = *groups.entry(key.clone()).or_insert_with(|| {
            members.push((key.without_metric_name(), Vec::new()));
            members.len() - 1
        });
        members[gi].1.push((i, ub));
    }
    let mut out = Vec::with_capacity(members.len());
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for (labels, mem) in members {
        ev.check("expression evaluation")?;
        let mut pos = vec![0usize; mem.len()];
        let mut samples = Vec::new();
        for (step, &qs) in q.iter().enumerate() {
            let ts = g.ts(step);
            buckets.clear();
            for (k, (si, ub)) in mem.iter().enumerate() {
                let sm = &ss[*si].samples;
                let p = &mut pos[k];
                while *p < sm.len() && sm[*p].t < ts {
                    *p += 1;
                }
                if *p < sm.len() && sm[*p].t == ts {
                    buckets.push((*ub, sm[*p].v));
                }
            }
            if !buckets.is_empty() {
                samples.push(Sample::new(ts, bucket_quantile(qs, &mut buckets)));
            }
        }
        if !samples.is_empty() {
            out.push(Series { labels, samples });
        }
    }
    Ok(Out::Vector(finish_matrix(out)?))
}

/// Classic-histogram quantile over (upper bound, cumulative count) buckets.
pub(crate) fn bucket_quantile(q: f64, b: &mut [(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    if b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // merge buckets with the same bound (e.g. "1" and "1.0")
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(b.len());
    for &(ub, c) in b.iter() {
        match merged.last_mut() {
            Some(l) if l.0 == ub => l.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    // scrapes of buckets are not atomic; force counts to be monotonic
    let mut max = merged[0].1;
    for m in merged.iter_mut().skip(1) {
        if m.1 > max {
            max = m.1;
        } else if m.1 < max {
            m.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let n = merged.len();
    let observations = merged[n - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let idx = merged[..n - 1].partition_point(|m| m.1 < rank);
    if idx == n - 1 {
        return merged[n - 2].0;
    }
    if idx == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let mut start = 0.0;
    let end = merged[idx].0;
    let mut count = merged[idx].1;
    if idx > 0 {
        start = merged[idx - 1].0;
        count -= merged[idx - 1].1;
        rank -= merged[idx - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// Quantile of values with linear interpolation between closest ranks;
/// NaNs sort first, as in Prometheus.
pub(crate) fn quantile(q: f64, vals: &mut [f64]) -> f64 {
    if vals.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    vals.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = vals.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    vals[lower as usize] * (1.0 - weight) + vals[upper as usize] * weight
}

fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

fn linear_regression(s: &[Sample], intercept_t: i64) -> (f64, f64) {
    let init = s[0].v;
    let mut const_y = true;
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    for (i, p) in s.iter().enumerate() {
        if const_y && i > 0 && p.v != init {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// Where a series' value drops (a counter reset), so a window's resets are
/// found without scanning all its samples at every step.
#[derive(Default)]
struct Resets {
    /// Indexes `i` with `samples[i].v < samples[i - 1].v`, ascending (the
    /// walk skips those no window can hold).
    at: Vec<usize>,
    /// First entry of `at` that may still lie in a window; windows only
    /// move forward.
    next: usize,
}

impl Resets {
    /// Records sample `i` (at least 1) if it drops. Offered in ascending
    /// order by the walk as it first reaches each sample, so a window's
    /// drops are known when it is done.
    #[inline(always)]
    fn check(&mut self, samples: &[Sample], i: usize) {
        if samples[i].v < samples[i - 1].v {
            self.at.push(i);
        }
    }

    /// Indexes of the drops inside the window `samples[lo..lo + len]` (the
    /// first sample of a window is never one: it has no predecessor there).
    fn within(&mut self, lo: usize, len: usize) -> &[usize] {
        while self.next < self.at.len() && self.at[self.next] <= lo {
            self.next += 1;
        }
        let rest = &self.at[self.next..];
        &rest[..rest.partition_point(|&i| i < lo + len)]
    }
}

/// rate/increase/delta of one window with Prometheus' extrapolation to the
/// window edges (the reference [`extrapolated_series`] is tested against).
///
/// `resets` lists, for counters, the values just before each drop inside
/// the window, in order (see [`Resets`]); adding them in that order gives
/// exactly the sum Prometheus' scan of the window gives.
#[cfg(test)]
fn extrapolated_rate(
    w: &[Sample],
    resets: impl Iterator<Item = f64>,
    range_start: i64,
    range_end: i64,
    range: i64,
    counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let first = w[0];
    let last = w[w.len() - 1];
    let mut result = last.v - first.v;
    if counter {
        for prev in resets {
            result += prev;
        }
    }
    Some(extrapolate(
        first,
        last,
        w.len(),
        result,
        range_start,
        range_end,
        range,
        counter,
        is_rate,
    ))
}

/// `ms as f64 / 1000.0`, bit for bit, without the division when `ms` is
/// whole seconds (then both are exactly that integer): a float division
/// costs as much as the rest of a step of `rate`.
#[cfg(test)]
fn ms_to_secs(ms: i64) -> f64 {
    let secs = ms / 1000;
    if secs * 1000 == ms && secs.unsigned_abs() < 1 << 53 {
        secs as f64
    } else {
        ms as f64 / 1000.0
    }
}

/// The extrapolation of [`extrapolated_rate`] once the window's raw
/// difference (`result`, resets added) is known: Prometheus' steps one
/// by one, the reference of [`extrapolate_columns`].
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
fn extrapolate(
    first: Sample,
    last: Sample,
    len: usize,
    mut result: f64,
    range_start: i64,
    range_end: i64,
    range: i64,
    counter: bool,
    is_rate: bool,
) -> f64 {
    let mut to_start = ms_to_secs(first.t - range_start);
    let to_end = ms_to_secs(range_end - last.t);
    let sampled = ms_to_secs(last.t - first.t);
    let avg = sampled / (len - 1) as f64;
    if counter && result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        avg / 2.0
    };
    result *= interval / sampled;
    if is_rate {
        result /= range as f64 / 1000.0;
    }
    result
}

/// rate/increase/delta of one series at every step. Windows only move
/// forward, so their bounds advance monotonically and a counter's drops
/// come from one list made once; the additions are those of
/// [`extrapolated_rate`], in the same order, so values are identical.
///
/// Two passes: the window walk (its loops branch on the data) first
/// records each window's durations, length and raw difference in
/// columns; the extrapolation ([`extrapolate_columns`]) then runs over the
/// columns without branches, two steps per instruction where the CPU can.
fn extrapolated_series(
    ri: &RangeInput,
    g: Grid,
    samples: &[Sample],
    counter: bool,
    is_rate: bool,
) -> Vec<Sample> {
    thread_local! {
        static COLUMNS: std::cell::RefCell<Columns> = std::cell::RefCell::default();
    }
    // drops are found as the walk reaches each sample (no pass of its
    // own over the series; most counters never drop)
    let mut resets = Resets::default();
    COLUMNS.with_borrow_mut(|c| {
        // every column as long as the grid, written by index: no
        // capacity checks in the walk, and pointers kept in registers
        c.resize(g.n());
        let Columns {
            ts: c_ts,
            to_start,
            to_end,
            sampled,
            gaps,
            first: c_first,
            result: c_result,
            out,
        } = c;
        // the walk of RangeInput::window_ranges, inlined so the columns
        // stay local slices (their pointers in registers, not reloaded
        // through the closure's captures at every write)
        let n = g.n();
        let c_ts = &mut c_ts[..n];
        let to_start = &mut to_start[..n];
        let to_end = &mut to_end[..n];
        let sampled = &mut sampled[..n];
        let gaps = &mut gaps[..n];
        let c_first = &mut c_first[..n];
        let c_result = &mut c_result[..n];
        let len = samples.len();
        let (mut lo, mut hi, mut k) = (0usize, 0usize, 0usize);
        for i in 0..n {
            let ts = g.ts(i);
            let end = ri.ref_t(ts);
            let mint = end.saturating_sub(ri.range);
            while lo < len && samples[lo].t < mint {
                lo += 1;
            }
            hi = hi.max(lo);
            while hi < len && samples[hi].t <= end {
                // a drop at `lo` or before it counts in no window from
                // here on
                if counter && hi > lo {
                    resets.check(samples, hi);
                }
                hi += 1;
            }
            if hi - lo < 2 {
                continue;
            }
            let (first, last) = (samples[lo], samples[hi - 1]);
            let mut result = last.v - first.v;
            if counter && !resets.at.is_empty() {
                for &d in resets.within(lo, hi - lo) {
                    result += samples[d - 1].v;
                }
            }
            // k <= i < n: one check for all the writes below
            if k >= n {
                break;
            }
            // durations in milliseconds here, in seconds in the pass
            // without branches (a division each, which would stall this
            // loop); as before, the window's start saturates and the
            // extrapolation's wraps (both equal it short of i64's ends)
            c_ts[k] = ts;
            to_start[k] = (first.t - end.wrapping_sub(ri.range)) as f64;
            to_end[k] = (end - last.t) as f64;
            sampled[k] = (last.t - first.t) as f64;
            gaps[k] = (hi - lo - 1) as f64;
            c_first[k] = first.v;
            c_result[k] = result;
            k += 1;
        }
        let out = &mut out[..k];
        let cols = [
            &to_start[..],
            &to_end[..],
            &sampled[..],
            &gaps[..],
            &c_first[..],
            &c_result[..],
        ];
        extrapolate_columns(cols, out, ri.range as f64 / 1000.0, counter, is_rate);
        c_ts[..k]
            .iter()
            .zip(out.iter())
            .map(|(&t, &v)| Sample::new(t, v))
            .collect()
    })
}

/// The inputs of [`extrapolate`] for every step of one series, a column
/// per input.
#[derive(Default)]
struct Columns {
    ts: Vec<i64>,
    /// The three durations, in milliseconds.
    to_start: Vec<f64>,
    to_end: Vec<f64>,
    sampled: Vec<f64>,
    /// Samples in the window, less one.
    gaps: Vec<f64>,
    first: Vec<f64>,
    result: Vec<f64>,
    /// The extrapolation's results.
    out: Vec<f64>,
}

impl Columns {
    /// Every column `n` long (contents left as they were).
    fn resize(&mut self, n: usize) {
        self.ts.resize(n, 0);
        for col in [
            &mut self.to_start,
            &mut self.to_end,
            &mut self.sampled,
            &mut self.gaps,
            &mut self.first,
            &mut self.result,
            &mut self.out,
        ] {
            col.resize(n, 0.0);
        }
    }
}

/// [`extrapolate`] over columns: the same operations in the same order on
/// every row (so the same bits), written without branches so the compiler
/// can run rows side by side; a counter's division towards zero is done
/// on every row and its result kept only where [`extrapolate`] uses it.
///
/// `cols` are [`Columns`]' `to_start`, `to_end`, `sampled`, `gaps`,
/// `first` and `result`, each at least as long as `out`.
fn extrapolate_columns(
    cols: [&[f64]; 6],
    out: &mut [f64],
    range_secs: f64,
    counter: bool,
    is_rate: bool,
) {
    let n = out.len();
    let [to_start, to_end, sampled, gaps, first, result] = cols.map(|c| &c[..n]);
    for i in 0..n {
        // `ms as f64 / 1000.0` is what ms_to_secs computes, bit for bit
        let (sampled, to_end) = (sampled[i] / 1000.0, to_end[i] / 1000.0);
        let mut to_start = to_start[i] / 1000.0;
        let (first, result) = (first[i], result[i]);
        let avg = sampled / gaps[i];
        let to_zero = sampled * (first / result);
        let towards_zero = counter & (result > 0.0) & (first >= 0.0) & (to_zero < to_start);
        to_start = if towards_zero { to_zero } else { to_start };
        let threshold = avg * 1.1;
        let half = avg / 2.0;
        let mut interval = sampled;
        interval += if to_start < threshold { to_start } else { half };
        interval += if to_end < threshold { to_end } else { half };
        let v = result * (interval / sampled);
        out[i] = if is_rate { v / range_secs } else { v };
    }
}

fn instant_value(w: &[Sample], is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let last = w[w.len() - 1];
    let prev = w[w.len() - 2];
    let mut v = if is_rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    let dt = last.t - prev.t;
    if dt == 0 {
        return None;
    }
    if is_rate {
        v /= dt as f64 / 1000.0;
    }
    Some(v)
}

fn holt_winters(w: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, w[0].v);
    let mut b = w[1].v - w[0].v;
    for (i, p) in w.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

fn avg_over(w: &[Sample]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for p in w {
        count += 1.0;
        if mean.is_infinite() {
            if p.v.is_infinite() && (mean > 0.0) == (p.v > 0.0) {
                continue;
            }
            if !p.v.is_infinite() && !p.v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(p.v / count - mean / count, mean, c);
    }
    if mean.is_infinite() { mean } else { mean + c }
}

fn var_over(w: &[Sample]) -> f64 {
    let (mut count, mut mean, mut cm, mut aux, mut ca) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in w {
        count += 1.0;
        let delta = p.v - (mean + cm);
        (mean, cm) = kahan_inc(delta / count, mean, cm);
        (aux, ca) = kahan_inc(delta * (p.v - (mean + cm)), aux, ca);
    }
    (aux + ca) / count
}

fn matrix_call(ev: &mut Ev<'_>, c: &Call, g: Grid) -> Result<Out, QueryError> {
    let name = c.func.name;
    let marg = if name == "quantile_over_time" { 1 } else { 0 };
    // scalar parameters, one value per step
    let mut params: Vec<Vec<f64>> = Vec::new();
    for (i, a) in c.args.args.iter().enumerate() {
        if i != marg {
            params.push(ev.eval_scalar(a, g)?);
        }
    }
    // A function of a plain matrix selector runs where storage reads each
    // series, in the same pass (see Queryable::select_map).
    if name != "absent_over_time"
        && let Some(sel) = ev.matrix_selection(arg(c, marg)?, g, name == "predict_linear", true)?
    {
        ev.check("query preparation")?;
        let evr: &Ev<'_> = ev;
        let ri = &sel.input;
        let params = &params;
        let f = |s: Series| -> Result<Option<Series>, QueryError> {
            evr.check("expression evaluation")?;
            let mut scratch: Vec<f64> = Vec::new();
            matrix_series(name, ri, params, g, &s, &mut scratch)
        };
        let out = evr
            .storage()
            .select_map(&sel.matchers, sel.mint, sel.maxt, &f)?;
        return matrix_output(ev, out);
    }
    let ri: RangeInput = ev.range_input(
        arg(c, marg)?,
        g,
        name == "predict_linear",
        name != "absent_over_time",
    )?;
    if name == "absent_over_time" {
        let mut present = vec![false; g.n()];
        for s in &ri.series {
            ri.windows(&s.samples, g, |i, _, w| {
                if !w.is_empty() {
                    present[i] = true;
                }
            });
        }
        let samples: Vec<Sample> = present
            .iter()
            .enumerate()
            .filter(|(_, p)| !**p)
            .map(|(i, _)| Sample::new(g.ts(i), 1.0))
            .collect();
        return Ok(Out::Vector(if samples.is_empty() {
            Vec::new()
        } else {
            vec![Series {
                labels: ri.absent_labels.clone(),
                samples,
            }]
        }));
    }
    // series are independent: long inputs are split over threads
    let mut ri = ri;
    let series = std::mem::take(&mut ri.series);
    let n_series = series.len();
    let work: usize = series.iter().map(|s| s.samples.len()).sum();
    let ev_ref: &Ev<'_> = ev;
    let ri = &ri;
    let parts = crate::engine::par_chunks_owned(series, work, |chunk| {
        let mut out = Vec::with_capacity(chunk.len());
        let mut scratch: Vec<f64> = Vec::new();
        // each input is dropped once evaluated (see par_chunks_owned)
        for s in chunk {
            ev_ref.check("expression evaluation")?;
            if let Some(s) = matrix_series(name, ri, &params, g, &s, &mut scratch)? {
                out.push(s);
            }
        }
        Ok::<_, QueryError>(out)
    });
    let mut out = Vec::with_capacity(n_series);
    for p in parts {
        out.extend(p?);
    }
    matrix_output(ev, out)
}

/// A range function's output series: counted against the sample limit,
/// and refused when two share a label set.
fn matrix_output(ev: &mut Ev<'_>, out: Vec<Series>) -> Result<Out, QueryError> {
    let total = out.iter().map(|s| s.samples.len()).sum();
    ev.account(total)?;
    // unlike per-step functions, Prometheus rejects any duplicate labelset here
    let mut seen = std::collections::HashSet::with_capacity(out.len());
    for s in &out {
        if !seen.insert(&s.labels) {
            return Err(exec("vector cannot contain metrics with the same labelset"));
        }
    }
    Ok(Out::Vector(out))
}

/// One series' values of a range-vector function over the grid, or None
/// when it has none.
fn matrix_series(
    name: &str,
    ri: &RangeInput,
    params: &[Vec<f64>],
    g: Grid,
    s: &Series,
    scratch: &mut Vec<f64>,
) -> Result<Option<Series>, QueryError> {
    let labels = || {
        if name == "last_over_time" {
            s.labels.clone()
        } else {
            s.labels.without_metric_name()
        }
    };
    let kept: Vec<Sample>;
    let samples: &[Sample] = if ri.stale_kept && crate::engine::has_stale(&s.samples) {
        kept = s
            .samples
            .iter()
            .filter(|p| !p.is_stale())
            .copied()
            .collect();
        &kept
    } else {
        &s.samples
    };
    if let "rate" | "increase" | "delta" = name {
        let counter = name != "delta";
        let pts = extrapolated_series(ri, g, samples, counter, name == "rate");
        return Ok((!pts.is_empty()).then(|| Series {
            labels: labels(),
            samples: pts,
        }));
    }
    let mut err: Option<QueryError> = None;
    let mut pts = Vec::with_capacity(g.n().min(samples.len()));
    ri.windows(samples, g, |i, ts, w| {
        if w.is_empty() || err.is_some() {
            return;
        }
        let v = match name {
            "irate" => instant_value(w, true),
            "idelta" => instant_value(w, false),
            "deriv" if w.len() >= 2 => Some(linear_regression(w, w[0].t).0),
            "predict_linear" if w.len() >= 2 => {
                let (slope, icpt) = linear_regression(w, ts);
                Some(slope * params[0][i] + icpt)
            }
            "holt_winters" => {
                let (sf, tf) = (params[0][i], params[1][i]);
                if sf <= 0.0 || sf >= 1.0 {
                    err = Some(exec(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                    )));
                    return;
                }
                if tf <= 0.0 || tf >= 1.0 {
                    err = Some(exec(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                    )));
                    return;
                }
                holt_winters(w, sf, tf)
            }
            "changes" | "resets" => {
                let mut n = 0u32;
                for p in w.windows(2) {
                    let (a, b) = (p[0].v, p[1].v);
                    let hit = if name == "resets" {
                        b < a
                    } else {
                        a != b && !(a.is_nan() && b.is_nan())
                    };
                    n += u32::from(hit);
                }
                Some(f64::from(n))
            }
            "avg_over_time" => Some(avg_over(w)),
            "min_over_time" => Some(
                w.iter()
                    .fold(w[0].v, |m, p| if p.v < m || m.is_nan() { p.v } else { m }),
            ),
            "max_over_time" => Some(
                w.iter()
                    .fold(w[0].v, |m, p| if p.v > m || m.is_nan() { p.v } else { m }),
            ),
            "sum_over_time" => {
                let (mut sum, mut cc) = (0.0, 0.0);
                for p in w {
                    (sum, cc) = kahan_inc(p.v, sum, cc);
                }
                Some(if sum.is_infinite() { sum } else { sum + cc })
            }
            "count_over_time" => Some(w.len() as f64),
            "stdvar_over_time" => Some(var_over(w)),
            "stddev_over_time" => Some(var_over(w).sqrt()),
            "last_over_time" => Some(w[w.len() - 1].v),
            "present_over_time" => Some(1.0),
            "quantile_over_time" => {
                scratch.clear();
                scratch.extend(w.iter().map(|p| p.v));
                Some(quantile(params[0][i], scratch))
            }
            _ => None,
        };
        if let Some(v) = v {
            pts.push(Sample::new(ts, v));
        }
    });
    if let Some(e) = err.take() {
        return Err(e);
    }
    if pts.is_empty() {
        return Ok(None);
    }
    Ok(Some(Series {
        labels: labels(),
        samples: pts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_quantile_interpolates_and_handles_edges() {
        let mut b = vec![(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.5, &mut b), 1.0);
        let mut b = vec![(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.75, &mut b), 1.5);
        // without +Inf the answer is NaN
        let mut b = vec![(1.0, 10.0), (2.0, 20.0)];
        assert!(bucket_quantile(0.5, &mut b).is_nan());
        // rank in +Inf bucket: the second-highest bound
        let mut b = vec![(1.0, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.9, &mut b), 1.0);
        // non-monotonic counts are fixed up
        let mut b = vec![(1.0, 10.0), (2.0, 5.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.5, &mut b), 0.5);
        let mut b = vec![(1.0, 1.0), (f64::INFINITY, 1.0)];
        assert_eq!(bucket_quantile(-1.0, &mut b), f64::NEG_INFINITY);
    }

    #[test]
    fn rate_extrapolates_like_prometheus() {
        // counter 0,10,..,50 every 10s in a 60s window ending 5s after the last sample
        let w: Vec<Sample> = (0..6)
            .map(|i| Sample::new(i * 10_000, i as f64 * 10.0))
            .collect();
        let none = || std::iter::empty();
        let v = extrapolated_rate(&w, none(), -5_000, 55_000, 60_000, true, false).unwrap();
        // zero point is at t=0, so only the end extrapolates by 5s: 50 * 55/50
        assert!((v - 55.0).abs() < 1e-9, "{v}");
        assert!(extrapolated_rate(&w[..1], none(), 0, 1, 1, true, true).is_none());
    }

    #[test]
    fn resets_in_sliding_windows_match_a_scan_of_each_window() {
        let vals = [5.0, 7.0, 1.0, 2.0, 2.0, 0.5, f64::NAN, 3.0, 1.0, 9.0, 4.0];
        let samples: Vec<Sample> = vals
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample::new(i as i64, v))
            .collect();
        for len in 1..5 {
            let mut r = Resets::default();
            for i in 1..samples.len() {
                r.check(&samples, i);
            }
            for lo in 0..samples.len() - len {
                let w = &samples[lo..lo + len];
                let mut scan = Vec::new();
                for k in 1..w.len() {
                    if w[k].v < w[k - 1].v {
                        scan.push(w[k - 1].v);
                    }
                }
                let got: Vec<f64> = r
                    .within(lo, len)
                    .iter()
                    .map(|&k| samples[k - 1].v)
                    .collect();
                assert_eq!(got, scan, "window {lo}+{len}");
            }
        }
    }

    #[test]
    fn rate_over_the_grid_matches_rate_of_each_window_bit_for_bit() {
        // a counter with resets, gaps and an irregular interval
        let mut samples = Vec::new();
        let mut v = 3.0;
        for i in 0..400i64 {
            if i % 7 == 3 {
                continue;
            }
            v = if i % 97 == 50 {
                0.25
            } else {
                v + (i % 5) as f64 * 0.3
            };
            samples.push(Sample::new(i * 15_000 + (i % 3) * 400, v));
        }
        // and one with negative, infinite and NaN values in it
        let odd: Vec<Sample> = samples
            .iter()
            .enumerate()
            .map(|(i, p)| match i {
                _ if i % 13 == 0 => Sample::new(p.t, f64::NAN),
                _ if i % 17 == 0 => Sample::new(p.t, f64::INFINITY),
                _ if i % 11 < 3 => Sample::new(p.t, -p.v),
                _ => *p,
            })
            .collect();
        for (samples, (range, step, offset)) in [samples, odd].iter().flat_map(|s| {
            [
                (300_000, 15_000, 0),
                (300_000, 60_000, 30_000),
                (60_000, 10_000, 0),
            ]
            .map(|c| (s, c))
        }) {
            let ri = RangeInput {
                series: Vec::new(),
                range,
                offset,
                at: None,
                absent_labels: Labels::new(),
                drift_from: None,
                stale_kept: false,
            };
            let g = Grid {
                start: 200_000,
                end: 6_100_000,
                step,
            };
            for (counter, is_rate) in [(true, true), (true, false), (false, false)] {
                let got = extrapolated_series(&ri, g, samples, counter, is_rate);
                let mut want = Vec::new();
                for i in 0..g.n() {
                    let ts = g.ts(i);
                    let end = ri.ref_t(ts);
                    let start = end - range;
                    let w: Vec<Sample> = samples
                        .iter()
                        .copied()
                        .filter(|p| p.t >= start && p.t <= end)
                        .collect();
                    let drops: Vec<f64> = w
                        .windows(2)
                        .filter(|p| p[1].v < p[0].v)
                        .map(|p| p[0].v)
                        .collect();
                    if let Some(v) = extrapolated_rate(
                        &w,
                        drops.into_iter(),
                        start,
                        end,
                        range,
                        counter,
                        is_rate,
                    ) {
                        want.push(Sample::new(ts, v));
                    }
                }
                assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(&want) {
                    assert_eq!((a.t, a.v.to_bits()), (b.t, b.v.to_bits()));
                }
            }
        }
    }

    #[test]
    fn ms_to_secs_is_the_division() {
        for ms in [
            0i64,
            1,
            -1,
            999,
            1000,
            -1000,
            15_000,
            300_001,
            -299_999,
            1 << 60,
            i64::MIN + 1,
        ] {
            assert_eq!(
                ms_to_secs(ms).to_bits(),
                (ms as f64 / 1000.0).to_bits(),
                "{ms}"
            );
        }
    }

    #[test]
    fn quantile_interpolates() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(2.0, &mut v), f64::INFINITY);
    }
}
