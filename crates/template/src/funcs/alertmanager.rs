use std::time::{SystemTime, UNIX_EPOCH};

use regex::Regex;

use super::{Funcs, arg_str, arg_str_list, want_args};
use crate::error::FuncError;
use crate::time::{GoDuration, GoTime};
use crate::value::Value;

/// Go's `strings.ToUpper`/`ToLower` map rune by rune; a rune whose case
/// mapping needs several characters (e.g. `ß`) stays as it is.
pub(crate) fn map_case(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mut it: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            if it.len() == 1 { it.remove(0) } else { c }
        })
        .collect()
}

/// `golang.org/x/text/cases.Title`: the first letter of each word upper
/// case, the rest lower case.
fn cases_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if in_word {
                out.push_str(&map_case(&c.to_string(), false));
            } else {
                out.push_str(&map_case(&c.to_string(), true));
            }
            in_word = true;
        } else {
            out.push(c);
            // An apostrophe inside a word does not start a new one ("o'neil").
            in_word = in_word && (c == '\'' || c == '’');
        }
    }
    out
}

pub(crate) fn compile(pattern: &str) -> Result<Regex, FuncError> {
    Regex::new(pattern)
        .map_err(|e| FuncError::Call(format!("error parsing regexp: {pattern:?}: {e}")))
}

pub(crate) fn time_arg(args: &[Value], i: usize) -> Result<GoTime, FuncError> {
    match args.get(i) {
        Some(v) => v
            .downcast::<GoTime>()
            .cloned()
            .ok_or_else(|| FuncError::Type {
                expected: "time.Time".into(),
                got: v.type_name(),
            }),
        None => Err(FuncError::Arity {
            want: (i + 1).to_string(),
            got: args.len(),
        }),
    }
}

pub(crate) fn now() -> GoTime {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    GoTime::from_unix(
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        d.subsec_nanos(),
    )
}

pub(crate) fn insert_common(f: &mut Funcs) {
    f.insert("toUpper", |a| {
        want_args(a, 1)?;
        Ok(Value::String(map_case(arg_str(a, 0)?, true)))
    });
    f.insert("toLower", |a| {
        want_args(a, 1)?;
        Ok(Value::String(map_case(arg_str(a, 0)?, false)))
    });
    f.insert("match", |a| {
        want_args(a, 2)?;
        let re = compile(arg_str(a, 0)?)?;
        Ok(Value::Bool(re.is_match(arg_str(a, 1)?)))
    });
    f.insert("reReplaceAll", |a| {
        want_args(a, 3)?;
        let re = compile(arg_str(a, 0)?)?;
        Ok(Value::String(
            re.replace_all(arg_str(a, 2)?, arg_str(a, 1)?).into_owned(),
        ))
    });
    f.insert("safeHtml", |a| {
        want_args(a, 1)?;
        Ok(Value::SafeHtml(arg_str(a, 0)?.to_string()))
    });
    f.insert("humanizeDuration", |a| {
        want_args(a, 1)?;
        Ok(Value::String(super::prometheus::humanize_duration(
            super::prometheus::to_float(&a[0])?,
        )))
    });
}

/// The functions Alertmanager adds to its notification templates
/// (`template.DefaultFuncs`).
pub fn alertmanager() -> Funcs {
    let mut f = Funcs::new();
    insert_common(&mut f);
    f.insert("title", |a| {
        want_args(a, 1)?;
        Ok(Value::String(cases_title(arg_str(a, 0)?)))
    });
    f.insert("trimSpace", |a| {
        want_args(a, 1)?;
        Ok(Value::String(arg_str(a, 0)?.trim().to_string()))
    });
    f.insert("join", |a| {
        want_args(a, 2)?;
        let sep = arg_str(a, 0)?;
        Ok(Value::String(arg_str_list(a, 1)?.join(sep)))
    });
    f.insert("stringSlice", |a| {
        let mut out = Vec::with_capacity(a.len());
        for i in 0..a.len() {
            out.push(Value::String(arg_str(a, i)?.to_string()));
        }
        Ok(Value::List(out))
    });
    f.insert("date", |a| {
        want_args(a, 2)?;
        let layout = arg_str(a, 0)?;
        Ok(Value::String(time_arg(a, 1)?.format(layout)))
    });
    f.insert("tz", |a| {
        want_args(a, 2)?;
        let name = arg_str(a, 0)?;
        Ok(time_arg(a, 1)?.in_zone(name)?.into_value())
    });
    f.insert("safeUrl", |a| {
        // template.URL only matters in URL attribute contexts, which
        // Escape::Html does not model; in text it prints like a string.
        want_args(a, 1)?;
        Ok(Value::String(arg_str(a, 0)?.to_string()))
    });
    f.insert("urlUnescape", |a| {
        want_args(a, 1)?;
        Ok(Value::String(query_unescape(arg_str(a, 0)?)?))
    });
    f.insert("now", |a| {
        want_args(a, 0)?;
        Ok(now().into_value())
    });
    f.insert("toJson", |a| {
        want_args(a, 1)?;
        let mut out = String::new();
        to_json(&mut out, &a[0], 0)?;
        Ok(Value::String(out))
    });
    f.insert("base64encode", |a| {
        want_args(a, 1)?;
        Ok(Value::String(base64_url_encode(arg_str(a, 0)?.as_bytes())))
    });
    f.insert("base64decode", |a| {
        want_args(a, 1)?;
        let bytes = base64_url_decode(arg_str(a, 0)?)?;
        Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    });
    f.insert("list", |a| Ok(Value::List(a.to_vec())));
    f.insert("append", |a| {
        let Some(first) = a.first() else {
            return Err(FuncError::Arity {
                want: "at least 1".into(),
                got: 0,
            });
        };
        let mut items = match &*first.resolved() {
            Value::List(l) => l.clone(),
            Value::Nil => Vec::new(),
            other => {
                return Err(FuncError::Type {
                    expected: "[]interface {}".into(),
                    got: other.type_name(),
                });
            }
        };
        items.extend_from_slice(&a[1..]);
        Ok(Value::List(items))
    });
    f.insert("dict", |a| {
        if a.len() % 2 != 0 {
            return Err("dict requires an even number of arguments".into());
        }
        let mut m = std::collections::BTreeMap::new();
        for kv in a.chunks(2) {
            let Some(k) = kv[0].as_str() else {
                return Err("dict keys must be strings".into());
            };
            m.insert(k.to_string(), kv[1].clone());
        }
        Ok(Value::Map(m))
    });
    // Alertmanager swaps in the real resolver per notification; callers do
    // the same with Template::funcs_mut. The placeholder lets templates parse.
    f.insert("routeLabels", |a| {
        want_args(a, 1)?;
        arg_str(a, 0)?;
        Ok(Value::String(String::new()))
    });
    f.insert("toDate", |a| {
        want_args(a, 2)?;
        let t = GoTime::parse(arg_str(a, 0)?, arg_str(a, 1)?).unwrap_or_else(|_| GoTime::zero());
        Ok(t.into_value())
    });
    f.insert("mustToDate", |a| {
        want_args(a, 2)?;
        Ok(GoTime::parse(arg_str(a, 0)?, arg_str(a, 1)?)?.into_value())
    });
    f.insert("since", |a| {
        want_args(a, 1)?;
        let t = time_arg(a, 0)?;
        let d = now().unix_nanos() - t.unix_nanos();
        let d = i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX });
        Ok(GoDuration(d).into_value())
    });
    f
}

fn query_unescape(s: &str) -> Result<String, FuncError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
                let Some(hex) = hex else {
                    let bad: String = s[i..].chars().take(3).collect();
                    return Err(FuncError::Call(format!("invalid URL escape {bad:?}")));
                };
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64_url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= n {
                out.push(char::from(B64[((v >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_url_decode(s: &str) -> Result<Vec<u8>, FuncError> {
    let bad = |i: usize| FuncError::Call(format!("illegal base64 data at input byte {i}"));
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return Err(bad(b.len() - b.len() % 4));
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (ci, chunk) in b.chunks(4).enumerate() {
        let mut v = 0u32;
        let mut pad = 0;
        for (k, c) in chunk.iter().enumerate() {
            let d = if *c == b'=' && k >= 2 && ci == b.len() / 4 - 1 {
                pad += 1;
                0
            } else if pad > 0 {
                return Err(bad(ci * 4 + k));
            } else {
                B64.iter()
                    .position(|x| x == c)
                    .ok_or_else(|| bad(ci * 4 + k))? as u32
            };
            v = (v << 6) | d;
        }
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

/// Go's `json.Marshal` for template values (HTML-safe string escaping,
/// sorted map keys).
fn to_json(out: &mut String, v: &Value, depth: usize) -> Result<(), FuncError> {
    if depth > 64 {
        return Err("json: value nested too deeply".into());
    }
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(FuncError::Call(format!(
                    "json: unsupported value: {}",
                    crate::format::format_float(*f)
                )));
            }
            out.push_str(&json_float(*f));
        }
        Value::String(s) | Value::SafeHtml(s) => json_string(out, s),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_json(out, item, depth + 1)?;
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, k);
                out.push(':');
                to_json(out, item, depth + 1)?;
            }
            out.push('}');
        }
        Value::Object(o) => match (o.underlying(), o.display()) {
            (Some(u), _) => to_json(out, &u, depth + 1)?,
            (None, Some(s)) => json_string(out, &s),
            (None, None) => {
                return Err(FuncError::Call(format!(
                    "json: unsupported type: {}",
                    o.type_name()
                )));
            }
        },
        Value::Func(_) => return Err("json: unsupported type: func".into()),
    }
    Ok(())
}

fn json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go uses exponent form here, with a minimal exponent ("1e-7").
        let s = crate::format::sprintf("%e", &[Value::Float(f)]);
        let g = crate::format::format_float(f);
        let mant_exp = if g.contains('e') { g } else { s };
        let (m, e) = mant_exp.split_once('e').unwrap_or((&mant_exp, "0"));
        let (sign, digits) = e.split_at(1);
        let digits = digits.trim_start_matches('0');
        return format!("{m}e{sign}{}", if digits.is_empty() { "0" } else { digits });
    }
    let mut s = format!("{f}");
    if s == "-0" {
        s = "-0".into();
    }
    s
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_lowercases_rest_like_x_text_cases() {
        assert_eq!(
            cases_title("hELLO wORLD-foo o'neil"),
            "Hello World-Foo O'neil"
        );
        assert_eq!(map_case("straße", true), "STRAßE");
    }
}
