//! Go `fmt` formatting of template values: `Sprint`, `Sprintln` and
//! `Sprintf` with Go's verbs, and Go's float printing.

use crate::value::Value;

/// Decimal digits of a float and the position of the decimal point, like
/// Go's `strconv` `decimalSlice`: value = 0.d1d2d3... × 10^dp.
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

/// Shortest digits that round-trip.
fn shortest(f: f64) -> Digits {
    if f == 0.0 {
        return Digits {
            d: Vec::new(),
            dp: 0,
        };
    }
    let a = f.abs();
    tie_to_even(a, parse_sci(&format!("{:e}", a)))
}

/// When the value lies exactly halfway between two shortest candidates, Go
/// picks the one with the even last digit; Rust's shortest mode may not.
fn tie_to_even(a: f64, d: Digits) -> Digits {
    let n = d.d.len();
    let tail = |extra: usize| -> Option<(Vec<u8>, i32)> {
        let s = format!("{:.*e}", n - 1 + extra, a);
        let (mant, exp) = s.split_once('e')?;
        let digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
        let tie = digits.get(n) == Some(&b'5') && digits[n + 1..].iter().all(|b| *b == b'0');
        tie.then(|| (digits[..n].to_vec(), exp.parse::<i32>().unwrap_or(0) + 1))
    };
    // A cheap probe first; the full expansion (a double has at most ~770
    // significant digits) only when the probe looks like a tie.
    if n == 0 || tail(30).is_none() {
        return d;
    }
    let Some((low, dp)) = tail(800) else {
        return d;
    };
    if low.last().is_some_and(|b| (b - b'0') % 2 == 1) {
        // The even neighbour is low + 1 in the last place. A carry out of
        // all nines fails the read-back check and keeps Rust's digits.
        let mut high = low;
        let mut i = high.len();
        while i > 0 {
            i -= 1;
            if high[i] == b'9' {
                high[i] = b'0';
            } else {
                high[i] += 1;
                break;
            }
        }
        return check(a, high, dp).unwrap_or(d);
    }
    check(a, low, dp).unwrap_or(d)
}

/// Keeps candidate digits only if they read back as exactly `a`.
fn check(a: f64, mut digits: Vec<u8>, dp: i32) -> Option<Digits> {
    let text = format!("0.{}e{}", String::from_utf8_lossy(&digits), dp);
    if text.parse::<f64>().ok()? != a {
        return None;
    }
    while digits.last() == Some(&b'0') && digits.len() > 1 {
        digits.pop();
    }
    Some(Digits { d: digits, dp })
}

/// Digits rounded to `n` significant digits, trailing zeros dropped.
fn rounded(f: f64, n: usize) -> Digits {
    if f == 0.0 {
        return Digits {
            d: Vec::new(),
            dp: 0,
        };
    }
    let mut d = parse_sci(&format!("{:.*e}", n.saturating_sub(1), f.abs()));
    while d.d.last() == Some(&b'0') {
        d.d.pop();
    }
    d
}

fn parse_sci(s: &str) -> Digits {
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') && d.len() > 1 {
        d.pop();
    }
    if d == b"0" {
        d.clear();
    }
    Digits { d, dp: exp + 1 }
}

fn fmt_e(out: &mut String, digs: &Digits, prec: usize, e: char) {
    out.push(char::from(*digs.d.first().unwrap_or(&b'0')));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(char::from(*digs.d.get(i).unwrap_or(&b'0')));
        }
    }
    out.push(e);
    let exp = if digs.d.is_empty() { 0 } else { digs.dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
}

fn fmt_f(out: &mut String, digs: &Digits, prec: usize) {
    if digs.dp > 0 {
        for i in 0..digs.dp as usize {
            out.push(char::from(*digs.d.get(i).unwrap_or(&b'0')));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec {
            let j = digs.dp + i as i32;
            let c = if j >= 0 {
                *digs.d.get(j as usize).unwrap_or(&b'0')
            } else {
                b'0'
            };
            out.push(char::from(c));
        }
    }
}

/// Go's `strconv.FormatFloat(f, 'g', prec, 64)` without the sign; `None`
/// precision means shortest. `upper` selects `E` over `e`.
fn fmt_g(f: f64, prec: Option<usize>, upper: bool) -> String {
    let (digs, mut p, shortest_mode) = match prec {
        None => {
            let d = shortest(f);
            let n = d.d.len();
            (d, n, true)
        }
        Some(p) => {
            let p = p.max(1);
            (rounded(f, p), p, false)
        }
    };
    let nd = digs.d.len() as i32;
    let mut eprec = p as i32;
    if eprec > nd && nd >= digs.dp {
        eprec = nd;
    }
    if shortest_mode {
        eprec = 6;
    }
    let exp = digs.dp - 1;
    let mut out = String::new();
    if exp < -4 || exp >= eprec {
        if p as i32 > nd {
            p = nd.max(0) as usize;
        }
        fmt_e(
            &mut out,
            &digs,
            p.saturating_sub(1),
            if upper { 'E' } else { 'e' },
        );
        return out;
    }
    if p as i32 > digs.dp {
        p = nd.max(0) as usize;
    }
    fmt_f(&mut out, &digs, (p as i32 - digs.dp).max(0) as usize);
    out
}

/// Formats a float as Go's `%v` does (`strconv` 'g', shortest).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let body = fmt_g(f, None, false);
    if f.is_sign_negative() {
        format!("-{body}")
    } else {
        body
    }
}

/// Go's `fmt.Sprint` of one value.
pub fn sprint_value(v: &Value) -> String {
    let mut out = String::new();
    let spec = Spec::default();
    print_arg(&mut out, v, 'v', &spec, 0);
    out
}

/// Go's `fmt.Sprint`: spaces go between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = matches!(a, Value::String(_) | Value::SafeHtml(_));
        if i > 0 && !is_str && !matches!(args[i - 1], Value::String(_) | Value::SafeHtml(_)) {
            out.push(' ');
        }
        out.push_str(&sprint_value(a));
    }
    out
}

/// Go's `fmt.Sprintln`: always spaces, and a final newline.
pub fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(sprint_value).collect();
    let mut s = parts.join(" ");
    s.push('\n');
    s
}

#[derive(Default, Clone)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's `fmt.Sprintf` over template values.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let mut reordered = false;
    let mut bad_index;
    let mut chars = format.char_indices().peekable();
    // An explicit argument index `[n]` moves the argument cursor.
    let mut arg_index = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
                         argi: &mut usize,
                         bad: &mut bool| {
        if chars.peek().map(|p| p.1) != Some('[') {
            return;
        }
        chars.next();
        let mut n = String::new();
        for (_, d) in chars.by_ref() {
            if d == ']' {
                break;
            }
            n.push(d);
        }
        reordered = true;
        match n.parse::<usize>() {
            Ok(i) if i >= 1 && i <= args.len() => *argi = i - 1,
            _ => *bad = true,
        }
    };
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        // flags
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '+' => spec.plus = true,
                '-' => {
                    spec.minus = true;
                    spec.zero = false;
                }
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            chars.next();
        }
        bad_index = false;
        arg_index(&mut chars, &mut argi, &mut bad_index);
        // width
        if chars.peek().map(|p| p.1) == Some('*') {
            chars.next();
            match args.get(argi) {
                Some(Value::Int(w)) => {
                    if *w < 0 {
                        spec.minus = true;
                        spec.zero = false;
                    }
                    spec.width = Some(w.unsigned_abs().min(1_000_000) as usize);
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            argi += 1;
        } else {
            let mut w = String::new();
            while let Some(&(_, d)) = chars.peek() {
                if !d.is_ascii_digit() {
                    break;
                }
                w.push(d);
                chars.next();
            }
            if !w.is_empty() {
                spec.width = w.parse::<usize>().ok().map(|w| w.min(1_000_000));
            }
        }
        // precision
        if chars.peek().map(|p| p.1) == Some('.') {
            chars.next();
            arg_index(&mut chars, &mut argi, &mut bad_index);
            if chars.peek().map(|p| p.1) == Some('*') {
                chars.next();
                match args.get(argi) {
                    Some(Value::Int(p)) if *p >= 0 => {
                        spec.prec = Some((*p as usize).min(1_000_000))
                    }
                    _ => out.push_str("%!(BADPREC)"),
                }
                argi += 1;
            } else {
                let mut p = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if !d.is_ascii_digit() {
                        break;
                    }
                    p.push(d);
                    chars.next();
                }
                spec.prec = Some(p.parse::<usize>().unwrap_or(0).min(1_000_000));
            }
        }
        arg_index(&mut chars, &mut argi, &mut bad_index);
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        if bad_index {
            out.push_str(&format!("%!{verb}(BADINDEX)"));
            continue;
        }
        // "%+v" and "%#v" are their own modes in Go, not sign/alternate flags.
        if verb == 'v' {
            if spec.sharp {
                spec.sharp = false;
                out.push_str(&go_syntax(args.get(argi).unwrap_or(&Value::Nil), 0));
                argi += 1;
                continue;
            }
            spec.plus = false;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        if verb == 'T' {
            let t = arg.type_name();
            pad(&mut out, &t, &spec);
            continue;
        }
        print_arg(&mut out, arg, verb, &spec, 0);
    }
    if !reordered && argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if let Value::Nil = a {
                out.push_str("<nil>");
            } else {
                out.push_str(&a.type_name());
                out.push('=');
                out.push_str(&sprint_value(a));
            }
        }
        out.push(')');
    }
    out
}

fn pad(out: &mut String, s: &str, spec: &Spec) {
    // Go pads strings with zeros too when asked ("%05s" gives "000ab").
    pad_with(out, s, spec, spec.zero);
}

fn pad_with(out: &mut String, s: &str, spec: &Spec, numeric: bool) {
    let n = s.chars().count();
    let w = spec.width.unwrap_or(0);
    if n >= w {
        out.push_str(s);
        return;
    }
    let fill = w - n;
    if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && numeric {
        // Zeros go after the sign.
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+' | b'-' | b' ') => s.split_at(1),
            _ => ("", s),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(rest);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(s);
    }
}

fn bad_verb(out: &mut String, v: &Value, verb: char) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    if let Value::Nil = v {
        out.push_str("<nil>");
    } else {
        out.push_str(&v.type_name());
        out.push('=');
        out.push_str(&sprint_value(v));
    }
    out.push(')');
}

const MAX_PRINT_DEPTH: usize = 64;

fn print_arg(out: &mut String, v: &Value, verb: char, spec: &Spec, depth: usize) {
    if depth > MAX_PRINT_DEPTH {
        out.push_str("...");
        return;
    }
    match v {
        Value::Nil => match verb {
            'v' => pad(out, "<nil>", spec),
            _ => bad_verb(out, v, verb),
        },
        Value::Bool(b) => match verb {
            'v' | 't' => pad(out, if *b { "true" } else { "false" }, spec),
            _ => bad_verb(out, v, verb),
        },
        Value::Int(i) => fmt_int(out, *i, verb, spec, v),
        Value::Float(f) => fmt_float(out, *f, verb, spec, v),
        Value::String(s) | Value::SafeHtml(s) => fmt_str(out, s, verb, spec, v),
        Value::List(items) => {
            // Go applies the verb to each element.
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_arg(out, item, verb, spec, depth + 1);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_str(out, k, verb, spec, &Value::String(k.clone()));
                out.push(':');
                print_arg(out, item, verb, spec, depth + 1);
            }
            out.push(']');
        }
        Value::Object(o) => {
            if matches!(verb, 'v' | 's' | 'x' | 'X' | 'q')
                && let Some(s) = o.display()
            {
                fmt_str(out, &s, verb, spec, v);
                return;
            }
            match o.underlying() {
                Some(u) => print_arg(out, &u, verb, spec, depth + 1),
                None => {
                    out.push('{');
                    for (i, f) in o.field_names().iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        let fv = o.field(f).unwrap_or_default();
                        print_arg(out, &fv, verb, spec, depth + 1);
                    }
                    out.push('}');
                }
            }
        }
        Value::Func(_) => pad(out, "0x0", spec),
    }
}

fn fmt_int(out: &mut String, i: i64, verb: char, spec: &Spec, v: &Value) {
    let neg = i < 0;
    let a = i.unsigned_abs();
    let (mut digits, prefix) = match verb {
        'd' | 'v' => (a.to_string(), ""),
        'b' => (format!("{a:b}"), "0b"),
        'o' => (format!("{a:o}"), "0"),
        'O' => (format!("{a:o}"), "0o"),
        'x' => (format!("{a:x}"), "0x"),
        'X' => (format!("{a:X}"), "0X"),
        'c' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, &c.to_string(), spec);
            return;
        }
        'q' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, &quote_char(c), spec);
            return;
        }
        'U' => {
            let s = format!("U+{:04X}", i as u64);
            pad(out, &s, spec);
            return;
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' | 't' => {
            bad_verb(out, v, verb);
            return;
        }
        _ => {
            bad_verb(out, v, verb);
            return;
        }
    };
    if let Some(p) = spec.prec {
        if p == 0 && a == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let mut s = String::new();
    if neg {
        s.push('-');
    } else if spec.plus {
        s.push('+');
    } else if spec.space {
        s.push(' ');
    }
    if (spec.sharp && verb != 'd' && verb != 'v') || verb == 'O' {
        s.push_str(prefix);
    }
    s.push_str(&digits);
    // Go ignores the zero flag when a precision is given for integers.
    let sp = Spec {
        zero: spec.zero && spec.prec.is_none(),
        ..spec.clone()
    };
    pad_with(out, &s, &sp, true);
}

fn fmt_float(out: &mut String, f: f64, verb: char, spec: &Spec, v: &Value) {
    let body = if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        "Inf".to_string()
    } else {
        match verb {
            'v' | 'g' => fmt_g(f, spec.prec, false),
            'G' => fmt_g(f, spec.prec, true),
            'e' | 'E' => {
                let p = spec.prec.unwrap_or(6);
                let d = if f == 0.0 {
                    Digits {
                        d: Vec::new(),
                        dp: 0,
                    }
                } else {
                    parse_sci(&format!("{:.*e}", p, f.abs()))
                };
                let mut s = String::new();
                fmt_e(&mut s, &d, p, verb);
                s
            }
            'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), f.abs()),
            _ => {
                bad_verb(out, v, verb);
                return;
            }
        }
    };
    let mut s = String::new();
    if f.is_sign_negative() && !f.is_nan() {
        s.push('-');
    } else if spec.plus || (f.is_infinite() && !spec.space) {
        s.push('+');
    } else if spec.space {
        s.push(' ');
    }
    s.push_str(&body);
    let sp = Spec {
        zero: spec.zero && f.is_finite(),
        ..spec.clone()
    };
    pad_with(out, &s, &sp, true);
}

fn fmt_str(out: &mut String, s: &str, verb: char, spec: &Spec, v: &Value) {
    let truncated: String = match spec.prec {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    };
    match verb {
        'v' | 's' => pad(out, &truncated, spec),
        'q' => {
            let q = if spec.sharp && !s.contains('`') {
                format!("`{s}`")
            } else {
                quote(&truncated, spec.plus)
            };
            pad(out, &q, spec);
        }
        'x' | 'X' => {
            let mut h = String::new();
            for (i, b) in truncated.bytes().enumerate() {
                if spec.space && i > 0 {
                    h.push(' ');
                }
                if spec.sharp && (spec.space || i == 0) {
                    h.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    h.push_str(&format!("{b:02x}"));
                } else {
                    h.push_str(&format!("{b:02X}"));
                }
            }
            pad(out, &h, spec);
        }
        _ => bad_verb(out, v, verb),
    }
}

/// Go's `strconv.Quote` (or `QuoteToASCII` when `ascii`).
pub fn quote(s: &str, ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape_char(&mut out, c, '"', ascii);
    }
    out.push('"');
    out
}

fn quote_char(c: char) -> String {
    let mut out = String::from('\'');
    escape_char(&mut out, c, '\'', false);
    out.push('\'');
    out
}

fn escape_char(out: &mut String, c: char, q: char, ascii: bool) {
    match c {
        _ if c == q || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        '\u{FFFD}' => out.push_str("\\ufffd"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if ascii && !c.is_ascii() => {
            if (c as u32) < 0x10000 {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push_str(&format!("\\U{:08x}", c as u32));
            }
        }
        c if !is_print(c) => {
            if (c as u32) < 0x10000 {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push_str(&format!("\\U{:08x}", c as u32));
            }
        }
        c => out.push(c),
    }
}

/// Approximates Go's `strconv.IsPrint`: control, format and separator
/// characters other than the ASCII space are not printable.
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32, 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xD800..=0xDFFF)
}

/// Go's `%#v`: a Go-syntax representation.
fn go_syntax(v: &Value, depth: usize) -> String {
    if depth > MAX_PRINT_DEPTH {
        return "...".into();
    }
    match v {
        Value::Nil => "<nil>".into(),
        Value::String(s) | Value::SafeHtml(s) => quote(s, false),
        Value::List(items) => {
            let parts: Vec<String> = items.iter().map(|i| go_syntax(i, depth + 1)).collect();
            format!("[]interface {{}}{{{}}}", parts.join(", "))
        }
        Value::Map(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, i)| format!("{}:{}", quote(k, false), go_syntax(i, depth + 1)))
                .collect();
            format!("map[string]interface {{}}{{{}}}", parts.join(", "))
        }
        Value::Object(o) => match o.underlying() {
            Some(u) => go_syntax(&u, depth + 1),
            None => format!("{}{{}}", o.type_name()),
        },
        other => sprint_value(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_match_go_v() {
        for (f, want) in [
            (1.0, "1"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e6, "1e+06"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (100000.0, "100000"),
            (1e100, "1e+100"),
            (f64::INFINITY, "+Inf"),
            (f64::NAN, "NaN"),
            (3.0e-7, "3e-07"),
        ] {
            assert_eq!(format_float(f), want, "{f}");
        }
    }

    #[test]
    fn printf_verbs_match_go() {
        let s = |x: &str| Value::String(x.into());
        let cases: Vec<(&str, Vec<Value>, &str)> = vec![
            ("%s|%v|%q", vec![s("a"), s("b"), s("c\n")], "a|b|\"c\\n\""),
            (
                "%d %5d %-5d| %05d",
                vec![
                    Value::Int(42),
                    Value::Int(42),
                    Value::Int(42),
                    Value::Int(-42),
                ],
                "42    42 42   | -0042",
            ),
            (
                "%x %X %o %b",
                vec![
                    Value::Int(255),
                    Value::Int(255),
                    Value::Int(8),
                    Value::Int(5),
                ],
                "ff FF 10 101",
            ),
            (
                "%f %.2f %e %g",
                vec![
                    Value::Float(3.25159),
                    Value::Float(2.0),
                    Value::Float(1234.5678),
                    Value::Float(0.000012345),
                ],
                "3.251590 2.00 1.234568e+03 1.2345e-05",
            ),
            ("%.4g", vec![Value::Float(1234567.0)], "1.235e+06"),
            ("%.4g", vec![Value::Float(12.0)], "12"),
            ("%.4g", vec![Value::Float(0.5)], "0.5"),
            (
                "%t %v",
                vec![Value::Bool(true), Value::Bool(false)],
                "true false",
            ),
            (
                "%5s|%-5s|%.2s",
                vec![s("ab"), s("ab"), s("abc")],
                "   ab|ab   |ab",
            ),
            ("100%%", vec![], "100%"),
            ("%d", vec![s("x")], "%!d(string=x)"),
            ("%d %d", vec![Value::Int(1)], "1 %!d(MISSING)"),
            ("%d", vec![Value::Int(1), s("x")], "1%!(EXTRA string=x)"),
            (
                "%v",
                vec![Value::List(vec![s("a"), Value::Int(1)])],
                "[a 1]",
            ),
            ("%x", vec![s("hi")], "6869"),
            ("%v", vec![Value::Nil], "<nil>"),
            ("%s", vec![Value::Nil], "%!s(<nil>)"),
            (
                "%+d %+.1f",
                vec![Value::Int(3), Value::Float(2.25)],
                "+3 +2.2",
            ),
            (
                "%c %q %U",
                vec![Value::Int(65), Value::Int(65), Value::Int(65)],
                "A 'A' U+0041",
            ),
            ("%08.3f", vec![Value::Float(-3.25159)], "-003.252"),
            ("%6.2f%%", vec![Value::Float(99.5)], " 99.50%"),
            ("%T %T", vec![Value::Int(1), s("")], "int string"),
        ];
        for (f, args, want) in cases {
            assert_eq!(sprintf(f, &args), want, "format {f}");
        }
    }

    #[test]
    fn sprint_spacing() {
        let v = vec![
            Value::Int(1),
            Value::Int(2),
            Value::String("a".into()),
            Value::Int(3),
        ];
        assert_eq!(sprint(&v), "1 2a3");
        assert_eq!(sprintln(&v), "1 2 a 3\n");
    }
}
