//! `promtool test rules` / `promtool check rules` work-alike for manual
//! comparison: `cargo run -p pharos-rules --example test_rules -- [check] FILE...`.

use std::path::PathBuf;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.first().is_some_and(|a| a == "check");
    if check {
        args.remove(0);
    }
    let files: Vec<PathBuf> = args.into_iter().map(PathBuf::from).collect();
    if check {
        let (results, code) = match pharos_rules::unittest::check_rules(&files) {
            Ok(r) => (r, 0),
            Err(r) => (r, 1),
        };
        for r in results {
            print!("{}", r.render());
        }
        std::process::exit(code);
    }
    let (results, code) = pharos_rules::unittest::test_rules(&files);
    for r in results {
        print!("{}", r.render());
    }
    std::process::exit(code);
}
