//! The alert rules the monitor node ships with (deploy/rules).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::which;

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rules")
}

#[test]
fn every_alert_links_an_existing_runbook() {
    let text = std::fs::read_to_string(rules_dir().join("node.rules.yml")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut alerts = 0;
    for line in text.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            alerts += 1;
            let want = format!("runbook_url: \"docs/runbooks/{name}.md\"");
            assert!(text.contains(&want), "{name} has no runbook_url {want}");
            let doc =
                std::fs::read_to_string(root.join(format!("docs/runbooks/{name}.md"))).unwrap();
            for section in [
                "## What it means",
                "## Likely causes",
                "## First steps",
                "## How to resolve",
                "## When to escalate",
            ] {
                assert!(doc.contains(section), "{name}.md lacks {section}");
            }
        }
    }
    assert_eq!(alerts, 10);
}

/// The shipped unit tests pass under Prometheus' own promtool, and a
/// deliberately wrong expectation fails with a readable diff.
#[test]
fn shipped_rule_tests_pass_under_promtool() {
    let Some(promtool) = which("promtool") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool not installed in CI"
        );
        eprintln!("SKIPPING: no promtool");
        return;
    };
    let dir = rules_dir();
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(dir.join("node.rules.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = Command::new(&promtool)
        .args(["test", "rules"])
        .arg(dir.join("node.rules.test.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.join("node.rules.yml"),
        tmp.path().join("node.rules.yml"),
    )
    .unwrap();
    let wrong = std::fs::read_to_string(dir.join("node.rules.test.yml"))
        .unwrap()
        .replace("CPU usage on n1 is 90.0%", "CPU usage on n1 is 91.0%");
    std::fs::write(tmp.path().join("wrong.test.yml"), wrong).unwrap();
    let out = Command::new(&promtool)
        .args(["test", "rules"])
        .arg(tmp.path().join("wrong.test.yml"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("91.0%") && text.contains("90.0%"), "{text}");
}

/// `metrics-server check rules` and `test rules` agree with promtool on the
/// shipped files, and fail with a readable diff on a wrong expectation.
#[test]
fn metrics_server_checks_and_tests_the_shipped_rules() {
    let dir = rules_dir();
    let ms = crate::support::bin("metrics-server");
    let out = Command::new(&ms)
        .args(["check", "rules"])
        .arg(dir.join("node.rules.yml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS: 14 rules found"), "{text}");
    let out = Command::new(&ms)
        .args(["test", "rules"])
        .arg(dir.join("node.rules.test.yml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS"), "{text}");

    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.join("node.rules.yml"),
        tmp.path().join("node.rules.yml"),
    )
    .unwrap();
    let wrong = std::fs::read_to_string(dir.join("node.rules.test.yml"))
        .unwrap()
        .replace("CPU usage on n1 is 90.0%", "CPU usage on n1 is 91.0%");
    std::fs::write(tmp.path().join("wrong.test.yml"), wrong).unwrap();
    let out = Command::new(&ms)
        .args(["test", "rules"])
        .arg(tmp.path().join("wrong.test.yml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("FAILED") && text.contains("91.0%") && text.contains("90.0%"),
        "{text}"
    );

    // a rule file with a syntax error, an unknown field or a bad template is
    // rejected with file, line and reason
    let bad = tmp.path().join("bad.rules.yml");
    std::fs::write(&bad, "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n        fro: 5m\n").unwrap();
    let out = Command::new(&ms)
        .args(["check", "rules"])
        .arg(&bad)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("fro") && text.contains("line 6"), "{text}");
    std::fs::write(&bad, "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations:\n          x: '{{ .Labels.x '\n").unwrap();
    let out = Command::new(&ms)
        .args(["check", "rules"])
        .arg(&bad)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("template"), "{text}");
}
