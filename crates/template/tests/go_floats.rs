//! Float formatting against Go's fmt: 400 values (edge cases, random bit
//! patterns, random magnitudes) printed by go1.19 with a dozen verbs
//! (`tests/go_floats.json`).

use pharos_template::Value;
use pharos_template::format::sprintf;

#[test]
fn float_verbs_match_go_fmt() {
    let doc: serde_json::Value = serde_json::from_str(include_str!("go_floats.json")).unwrap();
    let verbs: Vec<&str> = doc["verbs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let rows = doc["rows"].as_array().unwrap();
    assert!(rows.len() >= 400);
    let mut bad = Vec::new();
    for row in rows {
        let f = f64::from_bits(row["bits"].as_u64().unwrap());
        for (verb, want) in verbs.iter().zip(row["out"].as_array().unwrap()) {
            let got = sprintf(verb, &[Value::Float(f)]);
            if got != want.as_str().unwrap() {
                bad.push(format!("{verb} of {f:e}: got {got} want {want}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
