//! Runs templates whose expected output was produced by Go's `text/template`
//! (go1.19, `tests/go_cases.json`, data decoded from JSON with integers as
//! `int`) and checks that this engine prints the same bytes or fails with
//! the same message.

use pharos_template::{ExecOptions, Funcs, MissingKey, Template, Value};

fn to_value(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            let text = n.to_string();
            match n.as_i64() {
                Some(i) if !text.contains(['.', 'e', 'E']) => Value::Int(i),
                _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            }
        }
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::List(a.iter().map(to_value).collect()),
        serde_json::Value::Object(o) => {
            Value::Map(o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect())
        }
    }
}

/// Cases where we knowingly differ from Go, and why.
const DEVIATIONS: &[(&str, &str)] = &[
    // Go reports the static type of a map element (`interface {}`); our
    // values carry only their dynamic type.
    ("field_on_string", "static type names"),
    ("field_err_pos", "static type names"),
    // Go's missingkey=zero yields nil for map[string]interface{}; we yield ""
    // because Prometheus/Alertmanager data is map[string]string.
    ("missing_zero", "zero value of string maps"),
    // Go blames the last evaluated node; we name the variable.
    ("assign_undeclared", "error context"),
    // Newer Go (1.21+) names the argument: "non-function .Name of type string".
    ("call_nonfunc", "newer Go wording"),
    // Go tells a nil map value (nil pointer error) from a missing key
    // (`<no value>`); our Value::Nil is both.
    ("field_on_nil_value", "nil vs missing"),
    ("field_on_list", "static type names"),
    // Go's hex-float (%x on floats), imaginary and hex-float literals are
    // not supported.
    ("printf_float_hex", "unsupported"),
    ("number_imag", "unsupported"),
    ("number_hexfloat", "unsupported"),
    // `{{else with}}` arrived in Go 1.23; tested in engine.rs instead.
    ("with_else_with", "newer than the oracle"),
];

#[test]
fn matches_go_text_template() {
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("go_cases.json")).unwrap();
    assert!(cases.len() > 100);
    let mut failures = Vec::new();
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        if DEVIATIONS.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let tmpl = c["tmpl"].as_str().unwrap();
        let data = to_value(&c["data"]);
        let opts = ExecOptions {
            missing_key: match c["missingkey"].as_str() {
                Some("zero") => MissingKey::Zero,
                Some("error") => MissingKey::Error,
                _ => MissingKey::Default,
            },
            ..ExecOptions::default()
        };
        let got =
            Template::parse("t", tmpl, &Funcs::new()).and_then(|t| t.execute("t", &data, &opts));
        let ok = match (&got, c["want"].as_str(), c["err"].as_str()) {
            (Ok(out), Some(want), _) => out == want,
            (Err(e), _, Some(want)) => e.to_string() == want,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{name}: template {tmpl:?}\n   got  {got:?}\n   want {:?} / err {:?}",
                c["want"], c["err"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
