use promql_parser::parser::Prettier;
#[test]
fn cmp() {
    let cases: Vec<(String, String)> = serde_json::from_str(&std::fs::read_to_string("/tmp/qa/pretty_cases.json").unwrap()).unwrap();
    let mut bad = 0;
    for (i, o) in &cases {
        match pharos_promql::parse(i) {
            Ok(e) => {
                let got = e.pretty(0, 10);
                if &got != o { bad += 1; println!("IN: {i}\nWANT:\n{o}\nGOT:\n{got}\n"); }
            }
            Err(e) => { bad += 1; println!("IN: {i}\nERR {e}\n"); }
        }
    }
    println!("{bad} of {} differ", cases.len());
}
