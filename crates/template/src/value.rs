use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::error::FuncError;
use crate::funcs::Func;

/// A dynamically typed template value, the Rust stand-in for Go's
/// `interface{}` data.
///
/// Maps are `BTreeMap`s because Go ranges and prints maps in sorted key order.
#[derive(Clone, Default)]
pub enum Value {
    /// Go's nil interface; printed as `<no value>` by an action.
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    /// A string that HTML escaping must leave alone (Go's `template.HTML`);
    /// behaves like a string everywhere else.
    SafeHtml(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// A host object exposing fields and methods (Go structs with methods).
    Object(Arc<dyn TemplateObject>),
    /// A function value, for the `call` builtin.
    Func(Func),
}

/// A host value with Go-like fields and methods, e.g. Alertmanager's `Alerts`
/// (a list with `.Firing` and `.Resolved`) or `KV` (a map with
/// `.SortedPairs`).
///
/// Lookup of `.Name` follows Go: a method named `Name` wins over a field,
/// then a field, then (if the object has an underlying map) the map key.
pub trait TemplateObject: Any + Send + Sync + fmt::Debug {
    /// The Go type name used in error messages and `%T`.
    fn type_name(&self) -> &str;

    /// A field value, or `None` when the object has no such field.
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }

    /// Calls a method; `None` means there is no method of that name.
    fn method(&self, _name: &str, _args: &[Value]) -> Option<Result<Value, FuncError>> {
        None
    }

    /// The list or map this object is, for `range`, `len`, `index`,
    /// comparisons, truthiness and map-key fields. `None` for a plain struct.
    fn underlying(&self) -> Option<Value> {
        None
    }

    /// The result of Go's `String()` method, used when the value is printed.
    fn display(&self) -> Option<String> {
        None
    }

    /// Struct field names in declaration order, so a struct without
    /// `String()` prints as Go prints it: `{value value ...}`.
    fn field_names(&self) -> &[&str] {
        &[]
    }
}

impl Value {
    /// Builds a string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// Builds a map value from string pairs, the shape of Prometheus labels.
    pub fn string_map<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), Value::String(v.into())))
                .collect(),
        )
    }

    /// Wraps a host object.
    pub fn object(o: impl TemplateObject) -> Value {
        Value::Object(Arc::new(o))
    }

    /// The value an object stands for, or the value itself.
    pub(crate) fn resolved(&self) -> std::borrow::Cow<'_, Value> {
        if let Value::Object(o) = self
            && let Some(u) = o.underlying()
        {
            return std::borrow::Cow::Owned(u);
        }
        std::borrow::Cow::Borrowed(self)
    }

    /// Go's notion of truth: zero values and empty collections are false.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) | Value::SafeHtml(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Object(o) => o.underlying().is_none_or(|u| u.is_true()),
            Value::Func(_) => true,
        }
    }

    /// The string content of a string-kinded value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::SafeHtml(s) => Some(s),
            _ => None,
        }
    }

    /// The Go type name, as `%T` and error messages show it.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float64".into(),
            Value::String(_) => "string".into(),
            Value::SafeHtml(_) => "template.HTML".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(_) => "map[string]interface {}".into(),
            Value::Object(o) => o.type_name().to_string(),
            Value::Func(_) => "func".into(),
        }
    }

    /// Downcasts an object value to a concrete host type.
    pub fn downcast<T: TemplateObject>(&self) -> Option<&T> {
        match self {
            Value::Object(o) => {
                let any: &dyn Any = o.as_ref();
                any.downcast_ref::<T>()
            }
            _ => None,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "Nil"),
            Value::Bool(b) => write!(f, "Bool({b})"),
            Value::Int(i) => write!(f, "Int({i})"),
            Value::Float(x) => write!(f, "Float({x})"),
            Value::String(s) => write!(f, "String({s:?})"),
            Value::SafeHtml(s) => write!(f, "SafeHtml({s:?})"),
            Value::List(l) => f.debug_list().entries(l).finish(),
            Value::Map(m) => f.debug_map().entries(m).finish(),
            Value::Object(o) => write!(f, "Object({o:?})"),
            Value::Func(_) => write!(f, "Func"),
        }
    }
}

/// Formats like Go's `fmt.Sprint` of the value.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::format::sprint_value(self))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}
