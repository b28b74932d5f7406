//! Query entry points and the evaluator core: selectors, subqueries and the
//! step grid every node is evaluated on.
//!
//! Every node is evaluated once over the whole grid (like Prometheus'
//! `rangeEval`), and selectors read storage once for the whole range; windows
//! then slide over the selected samples instead of re-selecting per step.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pharos_model::{Labels, MatchOp, Matcher, Sample};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use crate::error::{QueryError, TOO_MANY_POINTS, exec};
pub use crate::parse::parse;
use crate::storage::{Queryable, Series};
use crate::value::Value;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample.
    pub lookback_delta: Duration,
    /// Upper bound on samples held while evaluating one query.
    pub max_samples: usize,
    pub timeout: Duration,
    /// Range queries with more steps than this are refused.
    pub max_points_per_series: i64,
    /// Step of subqueries written without one (`x[5m:]`); Prometheus uses
    /// the global evaluation interval.
    pub no_step_subquery_interval: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_points_per_series: 11_000,
            no_step_subquery_interval: Duration::from_secs(60),
        }
    }
}

/// Set by a caller (e.g. when the client disconnects) to stop a query; the
/// engine checks it between steps and series.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Self { opts }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    pub fn instant(&self, q: &dyn Queryable, query: &str, t: i64) -> Result<Value, QueryError> {
        self.instant_with_cancel(q, query, t, &CancelToken::new())
    }

    pub fn instant_with_cancel(
        &self,
        q: &dyn Queryable,
        query: &str,
        t: i64,
        cancel: &CancelToken,
    ) -> Result<Value, QueryError> {
        let expr = parse(query)?;
        let g = Grid {
            start: t,
            end: t,
            step: 1,
        };
        let started = Instant::now();
        let mut ev = Ev::new(q, &self.opts, t, t, cancel);
        let out = ev.eval(&expr, g);
        tracing::debug!(
            query,
            t,
            elapsed_ms = started.elapsed().as_millis() as u64,
            ok = out.is_ok(),
            "instant query"
        );
        let out = out?;
        Ok(match out {
            Out::Scalar(v) => Value::Scalar(t, v.first().copied().unwrap_or(f64::NAN)),
            Out::Vector(ss) => Value::Vector(
                ss.into_iter()
                    .filter_map(|s| s.samples.first().map(|p| (s.labels, t, p.v)))
                    .collect(),
            ),
            Out::Matrix(ss) => {
                Value::Matrix(ss.into_iter().map(|s| (s.labels, s.samples)).collect())
            }
            Out::Str(s) => Value::String(t, s),
        })
    }

    pub fn range(
        &self,
        q: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Value, QueryError> {
        self.range_with_cancel(q, query, start, end, step, &CancelToken::new())
    }

    pub fn range_with_cancel(
        &self,
        q: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        cancel: &CancelToken,
    ) -> Result<Value, QueryError> {
        if step <= 0 {
            return Err(QueryError::BadRequest(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(QueryError::BadRequest(
                "end timestamp must not be before start time".into(),
            ));
        }
        if end.saturating_sub(start) / step > self.opts.max_points_per_series {
            return Err(QueryError::BadRequest(TOO_MANY_POINTS.into()));
        }
        let expr = parse(query)?;
        match expr.value_type() {
            ValueType::Vector | ValueType::Scalar => {}
            t => {
                return Err(QueryError::BadRequest(format!(
                    "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                    type_name(t)
                )));
            }
        }
        let g = Grid { start, end, step };
        let started = Instant::now();
        let mut ev = Ev::new(q, &self.opts, start, end, cancel);
        let out = ev.eval(&expr, g);
        tracing::debug!(
            query,
            start,
            end,
            step,
            elapsed_ms = started.elapsed().as_millis() as u64,
            ok = out.is_ok(),
            "range query"
        );
        let out = out?;
        let mut mat: Vec<(Labels, Vec<Sample>)> = match out {
            Out::Scalar(v) => vec![(
                Labels::new(),
                v.iter()
                    .enumerate()
                    .map(|(i, v)| Sample::new(g.ts(i), *v))
                    .collect(),
            )],
            Out::Vector(ss) => ss
                .into_iter()
                .filter(|s| !s.samples.is_empty())
                .map(|s| (s.labels, s.samples))
                .collect(),
            Out::Matrix(_) | Out::Str(_) => {
                return Err(QueryError::BadRequest(
                    "invalid expression type for range query, must be Scalar or instant Vector"
                        .into(),
                ));
            }
        };
        mat.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Value::Matrix(mat))
    }
}

pub(crate) fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Scalar => "scalar",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

/// The timestamps a node is evaluated at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Grid {
    pub fn n(&self) -> usize {
        if self.end < self.start {
            0
        } else {
            ((self.end - self.start) / self.step) as usize + 1
        }
    }
    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
    pub fn idx(&self, t: i64) -> usize {
        ((t - self.start) / self.step) as usize
    }
}

/// What a node evaluates to over a grid. Vector series carry one point per
/// grid timestamp where they have a value.
pub(crate) enum Out {
    Scalar(Vec<f64>),
    Vector(Vec<Series>),
    Matrix(Vec<Series>),
    Str(String),
}

/// A range-vector argument: samples of each series (staleness markers
/// removed) and how each step's window is placed.
pub(crate) struct RangeInput {
    pub series: Vec<Series>,
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
    /// Equality matchers of a plain selector, for `absent_over_time`.
    pub absent_labels: Labels,
    /// Grid start when an `@` window drifts with the step (see
    /// [`Ev::range_input`]).
    pub drift_from: Option<i64>,
    /// The series may still hold staleness markers (and be empty without
    /// them), which windows must not see: dropping them per series where
    /// the series is evaluated (on several threads, while its samples are
    /// in cache) saves a pass over every sample before.
    pub stale_kept: bool,
}

/// Whether any sample is a staleness marker; branch-free, so it runs at
/// memory speed where `retain` would test sample by sample.
pub(crate) fn has_stale(samples: &[Sample]) -> bool {
    samples
        .iter()
        .fold(false, |a, p| a | (p.v.to_bits() == pharos_model::STALE_NAN))
}

impl RangeInput {
    pub fn ref_t(&self, ts: i64) -> i64 {
        let base = self.at.unwrap_or(ts).saturating_sub(self.offset);
        match (self.at, self.drift_from) {
            (Some(_), Some(start)) => base.saturating_add(ts - start),
            _ => base,
        }
    }

    /// Calls `f(step index, step time, window)` for every step; windows are
    /// closed on both ends as in Prometheus 2.x.
    pub fn windows(&self, samples: &[Sample], g: Grid, mut f: impl FnMut(usize, i64, &[Sample])) {
        self.window_ranges(samples, g, |i, ts, r| f(i, ts, &samples[r]));
    }

    /// [`RangeInput::windows`] with each window as its index range in
    /// `samples`, for callers that keep per-index data beside them. The
    /// bounds only move forward, so the walk is linear in the samples.
    #[inline(always)]
    pub fn window_ranges(
        &self,
        samples: &[Sample],
        g: Grid,
        mut f: impl FnMut(usize, i64, std::ops::Range<usize>),
    ) {
        let (mut lo, mut hi) = (0usize, 0usize);
        for i in 0..g.n() {
            let ts = g.ts(i);
            let maxt = self.ref_t(ts);
            let mint = maxt.saturating_sub(self.range);
            while lo < samples.len() && samples[lo].t < mint {
                lo += 1;
            }
            if hi < lo {
                hi = lo;
            }
            while hi < samples.len() && samples[hi].t <= maxt {
                hi += 1;
            }
            f(i, ts, lo..hi);
        }
    }
}

/// A matrix selector's window parameters and what to read for it.
pub(crate) struct MatrixSelection {
    pub input: RangeInput,
    pub matchers: Vec<Matcher>,
    pub mint: i64,
    pub maxt: i64,
}

pub(crate) struct Ev<'a> {
    q: &'a dyn Queryable,
    pub lookback: i64,
    max_samples: usize,
    samples: usize,
    pub qstart: i64,
    pub qend: i64,
    deadline: Instant,
    cancel: &'a CancelToken,
    sub_step: i64,
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Converts the parser's matchers (plus the metric name) to the model's.
pub fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, QueryError> {
    let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name
        && !vs
            .matchers
            .matchers
            .iter()
            .any(|m| m.name == pharos_model::METRIC_NAME && m.op == PMatchOp::Equal)
    {
        out.push(Matcher::equal(pharos_model::METRIC_NAME, name.clone()));
    }
    for m in &vs.matchers.matchers {
        let op = match m.op {
            PMatchOp::Equal => MatchOp::Equal,
            PMatchOp::NotEqual => MatchOp::NotEqual,
            PMatchOp::Re(_) => MatchOp::Regex,
            PMatchOp::NotRe(_) => MatchOp::NotRegex,
        };
        let matcher = Matcher::new(op, m.name.clone(), m.value.clone()).or_else(|e| {
            // Go's RE2 takes a `{` that starts no repetition as a literal;
            // the parser already rewrote such patterns into an escaped form
            // Rust accepts, so retry with that
            let rewritten = match &m.op {
                PMatchOp::Re(r) | PMatchOp::NotRe(r) => r
                    .as_str()
                    .strip_prefix("^(?:")
                    .and_then(|x| x.strip_suffix(")$"))
                    .map(str::to_owned),
                _ => None,
            };
            match rewritten {
                Some(v) if v != m.value => Matcher::new(op, m.name.clone(), v),
                _ => Err(e),
            }
            .map_err(|e| QueryError::Parse(format!("parse error: {e}")))
        })?;
        out.push(matcher);
    }
    Ok(out)
}

/// Labels `absent()` reports: equality matchers other than the name, each
/// label only if it is matched by exactly one equality.
pub(crate) fn absent_labels(vs: &VectorSelector) -> Labels {
    // applied in order like upstream's label builder: a later non-equality
    // or repeated matcher deletes the label
    let mut seen: Vec<String> = Vec::new();
    let mut set: Vec<(String, Option<String>)> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == pharos_model::METRIC_NAME {
            continue;
        }
        let value = if m.op == PMatchOp::Equal && !seen.contains(&m.name) {
            seen.push(m.name.clone());
            Some(m.value.clone())
        } else {
            None
        };
        match set.iter_mut().find(|(n, _)| *n == m.name) {
            Some(e) => e.1 = value,
            None => set.push((m.name.clone(), value)),
        }
    }
    Labels::from_pairs(set.into_iter().filter_map(|(n, v)| v.map(|v| (n, v))))
}

impl<'a> Ev<'a> {
    fn new(
        q: &'a dyn Queryable,
        opts: &EngineOptions,
        qstart: i64,
        qend: i64,
        cancel: &'a CancelToken,
    ) -> Self {
        // like Prometheus, a zero lookback means the 5m default
        let lookback = match opts.lookback_delta.as_millis() as i64 {
            0 => 300_000,
            ms => ms,
        };
        Self {
            q,
            lookback,
            max_samples: opts.max_samples,
            samples: 0,
            qstart,
            qend,
            deadline: Instant::now() + opts.timeout,
            cancel,
            sub_step: (opts.no_step_subquery_interval.as_millis() as i64).max(1),
        }
    }

    #[cfg(test)]
    pub(crate) fn new_for_tests(q: &'a dyn Queryable, cancel: &'a CancelToken) -> Self {
        Self::new(q, &EngineOptions::default(), 0, 0, cancel)
    }

    /// Checked between series and steps so a canceled or overdue query stops.
    pub fn check(&self, what: &'static str) -> Result<(), QueryError> {
        if self.cancel.is_canceled() {
            return Err(QueryError::Canceled(what));
        }
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout(what));
        }
        Ok(())
    }

    /// Counts samples the query holds and fails past the limit.
    pub fn account(&mut self, n: usize) -> Result<(), QueryError> {
        self.samples += n;
        if self.samples > self.max_samples {
            Err(QueryError::TooManySamples)
        } else {
            Ok(())
        }
    }

    pub fn resolve_at(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.qstart),
            Some(AtModifier::End) => Some(self.qend),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }

    fn select(&mut self, ms: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, QueryError> {
        self.check("query preparation")?;
        let mut ss = self.q.select(ms, mint, maxt)?;
        crate::storage::sort_by_labels(&mut ss);
        Ok(ss)
    }

    /// Evaluates a node. Sample accounting follows Prometheus' model: a
    /// node's inputs are released once it has produced its output, so the
    /// count tracks what is held at once (earlier siblings' outputs plus
    /// this node's), not everything ever read.
    pub fn eval(&mut self, e: &Expr, g: Grid) -> Result<Out, QueryError> {
        let before = self.samples;
        let out = self.eval_node(e, g)?;
        let held = match &out {
            Out::Scalar(v) => v.len(),
            Out::Vector(ss) | Out::Matrix(ss) => ss.iter().map(|s| s.samples.len()).sum(),
            Out::Str(_) => 0,
        };
        self.samples = before;
        self.account(held)?;
        Ok(out)
    }

    fn eval_node(&mut self, e: &Expr, g: Grid) -> Result<Out, QueryError> {
        self.check("expression evaluation")?;
        // every node holds up to one value per step; a grid larger than the
        // sample budget (e.g. a huge subquery) could never be answered
        if g.n() > self.max_samples {
            return Err(QueryError::TooManySamples);
        }
        match e {
            Expr::NumberLiteral(n) => Ok(Out::Scalar(vec![n.val; g.n()])),
            Expr::StringLiteral(s) => Ok(Out::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, g),
            Expr::Unary(u) => match self.eval(&u.expr, g)? {
                Out::Scalar(v) => Ok(Out::Scalar(v.into_iter().map(|x| -x).collect())),
                Out::Vector(ss) => {
                    let ss = ss
                        .into_iter()
                        .map(|s| Series {
                            labels: s.labels.without_metric_name(),
                            samples: s
                                .samples
                                .into_iter()
                                .map(|p| Sample::new(p.t, -p.v))
                                .collect(),
                        })
                        .collect();
                    Ok(Out::Vector(finish_matrix(ss)?))
                }
                _ => Err(exec(
                    "unary negation is only defined for scalars and vectors",
                )),
            },
            Expr::VectorSelector(vs) => Ok(Out::Vector(self.eval_vs(vs, g, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                // only reachable as the top of an instant query
                let ri = self.range_input(e, g, false, false)?;
                let mut out = Vec::new();
                for s in &ri.series {
                    let maxt = ri.ref_t(g.start);
                    let w: Vec<Sample> = s
                        .samples
                        .iter()
                        .filter(|p| p.t >= maxt - ri.range && p.t <= maxt)
                        .copied()
                        .collect();
                    if !w.is_empty() {
                        out.push(Series {
                            labels: s.labels.clone(),
                            samples: w,
                        });
                    }
                }
                Ok(Out::Matrix(out))
            }
            Expr::Call(c) => crate::functions::eval_call(self, c, g),
            Expr::Aggregate(a) => crate::aggregate::eval_aggregate(self, a, g),
            Expr::Binary(b) => crate::binary::eval_binary(self, b, g),
            Expr::Extension(_) => Err(QueryError::NotImplemented("extension expressions".into())),
        }
    }

    /// Evaluates to an instant vector, turning a scalar into one series
    /// without labels (as subqueries over scalars need).
    pub fn eval_vector(&mut self, e: &Expr, g: Grid) -> Result<Vec<Series>, QueryError> {
        match self.eval(e, g)? {
            Out::Vector(v) => Ok(v),
            Out::Scalar(v) => Ok(vec![Series {
                labels: Labels::new(),
                samples: v
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Sample::new(g.ts(i), v))
                    .collect(),
            }]),
            _ => Err(exec("expected instant vector")),
        }
    }

    pub fn eval_scalar(&mut self, e: &Expr, g: Grid) -> Result<Vec<f64>, QueryError> {
        match self.eval(e, g)? {
            Out::Scalar(v) => Ok(v),
            _ => Err(exec("expected scalar")),
        }
    }

    /// Instant vector selector: the newest sample at or before each step
    /// within the lookback delta, unless it is a staleness marker. With
    /// `raw_ts` the value is the sample's own timestamp in seconds.
    pub fn eval_vs(
        &mut self,
        vs: &VectorSelector,
        g: Grid,
        raw_ts: bool,
    ) -> Result<Vec<Series>, QueryError> {
        let ms = selector_matchers(vs)?;
        let off = offset_ms(&vs.offset);
        let at = self.resolve_at(&vs.at);
        let ref0 = at.unwrap_or(g.start).saturating_sub(off);
        let ref1 = at.unwrap_or(g.end).saturating_sub(off);
        let sel = self.select(&ms, ref0.saturating_sub(self.lookback), ref1)?;
        let n = g.n();
        let mut out = Vec::with_capacity(sel.len());
        let mut total = 0;
        for s in sel {
            self.check("expression evaluation")?;
            let mut pts = Vec::with_capacity(n.min(s.samples.len() * 4 + 1));
            let mut j = 0usize;
            for i in 0..n {
                let ts = g.ts(i);
                let r = at.unwrap_or(ts).saturating_sub(off);
                while j < s.samples.len() && s.samples[j].t <= r {
                    j += 1;
                }
                if j == 0 {
                    continue;
                }
                let smp = s.samples[j - 1];
                if smp.t < r.saturating_sub(self.lookback) || smp.is_stale() {
                    continue;
                }
                let v = if raw_ts { smp.t as f64 / 1000.0 } else { smp.v };
                pts.push(Sample::new(ts, v));
            }
            if !pts.is_empty() {
                total += pts.len();
                out.push(Series {
                    labels: s.labels,
                    samples: pts,
                });
            }
        }
        self.account(total)?;
        Ok(out)
    }

    /// Evaluates a range selector or subquery argument (parentheses allowed).
    ///
    /// `drift` reproduces how Prometheus 2.42 evaluates `@` under functions
    /// that depend on the evaluation time (`predict_linear`): the `@` is
    /// turned into an offset relative to the grid start, so the window moves
    /// with each step instead of staying at the `@` time.
    ///
    /// With `keep_stale`, a selector's staleness markers are left in the
    /// series for the caller to drop (see [`RangeInput::stale_kept`]).
    /// For a matrix selector (else `None`): its [`RangeInput`] without
    /// series, and the selection that reads them.
    pub(crate) fn matrix_selection(
        &self,
        e: &Expr,
        g: Grid,
        drift: bool,
        keep_stale: bool,
    ) -> Result<Option<MatrixSelection>, QueryError> {
        let Expr::MatrixSelector(m) = unwrap_parens(e) else {
            return Ok(None);
        };
        let span = if drift { g.end - g.start } else { 0 };
        let vs = &m.vs;
        let matchers = selector_matchers(vs)?;
        let offset = offset_ms(&vs.offset);
        let at = self.resolve_at(&vs.at);
        let range = m.range.as_millis() as i64;
        let ref0 = at.unwrap_or(g.start).saturating_sub(offset);
        let mut ref1 = at.unwrap_or(g.end).saturating_sub(offset);
        if at.is_some() {
            ref1 = ref1.saturating_add(span);
        }
        Ok(Some(MatrixSelection {
            input: RangeInput {
                series: Vec::new(),
                range,
                offset,
                at,
                absent_labels: absent_labels(vs),
                drift_from: drift.then_some(g.start),
                stale_kept: keep_stale,
            },
            matchers,
            mint: ref0.saturating_sub(range),
            maxt: ref1,
        }))
    }

    /// The storage this evaluation reads.
    pub(crate) fn storage(&self) -> &dyn Queryable {
        self.q
    }

    pub fn range_input(
        &mut self,
        e: &Expr,
        g: Grid,
        drift: bool,
        keep_stale: bool,
    ) -> Result<RangeInput, QueryError> {
        let span = if drift { g.end - g.start } else { 0 };
        if let Some(sel) = self.matrix_selection(e, g, drift, keep_stale)? {
            let mut ri = sel.input;
            let mut series = self.select(&sel.matchers, sel.mint, sel.maxt)?;
            if !keep_stale {
                for s in &mut series {
                    if has_stale(&s.samples) {
                        s.samples.retain(|p| !p.is_stale());
                    }
                }
                series.retain(|s| !s.samples.is_empty());
            }
            ri.series = series;
            return Ok(ri);
        }
        match unwrap_parens(e) {
            Expr::Subquery(sq) => {
                let offset = offset_ms(&sq.offset);
                let at = self.resolve_at(&sq.at);
                let range = sq.range.as_millis() as i64;
                let step = match &sq.step {
                    Some(d) if d.as_millis() > 0 => d.as_millis() as i64,
                    _ => self.sub_step,
                };
                let first = at
                    .unwrap_or(g.start)
                    .saturating_sub(offset)
                    .saturating_sub(range);
                let mut last = at.unwrap_or(g.end).saturating_sub(offset);
                if at.is_some() {
                    last = last.saturating_add(span);
                }
                // inner steps sit on absolute multiples of the step
                let mut start = step * (first / step);
                if start < first {
                    start += step;
                }
                let inner = Grid {
                    start,
                    end: last,
                    step,
                };
                let series = if inner.n() == 0 {
                    Vec::new()
                } else {
                    self.eval_vector(&sq.expr, inner)?
                };
                Ok(RangeInput {
                    series,
                    range,
                    offset,
                    at,
                    absent_labels: Labels::new(),
                    drift_from: drift.then_some(g.start),
                    stale_kept: false,
                })
            }
            _ => Err(exec("expected range vector")),
        }
    }
}

/// Input samples below which a node is evaluated on one thread: starting
/// threads costs tens of microseconds, reading this many samples a few
/// milliseconds.
const PARALLEL_MIN_SAMPLES: usize = 100_000;

/// Threads a query node may use at once.
fn query_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Threads for work of `work` samples: one below the parallel threshold.
pub(crate) fn threads_for(work: usize) -> usize {
    if work < PARALLEL_MIN_SAMPLES {
        1
    } else {
        query_threads()
    }
}

/// Runs `f` over consecutive chunks of `items`, on several threads when
/// `work` (the samples they hold) is large enough, and returns the
/// results in chunk order. Chunks are handed over by value, so `f` can
/// drop every item as soon as it is done with it: a series' freed buffer
/// then serves the next allocation of that size on the same thread while
/// still in cache, instead of all inputs staying alive until the end and
/// the outputs taking fresh pages.
pub(crate) fn par_chunks_owned<T: Send, R: Send>(
    items: Vec<T>,
    work: usize,
    f: impl Fn(Vec<T>) -> R + Sync,
) -> Vec<R> {
    let threads = if work < PARALLEL_MIN_SAMPLES {
        1
    } else {
        query_threads().min(items.len())
    };
    if threads <= 1 {
        return vec![f(items)];
    }
    pharos_core::parallel::map_chunks(items, threads, CHUNKS_PER_THREAD, f)
}

/// Chunks per thread in [`par_chunks_owned`].
const CHUNKS_PER_THREAD: usize = 4;

/// Merges series that ended up with the same labels (allowed when they
/// never share a step, as in Prometheus' range evaluation), failing when
/// two values land on one step.
pub(crate) fn finish_matrix(ss: Vec<Series>) -> Result<Vec<Series>, QueryError> {
    if ss.len() < 2 {
        return Ok(ss);
    }
    let mut idx: HashMap<Labels, usize> = HashMap::with_capacity(ss.len());
    let mut out: Vec<Series> = Vec::with_capacity(ss.len());
    for s in ss {
        match idx.entry(s.labels) {
            Entry::Vacant(v) => {
                let labels = v.key().clone();
                v.insert(out.len());
                out.push(Series {
                    labels,
                    samples: s.samples,
                });
            }
            Entry::Occupied(o) => {
                let dst = &mut out[*o.get()].samples;
                let mut merged = Vec::with_capacity(dst.len() + s.samples.len());
                let (mut i, mut j) = (0, 0);
                while i < dst.len() || j < s.samples.len() {
                    if j == s.samples.len() || (i < dst.len() && dst[i].t < s.samples[j].t) {
                        merged.push(dst[i]);
                        i += 1;
                    } else if i == dst.len() || s.samples[j].t < dst[i].t {
                        merged.push(s.samples[j]);
                        j += 1;
                    } else {
                        return Err(exec("vector cannot contain metrics with the same labelset"));
                    }
                }
                *dst = merged;
            }
        }
    }
    Ok(out)
}

/// Per-step cursors over series whose points sit on a grid.
pub(crate) struct Cursors {
    pos: Vec<usize>,
}

impl Cursors {
    pub fn new(n: usize) -> Self {
        Self { pos: vec![0; n] }
    }

    /// Fills `out` with (series index, value) of series having a point at `ts`.
    pub fn at(&mut self, ss: &[Series], ts: i64, out: &mut Vec<(usize, f64)>) {
        out.clear();
        for (i, s) in ss.iter().enumerate() {
            let p = &mut self.pos[i];
            while *p < s.samples.len() && s.samples[*p].t < ts {
                *p += 1;
            }
            if *p < s.samples.len() && s.samples[*p].t == ts {
                out.push((i, s.samples[*p].v));
            }
        }
    }
}
