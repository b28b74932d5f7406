//! Runs PromQL test scripts given on the command line and prints failures,
//! e.g. `cargo run -p pharos-promql --example run_scripts -- a.test b.test`.

fn main() {
    let mut failed = 0;
    for path in std::env::args().skip(1) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{path}: {e}");
                failed += 1;
                continue;
            }
        };
        let r = pharos_promql::promqltest::run_script(&text);
        println!("== {path}: passed {} failed {}", r.passed, r.failed);
        for f in r.failures {
            println!("  {f}");
        }
        failed += r.failed;
    }
    std::process::exit(i32::from(failed > 0));
}
