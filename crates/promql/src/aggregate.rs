//! Aggregation operators (`sum`, `topk`, `count_values`, ...).

use std::collections::HashMap;

use pharos_model::{Labels, METRIC_NAME, Sample};
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use crate::engine::{Cursors, Ev, Grid, Out};
use crate::error::{QueryError, exec};
use crate::functions::{quantile, valid_label_name};
use crate::storage::Series;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
}

#[derive(Clone, Copy, Default)]
struct Acc {
    value: f64,
    mean: f64,
    count: f64,
}

impl Acc {
    /// The state after a group's first value at a step.
    #[inline]
    fn first(op: Op, v: f64) -> Acc {
        Acc {
            value: if matches!(op, Op::Stddev | Op::Stdvar) {
                0.0
            } else {
                v
            },
            mean: v,
            count: 1.0,
        }
    }

    /// Adds a further value of the group at the same step (every op but
    /// topk, bottomk, quantile and count_values).
    #[inline]
    fn add(&mut self, op: Op, v: f64) {
        match op {
            Op::Sum => self.value += v,
            Op::Avg => {
                self.count += 1.0;
                if self.mean.is_infinite() {
                    if v.is_infinite() && (self.mean > 0.0) == (v > 0.0) {
                        return;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        return;
                    }
                }
                self.mean += v / self.count - self.mean / self.count;
            }
            Op::Max => {
                if self.value < v || self.value.is_nan() {
                    self.value = v;
                }
            }
            Op::Min => {
                if self.value > v || self.value.is_nan() {
                    self.value = v;
                }
            }
            Op::Count => self.count += 1.0,
            Op::Stddev | Op::Stdvar => {
                self.count += 1.0;
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            Op::Group | Op::Topk | Op::Bottomk | Op::Quantile | Op::CountValues => {}
        }
    }

    #[inline]
    fn result(&self, op: Op) -> f64 {
        match op {
            Op::Avg => self.mean,
            Op::Count => self.count,
            Op::Group => 1.0,
            Op::Stdvar => self.value / self.count,
            Op::Stddev => (self.value / self.count).sqrt(),
            _ => self.value,
        }
    }
}

/// Cells (groups x steps) up to which [`by_series`] keeps a state per cell.
const BY_SERIES_MAX_CELLS: usize = 1 << 20;

/// The per-value aggregations (not topk, bottomk, quantile, count_values)
/// walking series by series instead of step by step: each (group, step)
/// still receives its values in series order, so every sum is the same as
/// upstream's step-by-step one, but no step scans all series. Output
/// series come in the order the step-wise walk creates them: by the first
/// step a group has a value, then by the first of its series there.
fn by_series(
    ev: &Ev<'_>,
    op: Op,
    ss: Vec<Series>,
    series_group: &[usize],
    group_lbls: &[Labels],
    g: Grid,
) -> Result<Vec<Series>, QueryError> {
    let work: usize = ss.iter().map(|s| s.samples.len()).sum();
    // Few groups (histogram buckets, a sum over everything) leave each
    // thread a small table of cells; with many, the tables are the cost
    // (fresh pages for every part): one thread then.
    let threads = if group_lbls.len().saturating_mul(g.n()) > SPLIT_MAX_CELLS {
        1
    } else {
        crate::engine::threads_for(work)
    };
    by_series_on(ev, op, &ss, series_group, group_lbls, g, threads)
}

/// Cells (groups x steps) up to which [`by_series`] splits the steps over
/// threads.
const SPLIT_MAX_CELLS: usize = 1 << 16;

/// [`by_series`] on `threads` threads. Long inputs are split by steps, not
/// by series: each thread adds up every series over its own steps, so
/// each (group, step) still receives its values in series order and sums
/// keep their bits.
fn by_series_on(
    ev: &Ev<'_>,
    op: Op,
    ss: &[Series],
    series_group: &[usize],
    group_lbls: &[Labels],
    g: Grid,
    threads: usize,
) -> Result<Vec<Series>, QueryError> {
    let n = g.n();
    let ng = group_lbls.len();
    let threads = threads.clamp(1, n.max(1));
    let per = n.div_ceil(threads);
    let parts: Vec<(usize, usize)> = (0..n)
        .step_by(per.max(1))
        .map(|s0| (s0, (s0 + per).min(n)))
        .collect();
    let results = pharos_core::parallel::map_chunks(parts, threads, 1, |mine| {
        mine.into_iter()
            .map(|(s0, s1)| add_steps(ev, op, ss, series_group, ng, g, s0, s1))
            .collect::<Result<Vec<_>, _>>()
    });
    let mut parts = Vec::new();
    for r in results {
        parts.extend(r?);
    }
    Ok(assemble(op, &parts, group_lbls, g))
}

/// The output series of [`by_series`] from its step parts: groups in the
/// order the step-wise walk creates them.
fn assemble(op: Op, parts: &[StepPart], group_lbls: &[Labels], g: Grid) -> Vec<Series> {
    let ng = group_lbls.len();
    // a group's first value: the earliest step, then the first series
    let mut first_at: Vec<(usize, usize)> = vec![(usize::MAX, usize::MAX); ng];
    for p in parts {
        for (gi, f) in p.first_at.iter().enumerate() {
            first_at[gi] = first_at[gi].min(*f);
        }
    }
    let mut order: Vec<usize> = (0..ng).filter(|&gi| first_at[gi].0 != usize::MAX).collect();
    order.sort_unstable_by_key(|&gi| first_at[gi]);
    let mut out = Vec::with_capacity(order.len());
    for gi in order {
        let mut samples = Vec::new();
        for p in parts {
            let len = p.s1 - p.s0;
            let Some(row) = p.cells.get(gi * len..(gi + 1) * len) else {
                continue;
            };
            samples.extend(
                row.iter()
                    .enumerate()
                    .filter(|(_, c)| c.count != 0.0)
                    .map(|(k, c)| Sample::new(g.ts(p.s0 + k), c.result(op))),
            );
        }
        out.push(Series {
            labels: group_lbls[gi].clone(),
            samples,
        });
    }
    out
}

/// The accumulators of every group over steps `s0..s1` (row-major by
/// group), and each group's first (step, series) with a value there.
struct StepPart {
    s0: usize,
    s1: usize,
    cells: Vec<Acc>,
    first_at: Vec<(usize, usize)>,
}

/// Adds one series' points into its group's accumulators `row`, one per
/// step of a grid from `t0` every `step` ms; returns the offset in `row`
/// of the first step it had a value for.
fn add_series(op: Op, row: &mut [Acc], samples: &[Sample], t0: i64, step: i64) -> Option<usize> {
    let len = row.len();
    // points of a vector sit on the grid, in order; one that does not
    // would never be found by a step-wise walk either
    let mut rest = &samples[start_index(samples, t0, step)..];
    let mut first = None;
    let mut k = 0;
    if op == Op::Sum
        && step > 0
        && let Some(p0) = rest.first()
        && let off = p0.t - t0
        && off % step == 0
        && let Ok(a) = usize::try_from(off / step)
        && a < len
    {
        // the run of points at consecutive steps from the first (the
        // usual output of a range function), added in the same pass
        // that checks it: the same additions, without searching
        let mut want = p0.t;
        let mut n = 0;
        for (c, p) in row[a..].iter_mut().zip(rest) {
            if p.t != want {
                break;
            }
            let fresh = c.count == 0.0;
            c.value = if fresh { p.v } else { c.value + p.v };
            c.count = 1.0;
            want = want.wrapping_add(step);
            n += 1;
        }
        first = Some(a);
        rest = &rest[n..];
        k = a + n;
    }
    let mut ts = t0.wrapping_add(step.wrapping_mul(k as i64));
    for p in rest {
        while ts < p.t && k < len {
            k += 1;
            ts += step;
        }
        if k == len {
            break;
        }
        if ts != p.t {
            continue;
        }
        let c = &mut row[k];
        first.get_or_insert(k);
        if c.count == 0.0 {
            *c = Acc::first(op, p.v);
        } else {
            c.add(op, p.v);
        }
    }
    first
}

/// The first index of `samples` (sorted) at or after `t0`: looked up where
/// it would be if the points sat every `step` ms from the first (a range
/// function's output), else searched.
fn start_index(samples: &[Sample], t0: i64, step: i64) -> usize {
    let Some(p0) = samples.first() else {
        return 0;
    };
    if p0.t >= t0 {
        return 0;
    }
    if step > 0
        && let Some(ahead) = (t0 - p0.t).checked_add(step - 1)
        && let Ok(guess) = usize::try_from(ahead / step)
        && let Some(p) = samples.get(guess)
        && p.t >= t0
        && samples[guess - 1].t < t0
    {
        return guess;
    }
    samples.partition_point(|p| p.t < t0)
}

/// Adds every series' points at steps `s0..s1` into its group's
/// accumulators, series by series.
#[allow(clippy::too_many_arguments)]
fn add_steps(
    ev: &Ev<'_>,
    op: Op,
    ss: &[Series],
    series_group: &[usize],
    ng: usize,
    g: Grid,
    s0: usize,
    s1: usize,
) -> Result<StepPart, QueryError> {
    let len = s1 - s0;
    let mut cells = vec![
        Acc {
            value: 0.0,
            mean: 0.0,
            count: 0.0,
        };
        ng * len
    ];
    let mut first_at: Vec<(usize, usize)> = vec![(usize::MAX, usize::MAX); ng];
    let t0 = g.ts(s0);
    for (si, s) in ss.iter().enumerate() {
        if si % 256 == 0 {
            ev.check("expression evaluation")?;
        }
        let gi = series_group[si];
        let row = &mut cells[gi * len..(gi + 1) * len];
        let first = add_series(op, row, &s.samples, t0, g.step).map(|a| s0 + a);
        if let Some(f) = first
            && (f, si) < first_at[gi]
        {
            first_at[gi] = (f, si);
        }
    }
    Ok(StepPart {
        s0,
        s1,
        cells,
        first_at,
    })
}

/// Grouping labels of one series.
fn group_labels(l: &Labels, modifier: &Option<LabelModifier>) -> Labels {
    match modifier {
        None => Labels::new(),
        Some(LabelModifier::Include(ls)) => l.keep(&ls.labels),
        Some(LabelModifier::Exclude(ls)) => {
            let mut out = l.drop_names(&ls.labels);
            out.remove(METRIC_NAME);
            out
        }
    }
}

/// Go's strconv.FormatFloat(v, 'f', -1, 64).
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// 2^63: Go accepts floats up to float64(MaxInt64), which rounds to this.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

// steps index several parallel per-step arrays at once
#[allow(clippy::needless_range_loop)]
pub(crate) fn eval_aggregate(
    ev: &mut Ev<'_>,
    a: &AggregateExpr,
    g: Grid,
) -> Result<Out, QueryError> {
    let op = match a.op.to_string().as_str() {
        "sum" => Op::Sum,
        "avg" => Op::Avg,
        "min" => Op::Min,
        "max" => Op::Max,
        "count" => Op::Count,
        "group" => Op::Group,
        "stddev" => Op::Stddev,
        "stdvar" => Op::Stdvar,
        "topk" => Op::Topk,
        "bottomk" => Op::Bottomk,
        "quantile" => Op::Quantile,
        "count_values" => Op::CountValues,
        other => return Err(QueryError::NotImplemented(format!("aggregation {other}"))),
    };
    let param_expr: Option<&Expr> = a.param.as_deref();
    let mut param = Vec::new();
    let mut value_label = String::new();
    match op {
        Op::Topk | Op::Bottomk | Op::Quantile => {
            let p = param_expr.ok_or_else(|| exec("aggregation parameter missing"))?;
            param = ev.eval_scalar(p, g)?;
        }
        Op::CountValues => {
            let p = param_expr.ok_or_else(|| exec("aggregation parameter missing"))?;
            match ev.eval(p, g)? {
                Out::Str(s) => value_label = s,
                _ => return Err(exec("count_values parameter must be a string")),
            }
            if !valid_label_name(&value_label) {
                return Err(exec(format!("invalid label name {value_label:?}")));
            }
        }
        _ => {}
    }
    let ss = ev.eval_vector(&a.expr, g)?;
    if op == Op::CountValues {
        return count_values(ev, &ss, &a.modifier, &value_label, g);
    }
    // group of each series, computed once rather than per step
    let mut group_idx: HashMap<Labels, usize> = HashMap::new();
    let mut group_lbls: Vec<Labels> = Vec::new();
    let series_group: Vec<usize> = ss
        .iter()
        .map(|s| {
            let gl = group_labels(&s.labels, &a.modifier);
            *group_idx.entry(gl.clone()).or_insert_with(|| {
                group_lbls.push(gl);
                group_lbls.len() - 1
            })
        })
        .collect();
    let ng = group_lbls.len();
    // a state per cell pays when most cells get a value
    let cells = ng.saturating_mul(g.n());
    let points: usize = ss.iter().map(|s| s.samples.len()).sum();
    if !matches!(op, Op::Topk | Op::Bottomk | Op::Quantile)
        && cells <= BY_SERIES_MAX_CELLS
        && cells <= points.saturating_mul(4)
    {
        let out = by_series(ev, op, ss, &series_group, &group_lbls, g)?;
        let total = out.iter().map(|s| s.samples.len()).sum();
        ev.account(total)?;
        return Ok(Out::Vector(out));
    }
    let per_series_out = matches!(op, Op::Topk | Op::Bottomk);
    let mut out_of: Vec<Option<usize>> = vec![None; if per_series_out { ss.len() } else { ng }];
    let mut out: Vec<Series> = Vec::new();
    let mut acc = vec![Acc::default(); ng];
    let mut seen_step = vec![usize::MAX; ng];
    let mut order: Vec<usize> = Vec::new();
    let mut members: Vec<Vec<(usize, f64)>> = vec![Vec::new(); ng];
    let mut cur = Cursors::new(ss.len());
    let mut present = Vec::new();
    let mut scratch = Vec::new();
    for step in 0..g.n() {
        if step % 256 == 0 {
            ev.check("expression evaluation")?;
        }
        let ts = g.ts(step);
        // Prometheus checks k at every step, even where the input is empty
        if per_series_out {
            let kf = param[step];
            if !(-TWO_63..=TWO_63).contains(&kf) {
                return Err(exec(format!("Scalar value {kf} overflows int64")));
            }
        }
        cur.at(&ss, ts, &mut present);
        if present.is_empty() {
            continue;
        }
        order.clear();
        for &(si, v) in &present {
            let gi = series_group[si];
            if seen_step[gi] != step {
                seen_step[gi] = step;
                order.push(gi);
                acc[gi] = Acc::first(op, v);
                members[gi].clear();
                members[gi].push((si, v));
                continue;
            }
            match op {
                Op::Topk | Op::Bottomk | Op::Quantile => members[gi].push((si, v)),
                _ => acc[gi].add(op, v),
            }
        }
        let mut emit = |key: usize, labels: &dyn Fn() -> Labels, v: f64| {
            let oi = *out_of[key].get_or_insert_with(|| {
                out.push(Series {
                    labels: labels(),
                    samples: Vec::new(),
                });
                out.len() - 1
            });
            out[oi].samples.push(Sample::new(ts, v));
        };
        for &gi in &order {
            let st = acc[gi];
            let v = match op {
                Op::Quantile => {
                    scratch.clear();
                    scratch.extend(members[gi].iter().map(|m| m.1));
                    quantile(param[step], &mut scratch)
                }
                Op::Topk | Op::Bottomk => {
                    // range already checked at the top of the step
                    let k = param[step] as i64;
                    if k < 1 {
                        continue;
                    }
                    for (si, v) in select_k(&members[gi], k as usize, op == Op::Topk) {
                        emit(si, &|| ss[si].labels.clone(), v);
                    }
                    continue;
                }
                Op::CountValues => continue,
                _ => st.result(op),
            };
            emit(gi, &|| group_lbls[gi].clone(), v);
        }
    }
    let total = out.iter().map(|s| s.samples.len()).sum();
    ev.account(total)?;
    Ok(Out::Vector(out))
}

/// Prometheus' topk/bottomk, reproducing Go's container/heap moves and the
/// insertion sort Go uses for short slices, so ties come out in the same
/// order as upstream.
fn select_k(m: &[(usize, f64)], k: usize, top: bool) -> Vec<(usize, f64)> {
    // heap order: the root is the first to be evicted; NaN is always "less"
    let less = |a: f64, b: f64| -> bool {
        if a.is_nan() {
            return true;
        }
        if top { a < b } else { a > b }
    };
    let up = |h: &mut Vec<(usize, f64)>, mut j: usize| {
        while j > 0 {
            let i = (j - 1) / 2;
            if !less(h[j].1, h[i].1) {
                break;
            }
            h.swap(i, j);
            j = i;
        }
    };
    let down = |h: &mut Vec<(usize, f64)>, mut i: usize, n: usize| {
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            if j1 + 1 < n && less(h[j1 + 1].1, h[j1].1) {
                j = j1 + 1;
            }
            if !less(h[j].1, h[i].1) {
                break;
            }
            h.swap(i, j);
            i = j;
        }
    };
    let mut heap: Vec<(usize, f64)> = Vec::with_capacity(k.min(m.len()));
    for (n, &(si, v)) in m.iter().enumerate() {
        if n == 0 {
            heap.push((si, v));
            continue;
        }
        let h0 = heap[0].1;
        let replace = heap.len() < k || (if top { h0 < v } else { h0 > v }) || h0.is_nan();
        if !replace {
            continue;
        }
        if heap.len() == k {
            if k == 1 {
                heap[0] = (si, v);
                continue;
            }
            let last = heap.len() - 1;
            heap.swap(0, last);
            down(&mut heap, 0, last);
            heap.pop();
        }
        heap.push((si, v));
        let last = heap.len() - 1;
        up(&mut heap, last);
    }
    go_insertion_sort(&mut heap, |a, b| less(b.1, a.1));
    heap
}

/// Go's sort.Sort for slices of up to 12 elements is an insertion sort;
/// reproducing it keeps upstream's order among equal values.
pub(crate) fn go_insertion_sort<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && less(&v[j], &v[j - 1]) {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn count_values(
    ev: &mut Ev<'_>,
    ss: &[Series],
    modifier: &Option<LabelModifier>,
    label: &str,
    g: Grid,
) -> Result<Out, QueryError> {
    let mut idx: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<Series> = Vec::new();
    let mut cur = Cursors::new(ss.len());
    let mut present = Vec::new();
    for step in 0..g.n() {
        let ts = g.ts(step);
        cur.at(ss, ts, &mut present);
        for &(si, v) in &present {
            let mut l = ss[si].labels.clone();
            l.set(label, &format_value(v));
            let gl = match modifier {
                None => Labels::from_pairs([(label, format_value(v))]),
                Some(LabelModifier::Include(ls)) => {
                    let mut names = ls.labels.clone();
                    names.push(label.to_owned());
                    l.keep(&names)
                }
                Some(LabelModifier::Exclude(ls)) => {
                    // upstream drops the value label too when it is listed
                    let mut o = l.drop_names(&ls.labels);
                    o.remove(METRIC_NAME);
                    o
                }
            };
            let oi = *idx.entry(gl.clone()).or_insert_with(|| {
                out.push(Series {
                    labels: gl,
                    samples: Vec::new(),
                });
                out.len() - 1
            });
            match out[oi].samples.last_mut() {
                Some(p) if p.t == ts => p.v += 1.0,
                _ => out[oi].samples.push(Sample::new(ts, 1.0)),
            }
        }
    }
    let total = out.iter().map(|s| s.samples.len()).sum();
    ev.account(total)?;
    Ok(Out::Vector(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::CancelToken;

    #[test]
    fn select_k_keeps_best_and_earliest_on_ties() {
        let m = vec![(0, 1.0), (1, 5.0), (2, f64::NAN), (3, 5.0), (4, 3.0)];
        // the two 5s win over 3; their mutual order is unspecified upstream
        let mut top: Vec<usize> = select_k(&m, 2, true).iter().map(|x| x.0).collect();
        top.sort_unstable();
        assert_eq!(top, vec![1, 3]);
        let bottom = select_k(&m, 2, false);
        assert_eq!(bottom.iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 4]);
        // NaN only taken when nothing else fills k, and sorted last
        let all = select_k(&m, 5, true);
        assert_eq!(all.last().map(|x| x.0), Some(2));
    }

    #[test]
    fn by_series_matches_a_step_by_step_walk_values_and_order() {
        let g = Grid {
            start: 1_000,
            end: 61_000,
            step: 5_000,
        };
        let vals = [
            1.5,
            -2.0,
            f64::INFINITY,
            0.1,
            f64::NAN,
            3.0,
            f64::NEG_INFINITY,
            1e300,
            -0.0,
        ];
        // series of 4 groups, of three kinds (`j`): with a point at every
        // step of a run (starting late, ending early; first, so that they
        // open their groups' steps), with one point between two steps,
        // and each with its own gaps, some starting late
        let n = 13;
        // series 2 alone in its group
        let group_of = |i: usize| if i == 2 { 3 } else { (i * 7) % 3 };
        let ss: Vec<Series> = (0..n)
            .map(|i| {
                let j = (i + 9) % n;
                Series {
                    labels: Labels::from_pairs([
                        ("g", group_of(i).to_string()),
                        ("i", i.to_string()),
                    ]),
                    samples: (0..g.n())
                        .filter(|&k| match j {
                            0..9 => (k + j) % (2 + j % 3) != 0 && k >= j / 4,
                            9..12 => k >= (j - 9) * 2 && k + (j - 9) < g.n(),
                            _ => true,
                        })
                        .map(|k| {
                            let t = if j == 12 && k == 5 {
                                g.ts(k) + 1
                            } else {
                                g.ts(k)
                            };
                            // a group's only value -0.0 must stay -0.0
                            let v = if j >= 9 && k % 4 == 0 {
                                -0.0
                            } else {
                                vals[(k * 3 + j + 1) % vals.len()]
                            };
                            Sample::new(t, v)
                        })
                        .collect(),
                }
            })
            .collect();
        let group_of: Vec<usize> = (0..n).map(group_of).collect();
        let labels: Vec<Labels> = (0..4)
            .map(|k| Labels::from_pairs([("g", k.to_string())]))
            .collect();
        let q = crate::storage::MemStorage::new();
        let cancel = CancelToken::new();
        let ev = Ev::new_for_tests(&q, &cancel);
        for op in [
            Op::Sum,
            Op::Avg,
            Op::Min,
            Op::Max,
            Op::Count,
            Op::Group,
            Op::Stddev,
            Op::Stdvar,
        ] {
            // the reference: groups in order of first appearance, each step
            // adding its series in order
            let mut want: Vec<(usize, Vec<Sample>)> = Vec::new();
            for k in 0..g.n() {
                let ts = g.ts(k);
                let mut acc: Vec<Option<Acc>> = vec![None; 4];
                let mut order = Vec::new();
                for (si, s) in ss.iter().enumerate() {
                    let Some(p) = s.samples.iter().find(|p| p.t == ts) else {
                        continue;
                    };
                    let gi = group_of[si];
                    match &mut acc[gi] {
                        Some(a) => a.add(op, p.v),
                        None => {
                            acc[gi] = Some(Acc::first(op, p.v));
                            order.push(gi);
                        }
                    }
                }
                for gi in order {
                    let v = acc[gi].map(|a| a.result(op)).unwrap_or_default();
                    match want.iter_mut().find(|w| w.0 == gi) {
                        Some(w) => w.1.push(Sample::new(ts, v)),
                        None => want.push((gi, vec![Sample::new(ts, v)])),
                    }
                }
            }
            // on one thread, and split by steps over several
            for threads in [1, 2, 3, 5] {
                let got = by_series_on(&ev, op, &ss, &group_of, &labels, g, threads).unwrap();
                assert_eq!(got.len(), want.len(), "{threads} threads");
                for (s, (gi, w)) in got.iter().zip(&want) {
                    assert_eq!(s.labels, labels[*gi]);
                    let bits =
                        |v: &[Sample]| v.iter().map(|p| (p.t, p.v.to_bits())).collect::<Vec<_>>();
                    assert_eq!(bits(&s.samples), bits(w), "{threads} threads");
                }
            }
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(1e21), "1000000000000000000000");
    }
}
