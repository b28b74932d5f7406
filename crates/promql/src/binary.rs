//! Binary operators: arithmetic, comparisons (with `bool`), set operators,
//! and vector matching with `on`/`ignoring`/`group_left`/`group_right`.

use std::collections::HashMap;

use pharos_model::{Labels, METRIC_NAME, Sample};
use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB, TokenId,
};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use crate::engine::{Cursors, Ev, Grid, Out, finish_matrix};
use crate::error::{QueryError, exec};
use crate::storage::Series;

/// Arithmetic drops the metric name; comparisons and (surprisingly) atan2
/// keep it, as in Prometheus 2.42.
fn drops_name(op: TokenId) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_POW | T_MOD)
}

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// (value, keep) as Prometheus' vectorElemBinop: comparisons keep the left
/// value when true.
fn elem(op: TokenId, l: f64, r: f64) -> Result<(f64, bool), QueryError> {
    Ok(match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_POW => (l.powf(r), true),
        T_MOD => (l % r, true),
        T_ATAN2 => (l.atan2(r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => return Err(exec("operator not allowed here")),
    })
}

pub(crate) fn eval_binary(ev: &mut Ev<'_>, b: &BinaryExpr, g: Grid) -> Result<Out, QueryError> {
    let op = b.op.id();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs, g)?;
    let rhs = ev.eval(&b.rhs, g)?;
    match (lhs, rhs) {
        (Out::Scalar(l), Out::Scalar(r)) => {
            let mut out = Vec::with_capacity(l.len());
            for (a, c) in l.into_iter().zip(r) {
                let (v, keep) = elem(op, a, c)?;
                out.push(if is_comparison(op) {
                    f64::from(u8::from(keep))
                } else {
                    v
                });
            }
            Ok(Out::Scalar(out))
        }
        (Out::Vector(v), Out::Scalar(s)) => vector_scalar(op, v, &s, false, return_bool, g),
        (Out::Scalar(s), Out::Vector(v)) => vector_scalar(op, v, &s, true, return_bool, g),
        (Out::Vector(l), Out::Vector(r)) => {
            let (on, names): (bool, Vec<String>) =
                match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
                    Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
                    Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
                    None => (false, Vec::new()),
                };
            let card = b
                .modifier
                .as_ref()
                .map(|m| m.card.clone())
                .unwrap_or(VectorMatchCardinality::OneToOne);
            let m = Matching { on, names, card };
            match op {
                T_LAND | T_LOR | T_LUNLESS => set_op(ev, op, l, r, &m, g),
                _ => vector_vector(ev, op, l, r, &m, return_bool, g),
            }
        }
        _ => Err(exec("binary operator on unsupported operand types")),
    }
}

fn vector_scalar(
    op: TokenId,
    v: Vec<Series>,
    s: &[f64],
    swap: bool,
    return_bool: bool,
    g: Grid,
) -> Result<Out, QueryError> {
    let cmp = is_comparison(op);
    let drop_name = drops_name(op) || return_bool;
    let mut out = Vec::with_capacity(v.len());
    for series in v {
        let mut pts = Vec::with_capacity(series.samples.len());
        for p in &series.samples {
            let sv = s[g.idx(p.t)];
            let (l, r) = if swap { (sv, p.v) } else { (p.v, sv) };
            let (mut val, mut keep) = elem(op, l, r)?;
            if cmp && swap {
                val = r;
            }
            if return_bool {
                val = f64::from(u8::from(keep));
                keep = true;
            }
            if keep {
                pts.push(Sample::new(p.t, val));
            }
        }
        if !pts.is_empty() {
            out.push(Series {
                labels: if drop_name {
                    series.labels.without_metric_name()
                } else {
                    series.labels
                },
                samples: pts,
            });
        }
    }
    Ok(Out::Vector(finish_matrix(out)?))
}

struct Matching {
    on: bool,
    names: Vec<String>,
    card: VectorMatchCardinality,
}

impl Matching {
    fn signature(&self, l: &Labels) -> Labels {
        if self.on {
            l.keep(&self.names)
        } else {
            let mut o = l.drop_names(&self.names);
            o.remove(METRIC_NAME);
            o
        }
    }
}

/// Interns the signature of each series so steps compare small integers.
fn signatures(m: &Matching, sides: [&[Series]; 2]) -> (Vec<u32>, Vec<u32>, Vec<Labels>) {
    let mut ids: HashMap<Labels, u32> = HashMap::new();
    let mut names: Vec<Labels> = Vec::new();
    let mut per = [Vec::new(), Vec::new()];
    for (k, side) in sides.iter().enumerate() {
        for s in side.iter() {
            let sig = m.signature(&s.labels);
            let id = *ids.entry(sig.clone()).or_insert_with(|| {
                names.push(sig);
                (names.len() - 1) as u32
            });
            per[k].push(id);
        }
    }
    let [a, b] = per;
    (a, b, names)
}

fn set_op(
    ev: &mut Ev<'_>,
    op: TokenId,
    l: Vec<Series>,
    r: Vec<Series>,
    m: &Matching,
    g: Grid,
) -> Result<Out, QueryError> {
    let (lsig, rsig, sigs) = signatures(m, [&l, &r]);
    let mut mark = vec![usize::MAX; sigs.len()];
    let (mut lc, mut rc) = (Cursors::new(l.len()), Cursors::new(r.len()));
    let (mut lp, mut rp) = (Vec::new(), Vec::new());
    let mut lout: Vec<Vec<Sample>> = vec![Vec::new(); l.len()];
    let mut rout: Vec<Vec<Sample>> = vec![Vec::new(); r.len()];
    for step in 0..g.n() {
        if step % 256 == 0 {
            ev.check("expression evaluation")?;
        }
        let ts = g.ts(step);
        lc.at(&l, ts, &mut lp);
        rc.at(&r, ts, &mut rp);
        match op {
            T_LAND | T_LUNLESS => {
                for &(ri, _) in &rp {
                    mark[rsig[ri] as usize] = step;
                }
                for &(li, v) in &lp {
                    let matched = mark[lsig[li] as usize] == step;
                    if matched == (op == T_LAND) {
                        lout[li].push(Sample::new(ts, v));
                    }
                }
            }
            _ => {
                for &(li, v) in &lp {
                    mark[lsig[li] as usize] = step;
                    lout[li].push(Sample::new(ts, v));
                }
                for &(ri, v) in &rp {
                    if mark[rsig[ri] as usize] != step {
                        rout[ri].push(Sample::new(ts, v));
                    }
                }
            }
        }
    }
    let mut out = Vec::with_capacity(l.len() + r.len());
    for (s, pts) in l.into_iter().zip(lout).chain(r.into_iter().zip(rout)) {
        if !pts.is_empty() {
            out.push(Series {
                labels: s.labels,
                samples: pts,
            });
        }
    }
    Ok(Out::Vector(finish_matrix(out)?))
}

#[allow(clippy::too_many_arguments)]
fn vector_vector(
    ev: &mut Ev<'_>,
    op: TokenId,
    l: Vec<Series>,
    r: Vec<Series>,
    m: &Matching,
    return_bool: bool,
    g: Grid,
) -> Result<Out, QueryError> {
    let (include, one_to_many) = match &m.card {
        VectorMatchCardinality::ManyToOne(ls) => (ls.labels.clone(), false),
        VectorMatchCardinality::OneToMany(ls) => (ls.labels.clone(), true),
        _ => (Vec::new(), false),
    };
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
    // the "many" side is iterated, the "one" side is hashed
    let (many, one) = if one_to_many { (&r, &l) } else { (&l, &r) };
    let (msig, osig, sigs) = signatures(m, [many, one]);
    let drop_name = drops_name(op) || return_bool;

    let mut one_at: Vec<(usize, usize)> = vec![(usize::MAX, 0); sigs.len()];
    let mut matched_at: Vec<usize> = vec![usize::MAX; sigs.len()];
    let mut pair_out: HashMap<(u32, u32), usize> = HashMap::new();
    // a many-side series nearly always meets the same one-side series on
    // every step; remembering the last pairing skips the hash lookup
    let mut last_pair: Vec<(usize, usize)> = vec![(usize::MAX, 0); many.len()];
    // signature that produced each output's latest point
    let mut out_sig: Vec<usize> = Vec::new();
    let mut out_idx: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<Series> = Vec::new();
    let (mut mc, mut oc) = (Cursors::new(many.len()), Cursors::new(one.len()));
    let (mut mp, mut op_) = (Vec::new(), Vec::new());
    let mut one_vals: Vec<f64> = vec![0.0; one.len()];
    for step in 0..g.n() {
        if step % 256 == 0 {
            ev.check("expression evaluation")?;
        }
        let ts = g.ts(step);
        mc.at(many, ts, &mut mp);
        oc.at(one, ts, &mut op_);
        // nothing can match, and Prometheus answers empty before it looks
        // for duplicate match groups on the other side
        if mp.is_empty() || op_.is_empty() {
            continue;
        }
        for &(oi, v) in &op_ {
            let sig = osig[oi] as usize;
            if one_at[sig].0 == step {
                let dup = one_at[sig].1;
                let side = if one_to_many { "left" } else { "right" };
                return Err(exec(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    sigs[sig], one[oi].labels, one[dup].labels
                )));
            }
            one_at[sig] = (step, oi);
            one_vals[oi] = v;
        }
        for &(mi, v) in &mp {
            let sig = msig[mi] as usize;
            if one_at[sig].0 != step {
                continue;
            }
            let oi = one_at[sig].1;
            let (vl, vr) = if one_to_many {
                (one_vals[oi], v)
            } else {
                (v, one_vals[oi])
            };
            let (mut val, keep) = elem(op, vl, vr)?;
            if return_bool {
                val = f64::from(u8::from(keep));
            } else if !keep {
                continue;
            }
            let key = (mi as u32, oi as u32);
            let cached = (last_pair[mi].0 == oi).then_some(last_pair[mi].1);
            let idx = match cached.or_else(|| pair_out.get(&key).copied()) {
                Some(i) => i,
                None => {
                    let mut lb = many[mi].labels.clone();
                    if drop_name {
                        lb.remove(METRIC_NAME);
                    }
                    if one_to_one {
                        lb = if m.on {
                            lb.keep(&m.names)
                        } else {
                            lb.drop_names(&m.names)
                        };
                    }
                    for n in &include {
                        let v = one[oi].labels.get(n).unwrap_or("").to_owned();
                        lb.set(n, &v);
                    }
                    let i = match out_idx.get(&lb) {
                        Some(i) => *i,
                        None => {
                            out.push(Series {
                                labels: lb.clone(),
                                samples: Vec::new(),
                            });
                            out_sig.push(usize::MAX);
                            out_idx.insert(lb, out.len() - 1);
                            out.len() - 1
                        }
                    };
                    pair_out.insert(key, i);
                    i
                }
            };
            last_pair[mi] = (oi, idx);
            if one_to_one {
                if matched_at[sig] == step {
                    return Err(exec(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
                matched_at[sig] = step;
            }
            let dst = &mut out[idx].samples;
            if dst.last().is_some_and(|p| p.t == ts) {
                // the same result labels twice in one step: from one match
                // group it is a grouping error, across groups a collision
                return Err(exec(if !one_to_one && out_sig[idx] == sig {
                    "multiple matches for labels: grouping labels must ensure unique matches"
                } else {
                    "vector cannot contain metrics with the same labelset"
                }));
            }
            dst.push(Sample::new(ts, val));
            out_sig[idx] = sig;
        }
    }
    out.retain(|s| !s.samples.is_empty());
    let total = out.iter().map(|s| s.samples.len()).sum();
    ev.account(total)?;
    Ok(Out::Vector(out))
}
