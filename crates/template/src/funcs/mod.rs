//! The function registry, Go's builtin functions, and the ready-made
//! Alertmanager and Prometheus function sets.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::FuncError;
use crate::format;
use crate::template::MissingKey;
use crate::value::Value;

mod alertmanager;
mod prometheus;

pub use alertmanager::alertmanager;
pub use prometheus::{PrometheusContext, QueryFn, Sample, prometheus};

/// A template function.
pub type Func = Arc<dyn Fn(&[Value]) -> Result<Value, FuncError> + Send + Sync>;

/// Functions callable from templates by name. Entries override Go's
/// builtins of the same name, as in Go.
#[derive(Clone, Default)]
pub struct Funcs {
    map: HashMap<String, Func>,
}

impl std::fmt::Debug for Funcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.map.keys().collect();
        names.sort();
        f.debug_set().entries(names).finish()
    }
}

impl Funcs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) a function.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        f: impl Fn(&[Value]) -> Result<Value, FuncError> + Send + Sync + 'static,
    ) -> &mut Self {
        self.map.insert(name.into(), Arc::new(f));
        self
    }

    /// Registers a function whose errors are plain messages, reported as
    /// `error calling NAME: message`.
    pub fn insert_simple(
        &mut self,
        name: impl Into<String>,
        f: impl Fn(&[Value]) -> Result<Value, String> + Send + Sync + 'static,
    ) -> &mut Self {
        self.insert(name, move |a: &[Value]| f(a).map_err(FuncError::Call))
    }

    /// Adds every function of `other`, replacing same-named ones.
    pub fn extend(&mut self, other: &Funcs) -> &mut Self {
        for (k, v) in &other.map {
            self.map.insert(k.clone(), v.clone());
        }
        self
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<&Func> {
        self.map.get(name)
    }
}

const BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

pub(crate) fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

// ---- helpers for function implementations ----

/// Fails unless exactly `n` arguments were given.
pub fn want_args(args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() != n {
        return Err(FuncError::Arity {
            want: n.to_string(),
            got: args.len(),
        });
    }
    Ok(())
}

/// The string argument at `i`, or Go's type error.
pub fn arg_str(args: &[Value], i: usize) -> Result<&str, FuncError> {
    match args.get(i) {
        Some(Value::String(s) | Value::SafeHtml(s)) => Ok(s),
        Some(v) => Err(FuncError::Type {
            expected: "string".into(),
            got: v.type_name(),
        }),
        None => Err(FuncError::Arity {
            want: (i + 1).to_string(),
            got: args.len(),
        }),
    }
}

/// A `[]string` argument: a list of strings (objects resolve to their
/// underlying list).
pub fn arg_str_list(args: &[Value], i: usize) -> Result<Vec<String>, FuncError> {
    let v = args.get(i).ok_or(FuncError::Arity {
        want: (i + 1).to_string(),
        got: args.len(),
    })?;
    let type_err = || FuncError::Type {
        expected: "[]string".into(),
        got: v.type_name(),
    };
    match &*v.resolved() {
        Value::List(items) => items
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(type_err))
            .collect(),
        _ => Err(type_err()),
    }
}

// ---- Go's builtins that need no executor state ----

fn truth(v: &Value) -> bool {
    v.is_true()
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Nil => Kind::Invalid,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) | Value::SafeHtml(_) => Kind::Str,
        _ => Kind::Other,
    }
}

fn eq(args: &[Value]) -> Result<Value, FuncError> {
    if args.is_empty() {
        return Err(FuncError::Arity {
            want: "at least 1".into(),
            got: 0,
        });
    }
    let a = args[0].resolved();
    if args.len() == 1 {
        return Err("missing argument for comparison".into());
    }
    if let Value::List(_) | Value::Map(_) | Value::Func(_) = &*a {
        return Err(format!(
            "non-comparable type {}: {}",
            format::sprint_value(&a),
            a.type_name()
        )
        .into());
    }
    let k1 = kind(&a);
    for b in &args[1..] {
        let b = b.resolved();
        let k2 = kind(&b);
        let t = if k1 != k2 {
            if k1 != Kind::Invalid && k2 != Kind::Invalid {
                return Err("incompatible types for comparison".into());
            }
            false
        } else {
            match (&*a, &*b) {
                (Value::Nil, Value::Nil) => true,
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (x, y) if k1 == Kind::Str => x.as_str() == y.as_str(),
                (Value::Object(x), Value::Object(y)) => Arc::ptr_eq(x, y),
                (_, y) => {
                    return Err(format!(
                        "non-comparable type {}: {}",
                        format::sprint_value(y),
                        y.type_name()
                    )
                    .into());
                }
            }
        };
        if t {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn less(args: &[Value]) -> Result<bool, FuncError> {
    want_args(args, 2)?;
    let (a, b) = (args[0].resolved(), args[1].resolved());
    let (k1, k2) = (kind(&a), kind(&b));
    if !matches!(k1, Kind::Int | Kind::Float | Kind::Str) {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        if !matches!(k2, Kind::Int | Kind::Float | Kind::Str) {
            return Err("invalid type for comparison".into());
        }
        return Err("incompatible types for comparison".into());
    }
    Ok(match (&*a, &*b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (x, y) => x.as_str() < y.as_str(),
    })
}

fn len_of(v: &Value) -> Result<Value, FuncError> {
    let r = v.resolved();
    let n = match &*r {
        Value::String(s) | Value::SafeHtml(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::Nil => return Err("len of nil pointer".into()),
        other => return Err(format!("len of type {}", other.type_name()).into()),
    };
    Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn index_int(v: &Value, len: usize) -> Result<usize, FuncError> {
    let Value::Int(i) = v else {
        return Err(format!("cannot index slice/array with type {}", v.type_name()).into());
    };
    if *i < 0 || *i as u64 >= len as u64 {
        return Err(format!("index out of range: {i}").into());
    }
    Ok(*i as usize)
}

fn index(args: &[Value], missing: MissingKey) -> Result<Value, FuncError> {
    if args.is_empty() {
        return Err(FuncError::Arity {
            want: "at least 1".into(),
            got: 0,
        });
    }
    let mut item = args[0].resolved().into_owned();
    for key in &args[1..] {
        item = match &item {
            Value::List(l) => l[index_int(key, l.len())?].clone(),
            Value::String(s) | Value::SafeHtml(s) => {
                Value::Int(i64::from(s.as_bytes()[index_int(key, s.len())?]))
            }
            Value::Map(m) => {
                let Some(k) = key.as_str() else {
                    return Err(
                        format!("value has type {}; should be string", key.type_name()).into(),
                    );
                };
                match m.get(k) {
                    Some(v) => v.resolved().into_owned(),
                    // Go returns the map's zero element; for the string maps
                    // Prometheus and Alertmanager pass that is "".
                    None if missing == MissingKey::Zero => Value::String(String::new()),
                    None => Value::Nil,
                }
            }
            Value::Nil => return Err("index of untyped nil".into()),
            other => return Err(format!("can't index item of type {}", other.type_name()).into()),
        };
    }
    Ok(item)
}

fn slice(args: &[Value]) -> Result<Value, FuncError> {
    if args.is_empty() {
        return Err(FuncError::Arity {
            want: "at least 1".into(),
            got: 0,
        });
    }
    let item = args[0].resolved();
    let len = match &*item {
        Value::String(s) | Value::SafeHtml(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Nil => return Err("slice of untyped nil".into()),
        other => return Err(format!("can't slice item of type {}", other.type_name()).into()),
    };
    if args.len() > 4 {
        return Err(format!("too many slice indexes: {}", args.len() - 1).into());
    }
    if args.len() == 4 && matches!(&*item, Value::String(_) | Value::SafeHtml(_)) {
        return Err("cannot 3-index slice a string".into());
    }
    let mut idx = [0usize, len, len];
    for (i, a) in args[1..].iter().enumerate() {
        let Value::Int(n) = a else {
            return Err(format!("cannot index slice/array with type {}", a.type_name()).into());
        };
        if *n < 0 || *n as u64 > len as u64 {
            return Err(format!("index out of range: {n}").into());
        }
        idx[i] = *n as usize;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]).into());
    }
    if args.len() == 4 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]).into());
    }
    Ok(match &*item {
        Value::String(s) => Value::String(
            s.get(idx[0]..idx[1])
                .map(str::to_string)
                .unwrap_or_else(|| {
                    String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned()
                }),
        ),
        Value::SafeHtml(s) => {
            Value::SafeHtml(String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned())
        }
        Value::List(l) => Value::List(l[idx[0]..idx[1]].to_vec()),
        _ => Value::Nil,
    })
}

/// Go's `evalArgs` for the escaping builtins: one string passes as is,
/// anything else goes through `fmt.Sprint` with nil shown as `<no value>`.
fn args_string(args: &[Value]) -> String {
    if let [Value::String(s) | Value::SafeHtml(s)] = args {
        return s.clone();
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|a| match a {
            Value::Nil => Value::String("<no value>".into()),
            other => other.clone(),
        })
        .collect();
    format::sprint(&printable)
}

/// Go's `template.HTMLEscapeString`.
pub fn html_escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The escaping `html/template` applies to values in HTML text context.
pub fn html_escape_content(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '+' => out.push_str("&#43;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_ascii() => out.push(c),
            c if format::is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Runs a builtin other than `and`, `or` and `call`, which the executor
/// handles because they need lazy evaluation or function values.
pub(crate) fn call_builtin(
    name: &str,
    args: &[Value],
    missing: MissingKey,
) -> Result<Value, FuncError> {
    match name {
        "not" => {
            want_args(args, 1)?;
            Ok(Value::Bool(!truth(&args[0])))
        }
        "len" => {
            want_args(args, 1)?;
            len_of(&args[0])
        }
        "index" => index(args, missing),
        "slice" => slice(args),
        "print" => Ok(Value::String(format::sprint(args))),
        "println" => Ok(Value::String(format::sprintln(args))),
        "printf" => {
            let f = arg_str(args, 0)?;
            Ok(Value::String(format::sprintf(f, &args[1..])))
        }
        "html" => Ok(Value::String(html_escape_text(&args_string(args)))),
        "js" => Ok(Value::String(js_escape(&args_string(args)))),
        "urlquery" => Ok(Value::String(query_escape(&args_string(args)))),
        "eq" => eq(args),
        "ne" => {
            want_args(args, 2)?;
            let Value::Bool(b) = eq(args)? else {
                return Ok(Value::Bool(false));
            };
            Ok(Value::Bool(!b))
        }
        "lt" => Ok(Value::Bool(less(args)?)),
        "le" => {
            want_args(args, 2)?;
            let lt = less(args)?;
            Ok(Value::Bool(lt || matches!(eq(args)?, Value::Bool(true))))
        }
        "gt" => {
            want_args(args, 2)?;
            let lt = less(args)?;
            Ok(Value::Bool(!lt && !matches!(eq(args)?, Value::Bool(true))))
        }
        "ge" => {
            want_args(args, 2)?;
            Ok(Value::Bool(!less(args)?))
        }
        other => Err(format!("{other:?} is not a defined function").into()),
    }
}
