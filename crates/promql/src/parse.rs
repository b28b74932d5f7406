//! The parsing front end: `promql-parser` plus the checks that make it
//! answer like Prometheus 2.42's parser.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{LazyLock, Once};

use pharos_core::cache::TextCache;

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Expr, VectorSelector};

use crate::engine::type_name;
use crate::error::QueryError;

/// Functions that exist in Prometheus 2.42; the parser knows newer ones too,
/// which 2.42 rejects as unknown.
const FUNCTIONS_242: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "label_join",
    "ln",
    "log10",
    "log2",
    "last_over_time",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// Parses a query, rejecting syntax Prometheus 2.42 does not know.
/// Errors carry Prometheus' `line:col:` prefix where the position can be
/// found (see [`locate`]).
///
/// Queries that parse are kept: dashboards and rules send the same few
/// texts again and again, and parsing compiles every regex matcher anew,
/// most of a small query's cost.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    PARSED.get_or_try(query, |q| parse_unlocated(q).map_err(|e| locate(q, e)))
}

static PARSED: LazyLock<TextCache<Expr>> = LazyLock::new(|| TextCache::new(1024, 4096));

fn parse_unlocated(query: &str) -> Result<Expr, QueryError> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // holt_winters was renamed in Prometheus 3 and the parser dropped it
        let hw = promql_parser::parser::Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        );
        if let Err(e) = promql_parser::parser::register_extra_functions(vec![hw]) {
            tracing::warn!(error = %e, "could not register holt_winters");
        }
    });
    // Literal limits are checked on the text first: the parser panics on
    // some out-of-range values and silently saturates others.
    check_lexical(query)?;
    let rw = rewrite(query);
    let expr = parse_guarded(&rw.text)?;
    check_242(&expr)?;
    if let Some(neg) = &rw.plus_as_minus {
        check_unary_plus(neg)?;
    }
    Ok(expr)
}

/// Runs `promql-parser`, turning a panic inside it into a parse error so
/// that no query text can take the caller down.
fn parse_guarded(text: &str) -> Result<Expr, QueryError> {
    match catch_unwind(AssertUnwindSafe(|| promql_parser::parser::parse(text))) {
        Ok(r) => r.map_err(|e| parser_error(&e)),
        Err(_) => {
            #[cfg(test)]
            tests::GUARD_FIRED.with(|n| n.set(n.get() + 1));
            tracing::warn!(query = text, "promql-parser panicked on a query");
            Err(QueryError::Parse(
                "parse error: invalid query (number or duration out of range)".into(),
            ))
        }
    }
}

fn parser_error(m: &str) -> QueryError {
    if m.contains("unary expression only allowed") {
        // the parser names the operand's type its own way
        unary_type_error(if m.contains("matrix") {
            "range vector"
        } else {
            "string"
        })
    } else {
        QueryError::Parse(format!("parse error: {}", prometheus_wording(m)))
    }
}

/// `promql-parser`'s messages in Prometheus 2.42's words: its type names
/// (`vector`, `matrix`), its single quotes around names, and one message
/// it uses for both an aggregation's operand and its parameter.
fn prometheus_wording(m: &str) -> String {
    let mut s = m
        .replace("type vector", "type instant vector")
        .replace("type matrix", "type range vector")
        .replace(", got vector", ", got instant vector")
        .replace(", got matrix", ", got range vector")
        .replace(
            "an vector selector or matrix selector",
            "an instant vector selector or range vector selector",
        );
    // Prometheus names the wanted type in its documented form and the
    // found one in its internal form here
    s = s.replace(
        "subquery is only allowed on vector, got range vector instead",
        "subquery is only allowed on instant vector, got matrix instead",
    );
    for param in ["scalar", "string"] {
        s = s.replace(
            &format!("expected type {param} in aggregation expression"),
            &format!("expected type {param} in aggregation parameter"),
        );
    }
    // 'name' -> "name"
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(open) = rest.find('\'') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(after.len());
        if len > 0 && after[len..].starts_with('\'') {
            out.push('"');
            out.push_str(&after[..len]);
            out.push('"');
            rest = &after[len + 1..];
        } else {
            out.push('\'');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The calls named in a message about a function's arguments:
/// `expected N argument(s) in call to "f"` sits at the call, `expected type
/// T in call to function "f"` at the first argument of the wrong type.
fn call_error_position(q: &str, m: &str) -> Option<usize> {
    let name_of = |key: &str| {
        let rest = m.split(key).nth(1)?;
        let rest = rest.strip_prefix('"')?;
        rest.split('"').next()
    };
    if let Some(name) = name_of("argument(s) in call to ") {
        return function_position(q, name);
    }
    let name = name_of("in call to function ")?;
    let (want, got) = expected_got(m)?;
    let b = q.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    for (at, _) in q.match_indices(name) {
        let end = at + name.len();
        if (at > 0 && ident(b[at - 1])) || b.get(end).is_some_and(|&c| ident(c)) {
            continue;
        }
        let Some(open) = q[end..]
            .find(|c: char| !c.is_whitespace())
            .map(|i| end + i)
            .filter(|&i| b[i] == b'(')
        else {
            continue;
        };
        let Some(args) = bracket_items(q, open) else {
            continue;
        };
        if args.len() == 1 {
            return Some(args[0].0);
        }
        let Some(sig) = arg_types(name) else { continue };
        // the first argument that does not have its type, as upstream
        // checks them in order
        for (i, &(a, z)) in args.iter().enumerate() {
            let Some(&expected) = sig.get(i).or(sig.last()) else {
                break;
            };
            let Some(t) = text_type(&q[a..z]) else { break };
            if t != expected {
                if type_name(expected) == want && type_name(t) == got {
                    return Some(a);
                }
                break;
            }
        }
    }
    None
}

/// Argument types of Prometheus 2.42's functions that take more than one
/// argument (the last one repeats for variadic ones).
fn arg_types(name: &str) -> Option<&'static [ValueType]> {
    use ValueType::{Matrix as M, Scalar as S, String as T, Vector as V};
    Some(match name {
        "clamp" => &[V, S, S],
        "clamp_max" | "clamp_min" | "round" => &[V, S],
        "histogram_fraction" => &[S, S, V],
        "histogram_quantile" => &[S, V],
        "holt_winters" => &[M, S, S],
        "label_join" | "label_replace" => &[V, T],
        "predict_linear" => &[M, S],
        "quantile_over_time" => &[S, M],
        _ => return None,
    })
}

/// The wanted and found type names of an `expected type T ..., got G`
/// message.
fn expected_got(m: &str) -> Option<(&str, &str)> {
    let rest = m.split("expected type ").nth(1)?;
    let want = rest.split(" in ").next()?;
    let got = rest.rsplit(", got ").next()?;
    Some((want, got))
}

/// Type of a piece of query text parsed on its own, if it parses.
fn text_type(text: &str) -> Option<ValueType> {
    parse_guarded(&rewrite(text).text)
        .ok()
        .map(|e| e.value_type())
}

/// Byte ranges (trimmed) of the comma-separated items inside the bracket
/// opened at `open`, or None when it is not closed.
fn bracket_items(q: &str, open: usize) -> Option<Vec<(usize, usize)>> {
    let b = q.as_bytes();
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = open + 1;
    let mut i = open + 1;
    let mut quote = None;
    let push = |a: usize, z: usize, items: &mut Vec<(usize, usize)>| {
        let t = &q[a..z];
        let lead = t.len() - t.trim_start().len();
        if !t.trim().is_empty() {
            items.push((a + lead, a + lead + t.trim().len()));
        }
    };
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(qc) if c == b'\\' && qc != b'`' => i += 1,
            Some(qc) if c == qc => quote = None,
            Some(_) => {}
            None => match c {
                b'"' | b'\'' | b'`' => quote = Some(c),
                b'#' => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth == 0 => {
                    push(start, i, &mut items);
                    return Some(items);
                }
                b')' | b']' | b'}' => depth -= 1,
                b',' if depth == 0 => {
                    push(start, i, &mut items);
                    start = i + 1;
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

/// Aggregation operators of Prometheus 2.42.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];

/// Where an aggregation's operand (`parameter` false) or parameter has
/// the type `got`: the first aggregation in the text with one.
fn aggregation_error_position(q: &str, m: &str) -> Option<usize> {
    let (_, got) = expected_got(m)?;
    let param = m.contains("in aggregation parameter");
    let b = q.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut i = 0;
    while i < b.len() {
        if !ident(b[i]) || (i > 0 && ident(b[i - 1])) {
            i += 1;
            continue;
        }
        let end = (i..b.len()).find(|&k| !ident(b[k])).unwrap_or(b.len());
        let word = &q[i..end];
        i = end;
        if !AGGREGATIONS.contains(&word) {
            continue;
        }
        // optional `by (...)` / `without (...)` before the operands
        let mut k = skip_space(q, end);
        for kw in ["by", "without"] {
            if q[k..].starts_with(kw) && !b.get(k + kw.len()).is_some_and(|&c| ident(c)) {
                let open = skip_space(q, k + kw.len());
                if b.get(open) == Some(&b'(') {
                    let close = matching_close(q, open)?;
                    k = skip_space(q, close + 1);
                }
            }
        }
        if b.get(k) != Some(&b'(') {
            continue;
        }
        let Some(items) = bracket_items(q, k) else {
            continue;
        };
        let pick = match (param, items.len()) {
            (true, 2) => items[0],
            (false, 1 | 2) => items[items.len() - 1],
            _ => continue,
        };
        if text_type(&q[pick.0..pick.1]).is_some_and(|t| type_name(t) == got) {
            return Some(pick.0);
        }
    }
    None
}

fn skip_space(q: &str, i: usize) -> usize {
    q[i.min(q.len())..]
        .find(|c: char| !c.is_whitespace())
        .map_or(q.len(), |k| i + k)
}

/// Offset of the bracket closing the one opened at `open`.
fn matching_close(q: &str, open: usize) -> Option<usize> {
    let items = bracket_items(q, open)?;
    // bracket_items stops at the closing bracket; find it after the last item
    let from = items.last().map_or(open + 1, |&(_, z)| z);
    let mut depth = 0usize;
    for (k, c) in q[from..].bytes().enumerate() {
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth == 0 => return Some(from + k),
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Start of the operand a postfix `[` at `at` applies to: a selector,
/// call or parenthesized expression, with any earlier brackets.
fn operand_start(q: &str, at: usize) -> usize {
    let b = q.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut i = at;
    loop {
        while i > 0 && b[i - 1].is_ascii_whitespace() {
            i -= 1;
        }
        if i == 0 {
            return 0;
        }
        let close = b[i - 1];
        let open = match close {
            b')' => b'(',
            b']' => b'[',
            b'}' => b'{',
            _ => break,
        };
        // back to the matching opener (strings inside are rare enough here)
        let mut depth = 0usize;
        let mut k = i - 1;
        loop {
            if b[k] == close {
                depth += 1;
            } else if b[k] == open {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            if k == 0 {
                return 0;
            }
            k -= 1;
        }
        i = k;
        if open == b'[' {
            continue;
        }
        break;
    }
    while i > 0 && ident(b[i - 1]) {
        i -= 1;
    }
    i
}

/// Top-level-agnostic scan for `[`s outside strings: (offset, whether it
/// holds a subquery's colon).
fn brackets(q: &str) -> Vec<(usize, bool)> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut quote = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(qc) if c == b'\\' && qc != b'`' => i += 1,
            Some(qc) if c == qc => quote = None,
            Some(_) => {}
            None => match c {
                b'"' | b'\'' | b'`' => quote = Some(c),
                b'[' => {
                    let close = q[i..].find(']').map_or(q.len(), |k| i + k);
                    out.push((i, q[i..close].contains(':')));
                }
                _ => {}
            },
        }
        i += 1;
    }
    out
}

/// Spans of the string literals in a query.
fn strings(q: &str) -> Vec<(usize, usize)> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if matches!(c, b'"' | b'\'' | b'`') {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' && c != b'`' {
                    i += 1;
                }
                i += 1;
            }
            out.push((start, (i + 1).min(b.len())));
        }
        i += 1;
    }
    out
}

/// Where Prometheus reports errors of ranges and subqueries on operands
/// that cannot take them.
fn bracket_error_position(q: &str, m: &str) -> Option<usize> {
    let b = q.as_bytes();
    if m.contains("ranges only allowed for vector selectors") {
        // at the `[` of a range after anything but a selector
        return brackets(q).into_iter().find_map(|(at, sub)| {
            let prev = q[..at].trim_end().bytes().last();
            (!sub && matches!(prev, Some(b')' | b']'))).then_some(at)
        });
    }
    if m.contains("subquery is only allowed on") {
        return brackets(q).into_iter().find_map(|(at, sub)| {
            let start = operand_start(q, at);
            let ok = sub
                && start < at
                && text_type(&q[start..at]).is_some_and(|t| t != ValueType::Vector);
            ok.then_some(start)
        });
    }
    if m.contains("binary expression must contain only") {
        // the first operand of a binary operator that is a range vector
        // or a string
        let mut operands: Vec<(usize, usize)> = strings(q);
        for (at, sub) in brackets(q) {
            if !sub && let Some(close) = matching_close(q, at) {
                operands.push((operand_start(q, at), close + 1));
            }
        }
        operands.sort_unstable();
        let op_chars = ['+', '-', '*', '/', '%', '^', '<', '>', '=', '!'];
        let keywords = ["and", "or", "unless"];
        return operands.into_iter().find_map(|(start, end)| {
            let before = q[..start].trim_end();
            let after = q[end..].trim_start();
            let op_after =
                after.starts_with(op_chars) || keywords.iter().any(|k| after.starts_with(k));
            let op_before =
                before.ends_with(op_chars) || keywords.iter().any(|k| before.ends_with(k));
            (op_after || op_before).then_some(start)
        });
    }
    if m.contains("unary expression only allowed") {
        // a sign where an operand is expected
        for (i, &c) in b.iter().enumerate() {
            if c != b'-' && c != b'+' {
                continue;
            }
            let before = q[..i].trim_end();
            let operand_expected =
                before.is_empty() || before.ends_with(['(', ',', '+', '-', '*', '/', '%', '^']);
            if operand_expected {
                return Some(i);
            }
        }
    }
    None
}

fn unary_type_error(got: &str) -> QueryError {
    QueryError::Parse(format!(
        "parse error: unary expression only allowed on expressions of type scalar or instant vector, got {got:?}"
    ))
}

/// The parser drops a unary `+` without looking at its operand. Unary and
/// binary `-` have the same precedence and typing as `+`, so the same query
/// with every `+` turned into `-` parses to the same shape, and its unary
/// nodes show what the dropped `+` applied to.
fn check_unary_plus(neg: &str) -> Result<(), QueryError> {
    match parse_guarded(neg) {
        Ok(e) => check_242(&e),
        Err(e) if e.to_string().contains("unary expression only allowed") => Err(e),
        // any other failure is not about a unary operand
        Err(_) => Ok(()),
    }
}

/// Query text as handed to the parser.
struct Rewritten {
    text: String,
    /// `text` with every `+` token turned into `-`, when it has any.
    plus_as_minus: Option<String>,
}

/// Prepares the query text for `promql-parser`:
/// - backtick strings become double-quoted ones with backslashes escaped,
///   because the parser applies escapes inside raw strings and Prometheus
///   keeps them verbatim;
/// - durations with a component too large for the parser's `u32` (which it
///   silently drops) are written with smaller units, same total;
/// - positions of `+` tokens are noted for [`check_unary_plus`].
fn rewrite(q: &str) -> Rewritten {
    let b = q.as_bytes();
    let mut out = String::with_capacity(q.len() + 8);
    let mut plus = Vec::new();
    let mut brackets = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            out.push_str(&q[start..i]);
        } else if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            out.push_str(&q[start..i]);
        } else if c == b'`' {
            let Some(len) = q[i + 1..].find('`') else {
                // unterminated: leave it for the parser to report
                out.push_str(&q[start..]);
                break;
            };
            out.push('"');
            for ch in q[i + 1..i + 1 + len].chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    // Go's unquoting drops carriage returns from raw strings
                    '\r' => {}
                    ch => out.push(ch),
                }
            }
            out.push('"');
            i += len + 2;
        } else if c.is_ascii_alphabetic() || c == b'_' || (c == b':' && brackets == 0) {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            out.push_str(&q[start..i]);
        } else if c.is_ascii_digit() || c == b'.' {
            i = number_end(b, i);
            let tok = &q[start..i];
            match wide_duration(tok) {
                Some(d) => out.push_str(&d),
                None => out.push_str(tok),
            }
        } else {
            match c {
                b'+' => plus.push(out.len()),
                b'[' => brackets += 1,
                b']' => brackets = brackets.saturating_sub(1),
                _ => {}
            }
            // copy one whole character, which may be multi-byte
            i += q[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&q[start..i]);
        }
    }
    let plus_as_minus = (!plus.is_empty()).then(|| {
        let mut bytes = out.clone().into_bytes();
        for p in plus {
            if let Some(x) = bytes.get_mut(p) {
                *x = b'-';
            }
        }
        // only ASCII bytes were swapped, so this cannot fail
        String::from_utf8(bytes).unwrap_or_default()
    });
    Rewritten {
        text: out,
        plus_as_minus,
    }
}

/// End of a number or duration token starting at `i` (`1.5e-3`, `0x1F`,
/// `1h30m`).
fn number_end(b: &[u8], mut i: usize) -> usize {
    let start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
        i += 1;
    }
    let hex = b.len() > start + 1 && b[start] == b'0' && matches!(b[start + 1], b'x' | b'X');
    // exponents with a sign: 1e-3
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') && matches!(b[i - 1], b'e' | b'E') && !hex {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    i
}

/// Milliseconds per duration unit.
const UNIT_MS: [(&str, i128); 7] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 604_800_000),
    ("y", 31_536_000_000),
];

/// Components of a duration token (`1h30m` -> [(1, 3600000), (30, 60000)]),
/// or None when it is not one. Numbers too long for u128 saturate.
fn duration_parts(tok: &str) -> Option<Vec<(u128, i128)>> {
    if !is_duration(tok) {
        return None;
    }
    let mut parts = Vec::new();
    let mut rest = tok;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n = rest[..digits].parse::<u128>().unwrap_or(u128::MAX);
        rest = &rest[digits..];
        let (unit, ms) = UNIT_MS.into_iter().find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        parts.push((n, ms));
    }
    Some(parts)
}

/// Total length of a duration in milliseconds, or None when Prometheus
/// refuses it as out of range: every component and the running sum must fit
/// int64 nanoseconds (Go's `time.Duration`).
fn duration_ms(parts: &[(u128, i128)]) -> Option<i128> {
    const NS_PER_MS: i128 = 1_000_000;
    let max = i128::from(i64::MAX);
    let mut total_ns: i128 = 0;
    for &(n, ms) in parts {
        let n = i128::try_from(n).ok()?;
        if n > max / ms / NS_PER_MS {
            return None;
        }
        total_ns += n * ms * NS_PER_MS;
        if total_ns > max {
            return None;
        }
    }
    Some(total_ns / NS_PER_MS)
}

/// A duration token rewritten in days down to milliseconds when one of its
/// components exceeds `u32` (the parser would drop that component).
fn wide_duration(tok: &str) -> Option<String> {
    let parts = duration_parts(tok)?;
    if parts.iter().all(|&(n, _)| n <= u128::from(u32::MAX)) {
        return None;
    }
    let mut left = duration_ms(&parts)?;
    let mut s = String::new();
    for (unit, ms) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        let n = left / ms;
        if n > 0 {
            s.push_str(&format!("{n}{unit}"));
            left -= n * ms;
        }
    }
    Some(s)
}

/// A number literal read the way Prometheus' parser reads it (Go's
/// `strconv.ParseInt(s, 0, 64)`, then `ParseFloat`), for the errors Go
/// reports and `promql-parser` does not. Malformed tokens are left to the
/// parser (`Ok(None)`).
fn go_number(tok: &str) -> Result<Option<f64>, String> {
    let lower = tok.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x") {
        return match i64::from_str_radix(hex, 16) {
            Ok(v) => Ok(Some(v as f64)),
            // Go's ParseFloat only takes hex with a `p` exponent
            Err(_) => Err(format!(
                "strconv.ParseFloat: parsing {tok:?}: invalid syntax"
            )),
        };
    }
    match tok.parse::<f64>() {
        Ok(v) if v.is_infinite() => Err(format!(
            "strconv.ParseFloat: parsing {tok:?}: value out of range"
        )),
        Ok(v) => Ok(Some(v)),
        Err(_) => Ok(None),
    }
}

fn is_duration(tok: &str) -> bool {
    let mut rest = tok;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d", "w", "y"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

/// The parser accepts Prometheus 3 forms that 2.42 rejects: durations used
/// as numbers (`5m * 2`), plain numbers as ranges or offsets (`x[300]`) and
/// quoted metric or label names in selectors (`{"up"}`). A small scan over
/// the query text finds them.
fn check_lexical(q: &str) -> Result<(), QueryError> {
    let b = q.as_bytes();
    let mut i = 0;
    let mut braces = 0usize;
    // inside `[...]` a colon separates range and step instead of starting
    // a metric name
    let mut brackets = 0usize;
    // the last two significant tokens, as short strings
    let mut prev: [String; 2] = [String::new(), String::new()];
    let push = |t: String, prev: &mut [String; 2]| {
        prev[0] = std::mem::take(&mut prev[1]);
        prev[1] = t;
    };
    let err = |tok: &str, what: &str| {
        Err(QueryError::Parse(format!(
            "parse error: unexpected {what} {tok:?}"
        )))
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'"' || c == b'\'' || c == b'`' {
            if braces > 0 && (prev[1] == "{" || prev[1] == ",") {
                return err(&q[i..], "quoted label name at");
            }
            let quote = c;
            i += 1;
            while i < b.len() && b[i] != quote {
                if b[i] == b'\\' && quote != b'`' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            push("\"".into(), &mut prev);
        } else if c.is_ascii_alphabetic() || c == b'_' || (c == b':' && brackets == 0) {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            let tok = q[start..i].to_ascii_lowercase();
            // Inf and NaN are numbers to Prometheus' lexer, and the parser
            // panics on them as durations
            if (tok == "inf" || tok == "nan") && duration_position(&prev) {
                return Err(at(q, start, number_error(&q[start..i], &prev)));
            }
            push(tok, &mut prev);
        } else if c.is_ascii_digit() || c == b'.' {
            let start = i;
            i = number_end(b, i);
            let tok = &q[start..i];
            let duration_ok = duration_position(&prev);
            if is_duration(tok) && !duration_ok {
                return Err(at(q, start, unexpected(tok, "duration")));
            }
            if !is_duration(tok) && duration_ok {
                return Err(at(q, start, number_error(tok, &prev)));
            }
            if let Some(parts) = duration_parts(tok)
                && duration_ms(&parts).is_none()
            {
                return Err(at(
                    q,
                    start,
                    QueryError::Parse("parse error: duration out of range".into()),
                ));
            }
            if !is_duration(tok) {
                let v = go_number(tok).map_err(|e| {
                    let e = QueryError::Parse(format!("parse error: error parsing number: {e}"));
                    at(q, start, e)
                })?;
                // Go refuses @ times whose seconds do not fit int64
                let sign = match (prev[0].as_str(), prev[1].as_str()) {
                    (_, "@") | ("@", "+") => Some(1.0),
                    ("@", "-") => Some(-1.0),
                    _ => None,
                };
                if let (Some(sign), Some(v)) = (sign, v) {
                    let ts = sign * v;
                    if ts.is_nan() || ts.abs() >= 9_223_372_036_854_775_808.0 {
                        return Err(QueryError::Parse(format!(
                            "parse error: timestamp out of bounds for @ modifier: {ts:.6}"
                        )));
                    }
                }
            }
            push("0".into(), &mut prev);
        } else {
            // a signed duration is only allowed as `offset -d`; the parser
            // would read `+Inf` after offset as a number and panic on it
            let signed_ok = c == b'-' && prev[1] == "offset";
            if (c == b'+' || c == b'-') && duration_position(&prev) && !signed_ok {
                let what = if prev[1] == "offset" {
                    "offset"
                } else {
                    "range"
                };
                return Err(QueryError::Parse(format!(
                    "parse error: unexpected <op:{}> in {what}, expected duration",
                    c as char
                )));
            }
            match c {
                b'{' => braces += 1,
                b'[' => brackets += 1,
                b']' => brackets = brackets.saturating_sub(1),
                b'}' => braces = braces.saturating_sub(1),
                _ => {}
            }
            push((c as char).to_string(), &mut prev);
            i += 1;
        }
    }
    Ok(())
}

fn unexpected(tok: &str, what: &str) -> QueryError {
    QueryError::Parse(format!("parse error: unexpected {what} {tok:?}"))
}

/// Prefixes a parse error with the `line:col` of the token it is about.
fn at(q: &str, pos: usize, e: QueryError) -> QueryError {
    match e {
        QueryError::Parse(m) => QueryError::Parse(format!("{}: {m}", line_col(q, pos))),
        e => e,
    }
}

/// Whether the token after `prev` must be a duration: an offset or the
/// range or step of a selector or subquery.
fn duration_position(prev: &[String; 2]) -> bool {
    prev[1] == "offset"
        || (prev[1] == "-" && prev[0] == "offset")
        || prev[1] == "["
        || prev[1] == ":"
}

/// Prometheus' complaint about a number where a duration belongs.
fn number_error(tok: &str, prev: &[String; 2]) -> QueryError {
    let tail = if prev[1] == "offset" || prev[0] == "offset" {
        " in offset, expected duration"
    } else if prev[1] == ":" {
        " in subquery selector, expected duration or \"]\""
    } else {
        ""
    };
    QueryError::Parse(format!("parse error: unexpected number {tok:?}{tail}"))
}

fn check_242(e: &Expr) -> Result<(), QueryError> {
    let bad = |what: &str| Err(QueryError::Parse(format!("parse error: {what}")));
    match e {
        Expr::Aggregate(a) => {
            let name = a.op.to_string();
            if name == "limitk" || name == "limit_ratio" {
                return bad(&format!("unknown aggregation {name}"));
            }
            check_242(&a.expr)?;
            if let Some(p) = &a.param {
                check_242(p)?;
            }
        }
        Expr::Unary(u) => {
            let t = u.expr.value_type();
            if !matches!(t, ValueType::Scalar | ValueType::Vector) {
                return Err(unary_type_error(type_name(t)));
            }
            check_242(&u.expr)?;
        }
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier
                && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
            {
                return bad("fill modifiers are not supported");
            }
            check_242(&b.lhs)?;
            check_242(&b.rhs)?;
        }
        Expr::Paren(p) => check_242(&p.expr)?,
        Expr::Subquery(s) => check_242(&s.expr)?,
        Expr::VectorSelector(vs) => check_vs(vs)?,
        Expr::MatrixSelector(ms) => check_vs(&ms.vs)?,
        Expr::Call(c) => {
            if !FUNCTIONS_242.contains(&c.func.name) {
                return bad(&format!("unknown function with name {:?}", c.func.name));
            }
            // the parser skips this check for literal arguments to exp, ln,
            // log2 and log10; Prometheus does not
            let types = &c.func.arg_types;
            for (i, a) in c.args.args.iter().enumerate() {
                let want = match types.get(i) {
                    Some(t) => *t,
                    None if c.func.variadic != 0 => match types.last() {
                        Some(t) => *t,
                        None => break,
                    },
                    None => break,
                };
                let got = a.value_type();
                if got != want {
                    return bad(&format!(
                        "expected type {} in call to function {:?}, got {}",
                        type_name(want),
                        c.func.name,
                        type_name(got)
                    ));
                }
                check_242(a)?;
            }
        }
        Expr::Extension(_) => return bad("extension expressions are not supported"),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
    }
    Ok(())
}

fn check_vs(vs: &VectorSelector) -> Result<(), QueryError> {
    if vs.matchers.or_matchers.is_empty() {
        Ok(())
    } else {
        Err(QueryError::Parse(
            "parse error: 'or' inside label matchers is not supported".into(),
        ))
    }
}

/// Adds Prometheus' `line:col:` prefix to a parse error. `promql-parser`
/// reports no positions, so the position is recovered from the query text:
/// first by a scan that mirrors Prometheus 2.42's lexer (stray and unclosed
/// brackets, bad characters and durations), then from the error itself
/// (unknown function names, a query that ends too early). Errors whose
/// position cannot be found are left as they are.
fn locate(q: &str, e: QueryError) -> QueryError {
    let QueryError::Parse(mut m) = e else {
        return e;
    };

    if m.ends_with("invalid promql query") && ends_in_operator(q) {
        m = "parse error: unexpected end of input".into();
    }
    if let Some((pos, what)) = lex_error(q) {
        return QueryError::Parse(format!("{}: parse error: {what}", line_col(q, pos)));
    }
    if m.starts_with(|c: char| c.is_ascii_digit()) {
        // positioned already by the text checks
        return QueryError::Parse(m);
    }
    let pos = if m.contains("in call to ") {
        call_error_position(q, &m)
    } else if m.contains("in aggregation ") {
        aggregation_error_position(q, &m)
    } else if let Some(p) = bracket_error_position(q, &m) {
        Some(p)
    } else if let Some(name) = unknown_function(&m).map(str::to_owned) {
        m = format!("parse error: unknown function with name {name:?}");
        function_position(q, &name)
    } else if m.contains("no expression found in input") {
        Some(0)
    } else if m.contains("unexpected end of input") || ends_in_operator(q) {
        Some(q.len())
    } else {
        None
    };
    match pos {
        Some(p) => QueryError::Parse(format!("{}: {m}", line_col(q, p))),
        None => QueryError::Parse(m),
    }
}

/// Whether the query stops right after a binary operator, which
/// `promql-parser` reports only as an invalid query.
fn ends_in_operator(q: &str) -> bool {
    let t = q.trim_end();
    let word = t
        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .next()
        .unwrap_or("");
    let before = t[..t.len() - word.len()].trim_end();
    let keyword = ["and", "or", "unless"].contains(&word) && !before.is_empty();
    keyword
        || t.ends_with(['+', '-', '*', '/', '%', '^', '<', '>'])
        || t.ends_with("==")
        || t.ends_with("!=")
}

/// `line:col` of a byte offset, both counted from 1 and the column in bytes
/// as Prometheus (Go) counts it.
fn line_col(q: &str, pos: usize) -> String {
    let before = q.get(..pos).unwrap_or(q);
    let line = 1 + before.matches('\n').count();
    let col = 1 + pos - before.rfind('\n').map_or(0, |n| n + 1);
    format!("{line}:{col}")
}

/// The name in an "unknown function" error; the parser quotes it with `'`.
fn unknown_function(m: &str) -> Option<&str> {
    let rest = m.split("unknown function with name ").nth(1)?;
    let q = rest.chars().next()?;
    rest[1..].split(q).next()
}

/// Offset of the first call of `name` in the query.
fn function_position(q: &str, name: &str) -> Option<usize> {
    let b = q.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    q.match_indices(name).map(|(i, _)| i).find(|&i| {
        let end = i + name.len();
        let starts = i == 0 || !ident(b[i - 1]);
        let calls = q[end..].trim_start().starts_with('(');
        starts && (end >= b.len() || !ident(b[end])) && calls
    })
}

/// The first error Prometheus 2.42's lexer reports for a query, as (byte
/// offset, message), for the cases whose wording is known; None when the
/// scan finds nothing it is sure of.
fn lex_error(q: &str) -> Option<(usize, String)> {
    let b = q.as_bytes();
    let mut parens = 0usize;
    let mut braces = false;
    let mut bracket = false;
    // the token right after `[` must be a duration
    let mut range_start = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let ch = q[i..].chars().next()?;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'"' || c == b'\'' || c == b'`' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != c {
                if c != b'`' && b[i] == b'\n' {
                    break;
                }
                if b[i] == b'\\' && c != b'`' {
                    i += 1;
                }
                i += 1;
            }
            if i >= b.len() || b[i] != c {
                let kind = if c == b'`' { "raw" } else { "quoted" };
                return Some((start, format!("unterminated {kind} string")));
            }
            i += 1;
            range_start = false;
            continue;
        }
        if braces {
            match c {
                b'}' => braces = false,
                b'{' => return Some((i, "unexpected left brace '{'".into())),
                b',' => {}
                b'=' | b'!' if matches!(b.get(i + 1), Some(b'=' | b'~')) => i += 1,
                b'=' => {}
                _ if c.is_ascii_alphabetic() || c == b'_' => {
                    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                        i += 1;
                    }
                    continue;
                }
                // wording not checked against Prometheus: leave it to the parser
                b'!' | b'#' => return None,
                _ if c.is_ascii_digit() => return None,
                _ => {
                    return Some((
                        i,
                        format!("unexpected character inside braces: {}", go_rune(ch)),
                    ));
                }
            }
            i += 1;
            continue;
        }
        if range_start {
            range_start = false;
            if c == b']' {
                return Some((i, "missing unit character in duration".into()));
            }
            if c.is_ascii_digit() {
                let end = number_end(b, i);
                let tok = &q[i..end];
                if tok.bytes().all(|d| d.is_ascii_digit()) {
                    return Some((i, "missing unit character in duration".into()));
                }
                if !is_duration(tok) && tok.bytes().all(|d| d.is_ascii_alphanumeric()) {
                    let got = lexed_duration(tok);
                    return Some((i, format!("bad duration syntax: {got:?}")));
                }
                i = end;
                continue;
            }
        }
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' => parens += 1,
            // Prometheus reports this one just past the parenthesis
            b')' if parens == 0 => {
                return Some((i + 1, "unexpected right parenthesis ')'".into()));
            }
            b')' => parens -= 1,
            b'{' => braces = true,
            b'[' => {
                bracket = true;
                range_start = true;
            }
            b']' if !bracket => return Some((i, "unexpected right bracket ']'".into())),
            b']' => bracket = false,
            b':' if bracket => {}
            b'!' => match b.get(i + 1) {
                Some(b'=' | b'~') => i += 1,
                _ => {
                    let next = q[i + 1..].chars().next().unwrap_or('\u{FFFD}');
                    return Some((
                        i,
                        format!("unexpected character after '!': {}", go_rune(next)),
                    ));
                }
            },
            b',' | b'*' | b'/' | b'%' | b'^' | b'@' | b'+' | b'-' | b'<' | b'>' | b'=' => {}
            _ if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                let end = number_end(b, i);
                let tok = &q[i..end];
                let malformed = matches!(go_number(tok), Ok(None)) && !is_duration(tok);
                if malformed && tok.bytes().all(|d| d.is_ascii_alphanumeric()) {
                    let got = lexed_duration(tok);
                    return Some((i, format!("bad number or duration syntax: {got:?}")));
                }
                i = end;
                continue;
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                continue;
            }
            _ => return Some((i, format!("unexpected character: {}", go_rune(ch)))),
        }
        i += ch.len_utf8();
    }
    if braces {
        Some((b.len(), "unexpected end of input inside braces".into()))
    } else if parens > 0 {
        Some((b.len(), "unclosed left parenthesis".into()))
    } else if bracket {
        Some((b.len(), "unclosed left bracket".into()))
    } else {
        None
    }
}

/// The part of a malformed number or duration token Prometheus' lexer has
/// taken when it gives up: digits and unit letters.
fn lexed_duration(tok: &str) -> &str {
    let end = tok
        .find(|c: char| !(c.is_ascii_digit() || "smhdwy".contains(c)))
        .unwrap_or(tok.len());
    &tok[..end]
}

/// A character quoted the way Go's `%q` quotes a rune.
fn go_rune(c: char) -> String {
    match c {
        '\'' => "'\\''".into(),
        '\\' => "'\\\\'".into(),
        '\n' => "'\\n'".into(),
        '\t' => "'\\t'".into(),
        c if c.is_control() => format!("'\\x{:02x}'", u32::from(c)),
        c => format!("'{c}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_are_kept_and_errors_are_not() {
        let q =
            r#"sum by (instance) (rate(node_network_receive_bytes_total{device=~"eth.*"}[5m]))"#;
        let first = parse(q).unwrap();
        assert!(PARSED.contains(q));
        assert_eq!(parse(q).unwrap(), first);
        // a failing text is parsed (and located) again every time
        let bad = "sum(rate(x[5m])";
        let e1 = parse(bad).unwrap_err().to_string();
        assert!(!PARSED.contains(bad));
        assert_eq!(parse(bad).unwrap_err().to_string(), e1);
        assert!(e1.contains("1:"), "{e1}");
    }

    fn parse_err(q: &str) -> String {
        match parse(q) {
            Ok(e) => panic!("{q:?} parsed to {e:?}"),
            Err(QueryError::Parse(m)) => m,
            Err(e) => panic!("{q:?}: not a parse error: {e:?}"),
        }
    }

    #[test]
    fn messages_follow_prometheus_2_42() {
        let cases = [
            (
                "up offset Inf",
                "1:11: unexpected number \"Inf\" in offset, expected duration",
            ),
            (
                "up offset 1e30",
                "1:11: unexpected number \"1e30\" in offset, expected duration",
            ),
            ("up offset 300y", "1:11: duration out of range"),
            ("rate(up[300y])", "1:9: duration out of range"),
            (
                "up @ 1e20",
                "timestamp out of bounds for @ modifier: 100000000000000000000.000000",
            ),
            (
                "up @ -9223372036854775808",
                "timestamp out of bounds for @ modifier: -9223372036854775808.000000",
            ),
            (
                "1e309",
                "1:1: error parsing number: strconv.ParseFloat: parsing \"1e309\": value out of range",
            ),
            (
                "0x8000000000000000",
                "1:1: error parsing number: strconv.ParseFloat: parsing \"0x8000000000000000\": invalid syntax",
            ),
            (
                "ln(0)",
                "1:4: expected type instant vector in call to function \"ln\", got scalar",
            ),
            (
                "exp(NaN)",
                "1:5: expected type instant vector in call to function \"exp\", got scalar",
            ),
            (
                "+up[5m]",
                "1:1: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"",
            ),
            (
                "+\"s\"",
                "1:1: unary expression only allowed on expressions of type scalar or instant vector, got \"string\"",
            ),
            (
                "-(up[5m])",
                "1:1: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"",
            ),
            (
                "+(up[5m:1m])",
                "1:1: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"",
            ),
        ];
        for (q, want) in cases {
            // a `line:col: ` prefix goes before "parse error"
            let want = match want.split_once(": ") {
                Some((pos, rest)) if pos.starts_with(|c: char| c.is_ascii_digit()) => {
                    format!("{pos}: parse error: {rest}")
                }
                _ => format!("parse error: {want}"),
            };
            assert_eq!(parse_err(q), want, "{q}");
        }
    }

    #[test]
    fn accepted_edge_values() {
        for q in [
            "up @ 9223372036854774784",
            "up @ -9223372036854774784",
            "up offset 292y",
            "0x7fffffffffffffff",
            "1e-400",
            "1e+2 + +1",
            "+up",
            "-up",
            "up{a=~`\\d\"`}",
            "up[5m:1m]",
        ] {
            assert!(parse(q).is_ok(), "{q}: {:?}", parse(q));
        }
        assert!(parse("up offset 293y").is_err());
    }

    thread_local! {
        /// How often this thread's parses ended in the panic guard.
        pub(super) static GUARD_FIRED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn parser_panics_become_parse_errors() {
        // bypasses the text checks that normally catch this first
        let e = parse_guarded("up offset Inf").unwrap_err();
        assert!(matches!(e, QueryError::Parse(_)), "{e:?}");
        assert_eq!(GUARD_FIRED.with(|n| n.get()), 1);
    }

    /// The guard is a last resort (the panic still prints through the
    /// panic hook): out-of-range numbers and durations in every position
    /// the parser reads one must be refused by the text checks first.
    #[test]
    fn text_checks_catch_what_would_panic_the_parser() {
        let values = [
            "Inf",
            "NaN",
            "-Inf",
            "+Inf",
            "1e30",
            "1e400",
            "-1",
            "0x10",
            "1e-400",
            "0",
            "1e19",
            "18446744073709551616",
            "1.5",
            ".5",
            "9999999999999999999999s",
            "4294967296s",
            "300y",
            "-5m",
            "+5m",
            "0s",
        ];
        let shapes = [
            "up offset {}",
            "up offset -{}",
            "up offset - {}",
            "up offset +{}",
            "up[{}]",
            "up[+{}]",
            "up[-{}]",
            "up[5m:{}]",
            "up[5m:+{}]",
            "up[{}:1m]",
            "(up)[{}:{}]",
            "up @ {}",
            "up @ -{}",
            "up[{}] @ {}",
            "rate(up[{}] offset {})",
            "up offset {} @ {}",
            "topk({}, up) + {}",
        ];
        for shape in shapes {
            for a in values {
                for b in ["1m", "Inf", "1e30", "-1"] {
                    let q = shape.replacen("{}", a, 1).replacen("{}", b, 1);
                    let _ = parse(&q);
                    assert_eq!(GUARD_FIRED.with(|n| n.get()), 0, "{q} reached the guard");
                }
            }
        }
    }

    #[test]
    fn raw_strings_reach_the_parser_verbatim() {
        let r = rewrite("f(`a\\d\"b\n\r`, \"`\\\"\", '`') # `x");
        assert_eq!(r.text, "f(\"a\\\\d\\\"b\\n\", \"`\\\"\", '`') # `x");
        let Ok(Expr::StringLiteral(s)) = parse("`C:\\dir\\n\"x\"`") else {
            panic!("not a string literal");
        };
        assert_eq!(s.val, "C:\\dir\\n\"x\"");
    }

    #[test]
    fn plus_tokens_only_are_swapped() {
        let r = rewrite("+a + 1e+2 + \"+\" # +");
        assert_eq!(r.plus_as_minus.as_deref(), Some("-a - 1e+2 - \"+\" # +"));
        assert_eq!(rewrite("a - b").plus_as_minus, None);
    }

    /// Messages and positions as Prometheus 2.42 answered these queries
    /// on /api/v1/query.
    #[test]
    fn errors_carry_prometheus_positions() {
        let cases = [
            ("a $ b", "1:3: parse error: unexpected character: '$'"),
            (
                "foo ! bar",
                "1:5: parse error: unexpected character after '!': ' '",
            ),
            ("foo}", "1:4: parse error: unexpected character: '}'"),
            (
                "foo{a=\"b\"}}",
                "1:11: parse error: unexpected character: '}'",
            ),
            ("é $", "1:1: parse error: unexpected character: 'é'"),
            (
                "sum(\n  rate(x[5m])\n  $",
                "3:3: parse error: unexpected character: '$'",
            ),
            (
                "sum(rate(x[5m])))",
                "1:18: parse error: unexpected right parenthesis ')'",
            ),
            ("x +)", "1:5: parse error: unexpected right parenthesis ')'"),
            ("x[5m]]", "1:6: parse error: unexpected right bracket ']'"),
            (
                "sum(rate(x[5m])",
                "1:16: parse error: unclosed left parenthesis",
            ),
            ("sum by (a", "1:10: parse error: unclosed left parenthesis"),
            ("x * (", "1:6: parse error: unclosed left parenthesis"),
            ("foo[5m", "1:7: parse error: unclosed left bracket"),
            ("x[5m:1m", "1:8: parse error: unclosed left bracket"),
            (
                "foo{a=\"b\"",
                "1:10: parse error: unexpected end of input inside braces",
            ),
            (
                "x{a=\"b\",",
                "1:9: parse error: unexpected end of input inside braces",
            ),
            (
                "foo{a=\"b\" $}",
                "1:11: parse error: unexpected character inside braces: '$'",
            ),
            ("foo{a{", "1:6: parse error: unexpected left brace '{'"),
            ("\"abc", "1:1: parse error: unterminated quoted string"),
            ("x +", "1:4: parse error: unexpected end of input"),
            ("1 + ", "1:5: parse error: unexpected end of input"),
            ("x +\n", "2:1: parse error: unexpected end of input"),
            (
                "foo(bar)",
                "1:1: parse error: unknown function with name \"foo\"",
            ),
            (
                "sum(foo(x))",
                "1:5: parse error: unknown function with name \"foo\"",
            ),
            (
                "histogram_quantil(0.9, x)",
                "1:1: parse error: unknown function with name \"histogram_quantil\"",
            ),
            (
                "rate(x[5mm])",
                "1:8: parse error: bad duration syntax: \"5mm\"",
            ),
            (
                "rate(x[5x])",
                "1:8: parse error: bad duration syntax: \"5\"",
            ),
            (
                "rate(x[5])",
                "1:8: parse error: missing unit character in duration",
            ),
            (
                "rate(x[])",
                "1:8: parse error: missing unit character in duration",
            ),
            (
                "rate(x[5m:5x])",
                "1:11: parse error: bad number or duration syntax: \"5\"",
            ),
            (
                "x offset 5x",
                "1:10: parse error: bad number or duration syntax: \"5\"",
            ),
            (
                "rate(x[5m] offset 1mm)",
                "1:19: parse error: bad number or duration syntax: \"1mm\"",
            ),
            ("", "1:1: parse error: no expression found in input"),
            ("5m", "1:1: parse error: unexpected duration \"5m\""),
            (
                "round(-2.5)",
                "1:7: parse error: expected type instant vector in call to function \"round\", got scalar",
            ),
            (
                "rate(node_load1)",
                "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "rate(node_load1[5m], 1)",
                "1:1: parse error: expected 1 argument(s) in call to \"rate\", got 2",
            ),
            (
                "histogram_quantile(0.5)",
                "1:1: parse error: expected 2 argument(s) in call to \"histogram_quantile\", got 1",
            ),
            (
                "exp(NaN)",
                "1:5: parse error: expected type instant vector in call to function \"exp\", got scalar",
            ),
            ("up + 5m", "1:6: parse error: unexpected duration \"5m\""),
            (
                "x[300]",
                "1:3: parse error: missing unit character in duration",
            ),
            (
                "x offset 1e30",
                "1:10: parse error: unexpected number \"1e30\" in offset, expected duration",
            ),
            (
                "x * 0x8000000000000000",
                "1:5: parse error: error parsing number: strconv.ParseFloat: parsing \"0x8000000000000000\": invalid syntax",
            ),
            (
                "x[5m:300]",
                "1:6: parse error: unexpected number \"300\" in subquery selector, expected duration or \"]\"",
            ),
            (
                "node_load1 * 1e400",
                "1:14: parse error: error parsing number: strconv.ParseFloat: parsing \"1e400\": value out of range",
            ),
            (
                "up offset NaN",
                "1:11: parse error: unexpected number \"NaN\" in offset, expected duration",
            ),
        ];
        for (q, want) in cases {
            assert_eq!(parse_err(q), want, "{q:?}");
        }
    }

    #[test]
    fn type_errors_carry_the_position_prometheus_reports() {
        // messages as Prometheus 2.42's /api/v1/query returns them
        let cases = [
            (
                "rate(up)",
                "1:6",
                "expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "sum(rate(x[5m])[5m])",
                "1:16",
                "ranges only allowed for vector selectors",
            ),
            (
                "sum(up[5m])",
                "1:5",
                "expected type instant vector in aggregation expression, got range vector",
            ),
            (
                "sum by (a) (up[5m])",
                "1:13",
                "expected type instant vector in aggregation expression, got range vector",
            ),
            (
                "topk(up, up)",
                "1:6",
                "expected type scalar in aggregation parameter, got instant vector",
            ),
            (
                "topk(5, up[5m])",
                "1:9",
                "expected type instant vector in aggregation expression, got range vector",
            ),
            (
                "count_values(1, up)",
                "1:14",
                "expected type string in aggregation parameter, got scalar",
            ),
            (
                "quantile(\"a\", up)",
                "1:10",
                "expected type scalar in aggregation parameter, got string",
            ),
            (
                "clamp(up, up, 1)",
                "1:11",
                "expected type scalar in call to function \"clamp\", got instant vector",
            ),
            (
                "clamp(up, 1, up[5m])",
                "1:14",
                "expected type scalar in call to function \"clamp\", got range vector",
            ),
            (
                "histogram_quantile(0.9, up[5m])",
                "1:25",
                "expected type instant vector in call to function \"histogram_quantile\", got range vector",
            ),
            (
                "histogram_quantile(up, up)",
                "1:20",
                "expected type scalar in call to function \"histogram_quantile\", got instant vector",
            ),
            (
                "label_replace(up, 1, \"a\", \"b\", \"c\")",
                "1:19",
                "expected type string in call to function \"label_replace\", got scalar",
            ),
            (
                "round(up, up)",
                "1:11",
                "expected type scalar in call to function \"round\", got instant vector",
            ),
            (
                "quantile_over_time(up, up[5m])",
                "1:20",
                "expected type scalar in call to function \"quantile_over_time\", got instant vector",
            ),
            (
                "rate(up[5m])[5m]",
                "1:13",
                "ranges only allowed for vector selectors",
            ),
            (
                "x[5m][5m:1m]",
                "1:1",
                "subquery is only allowed on instant vector, got matrix instead",
            ),
            (
                "up[5m] + 1",
                "1:1",
                "binary expression must contain only scalar and instant vector types",
            ),
            (
                "1 + up[5m]",
                "1:5",
                "binary expression must contain only scalar and instant vector types",
            ),
            (
                "-up[5m]",
                "1:1",
                "unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"",
            ),
            (
                "scalar(up[5m])",
                "1:8",
                "expected type instant vector in call to function \"scalar\", got range vector",
            ),
            (
                "sum(x) + rate(y)",
                "1:15",
                "expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "(up)[5m]",
                "1:5",
                "ranges only allowed for vector selectors",
            ),
            (
                "foo + sum(bar[1m])",
                "1:11",
                "expected type instant vector in aggregation expression, got range vector",
            ),
            (
                "max_over_time(rate(x[5m])[5m])",
                "1:26",
                "ranges only allowed for vector selectors",
            ),
            (
                " sum(\n up[5m])",
                "2:2",
                "expected type instant vector in aggregation expression, got range vector",
            ),
            (
                "1 - -up[5m]",
                "1:5",
                "unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"",
            ),
            (
                "sum(up) - \"a\"",
                "1:11",
                "binary expression must contain only scalar and instant vector types",
            ),
            (
                "\"a\" + 1",
                "1:1",
                "binary expression must contain only scalar and instant vector types",
            ),
            (
                "up and \"x\"",
                "1:8",
                "binary expression must contain only scalar and instant vector types",
            ),
            (
                "rate(x[5m]) * y[5m]",
                "1:15",
                "binary expression must contain only scalar and instant vector types",
            ),
            (
                "holt_winters(up, 0.5, 0.5)",
                "1:14",
                "expected type range vector in call to function \"holt_winters\", got instant vector",
            ),
            (
                "predict_linear(up[5m], up)",
                "1:24",
                "expected type scalar in call to function \"predict_linear\", got instant vector",
            ),
            (
                "label_join(up, \"a\", \"b\", 1)",
                "1:26",
                "expected type string in call to function \"label_join\", got scalar",
            ),
            (
                "x[5m:1m][5m:1m]",
                "1:1",
                "subquery is only allowed on instant vector, got matrix instead",
            ),
            (
                "abs(x[5m:1m][5m:1m])",
                "1:5",
                "subquery is only allowed on instant vector, got matrix instead",
            ),
            (
                "sum(x[5m:1m])",
                "1:5",
                "expected type instant vector in aggregation expression, got range vector",
            ),
        ];
        let mut bad = Vec::new();
        for (q, pos, msg) in cases {
            let want = format!("{pos}: parse error: {msg}");
            let got = parse_err(q);
            if got != want {
                bad.push(format!("{q:?}\n  got  {got}\n  want {want}"));
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    #[test]
    fn valid_queries_have_no_lexer_error() {
        for q in [
            "sum by (instance) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m]))",
            "x[5m:1m] offset -1h @ 100",
            "{__name__=~\"a.*\", b!~'c'} # comment )",
            "label_replace(x, \"a\", `raw \\ )`, \"b\", \"c\") + 0x1F + 1e-3 + .5 + Inf",
            "a:b:c == bool on(x) group_left(y) z",
        ] {
            assert_eq!(lex_error(q), None, "{q}");
            assert!(parse(q).is_ok(), "{q}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            wide_duration("5000000000ms").as_deref(),
            Some("57d20h53m20s")
        );
        assert_eq!(wide_duration("1h30m"), None);
        let ms = |t: &str| duration_parts(t).and_then(|p| duration_ms(&p));
        assert_eq!(ms("1h30m"), Some(5_400_000));
        assert_eq!(ms("292y"), Some(292 * 31_536_000_000));
        assert_eq!(ms("293y"), None);
        assert_eq!(ms("200y100y"), None);
        assert_eq!(ms("99999999999999999999999999999999999999999s"), None);
        assert_eq!(ms("1.5"), None);
    }
}
