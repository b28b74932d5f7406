//! Runs every script under testdata/ and fails on any failed eval.

use pharos_promql::promqltest::run_script;

#[test]
fn all_testdata_scripts_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scripts in {}", dir.display());
    let mut failures = Vec::new();
    let mut passed = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let r = run_script(&text);
        assert!(r.passed > 0, "{} ran no evals", f.display());
        passed += r.passed;
        for m in r.failures {
            failures.push(format!("{}: {m}", f.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} passed, failures:\n{}",
        passed,
        failures.join("\n")
    );
}
