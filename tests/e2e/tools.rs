//! Subcommands that run instead of the server.

use crate::support::bin;

#[test]
fn promql_test_runs_scripts_and_reports_one_line() {
    let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../promql/testdata");
    let mut files: Vec<_> = std::fs::read_dir(&testdata)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let out = std::process::Command::new(bin("pharos"))
        .arg("promql-test")
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let last = stdout.lines().last().unwrap();
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed > 100, "{last}");
    assert!(last.ends_with(" passed, 0 failed"), "{last}");

    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.test");
    std::fs::write(
        &wrong,
        "load 1m\n  m{a=\"1\"} 1+1x5\n\neval instant at 2m m\n  m{a=\"1\"} 3\n\neval instant at 2m m\n  m{a=\"1\"} 4\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin("pharos"))
        .arg("promql-test")
        .arg(&wrong)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("FAIL "), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("1 passed, 1 failed"),
        "{stdout}"
    );
}
