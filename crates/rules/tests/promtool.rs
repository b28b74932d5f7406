//! Runs the real `promtool` (Prometheus 2.42) and our runner on the same
//! files and requires the same verdicts.

use std::path::{Path, PathBuf};
use std::process::Command;

use pharos_rules::unittest;

const PROMTOOL: &str = "/usr/bin/promtool";

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// promtool's exit status, or None (loudly) when it is not installed.
fn promtool(args: &[&str], file: &Path) -> Option<(i32, String)> {
    if !Path::new(PROMTOOL).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("{PROMTOOL} is required in CI");
        }
        eprintln!("SKIPPING promtool comparison: {PROMTOOL} not found");
        return None;
    }
    let out = Command::new(PROMTOOL)
        .args(args)
        .arg(file)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.code().unwrap_or(-1), text))
}

fn compare_test_rules(name: &str, expect_pass: bool) {
    let file = testdata(name);
    let (results, ours) = unittest::test_rules(std::slice::from_ref(&file));
    let rendered: String = results.iter().map(|r| r.render()).collect();
    assert_eq!(
        ours == 0,
        expect_pass,
        "our verdict for {name} is wrong:\n{rendered}"
    );
    if let Some((theirs, text)) = promtool(&["test", "rules"], &file) {
        assert_eq!(
            ours, theirs,
            "verdicts differ for {name}\n--- promtool:\n{text}\n--- ours:\n{rendered}"
        );
    }
}

#[test]
fn passing_unit_tests_agree_with_promtool() {
    compare_test_rules("tests.yml", true);
}

#[test]
fn failing_unit_tests_agree_with_promtool() {
    compare_test_rules("failing_tests.yml", false);
}

#[test]
fn failure_messages_match_promtool_text() {
    for name in ["failing_tests.yml", "eval_error_tests.yml"] {
        compare_texts(name);
    }
}

fn compare_texts(name: &str) {
    compare_test_rules(name, false);
    let file = testdata(name);
    let (results, _) = unittest::test_rules(std::slice::from_ref(&file));
    let Some((_, text)) = promtool(&["test", "rules"], &file) else {
        return;
    };
    // promtool writes the verdict to stderr and blank lines to stdout, so
    // only the error bodies are compared.
    for e in &results[0].errors {
        assert!(
            text.contains(e.as_str()),
            "promtool output lacks our error\n{e}\n--- promtool:\n{text}"
        );
    }
    assert!(!results[0].errors.is_empty());
}

#[test]
fn check_rules_agrees_with_promtool() {
    for (name, ok) in [("rules.yml", true), ("bad_rules.yml", false)] {
        let file = testdata(name);
        let ours = unittest::check_rules(std::slice::from_ref(&file));
        assert_eq!(ours.is_ok(), ok, "{name}: {ours:?}");
        if let Some((code, text)) = promtool(&["check", "rules"], &file) {
            assert_eq!(code == 0, ok, "promtool disagrees on {name}:\n{text}");
        }
    }
}

#[test]
fn check_rules_messages_match_promtool_lines() {
    let file = testdata("bad_rules.yml");
    let ours = unittest::check_rules(std::slice::from_ref(&file)).unwrap_err();
    let Some((_, text)) = promtool(&["check", "rules"], &file) else {
        return;
    };
    assert_eq!(ours[0].errors.len(), 3, "{:?}", ours[0].errors);
    for e in &ours[0].errors {
        // The PromQL parser's own wording differs; everything up to it
        // (file, position, group, rule, reason) must match.
        let key = e.split(": parse error").next().unwrap_or(e);
        let key = key
            .split("could not parse expression:")
            .next()
            .unwrap_or(key);
        assert!(text.contains(key), "promtool lacks {key:?}\n{text}");
    }
}

#[test]
fn edge_cases_agree_with_promtool() {
    compare_test_rules("edge_tests.yml", true);
}
