//! Behaviour beyond the Go-generated cases: newer Go features, options,
//! template sets, host objects, custom functions and robustness.

use std::collections::BTreeMap;

use pharos_template::{
    Escape, ExecOptions, FuncError, Funcs, MissingKey, Template, TemplateError, TemplateObject,
    Value,
};

fn run_with(text: &str, data: &Value, opts: &ExecOptions) -> Result<String, TemplateError> {
    Template::parse("t", text, &Funcs::new())?.execute("t", data, opts)
}

fn run(text: &str, data: &Value) -> String {
    run_with(text, data, &ExecOptions::default()).unwrap()
}

fn labels() -> Value {
    Value::string_map([("alertname", "HighCPU"), ("job", "node")])
}

#[test]
fn range_over_int_like_go_1_22() {
    assert_eq!(run("{{range 3}}{{.}}{{end}}", &Value::Nil), "012");
    assert_eq!(
        run("{{range $i := 2}}<{{$i}}>{{end}}", &Value::Nil),
        "<0><1>"
    );
    assert_eq!(run("{{range 0}}x{{else}}none{{end}}", &Value::Nil), "none");
    let err = run_with(
        "{{range $i, $e := 3}}{{end}}",
        &Value::Nil,
        &ExecOptions::default(),
    );
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("can't use 3 to iterate over more than one variable")
    );
}

#[test]
fn else_with_like_go_1_23() {
    let d = Value::Map(BTreeMap::from([
        ("E".to_string(), Value::str("")),
        ("N".to_string(), Value::str("web")),
    ]));
    assert_eq!(
        run("{{with .E}}a{{else with .N}}[{{.}}]{{end}}", &d),
        "[web]"
    );
    assert_eq!(
        run("{{with .E}}a{{else with .E}}b{{else}}c{{end}}", &d),
        "c"
    );
}

#[test]
fn missing_key_modes() {
    let d = Value::Map(BTreeMap::from([("Labels".to_string(), labels())]));
    let t = "[{{.Labels.nope}}][{{index .Labels \"nope\"}}][{{.Labels.job}}]";
    assert_eq!(run(t, &d), "[<no value>][<no value>][node]");
    assert_eq!(run_with(t, &d, &ExecOptions::zero()).unwrap(), "[][][node]");
    let strict = ExecOptions {
        missing_key: MissingKey::Error,
        ..ExecOptions::default()
    };
    let err = run_with(t, &d, &strict).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template: t:1:10: executing \"t\" at <.Labels.nope>: map has no entry for key \"nope\""
    );
    // A missing key is falsy in every mode.
    assert_eq!(
        run_with(
            "{{if .Labels.nope}}y{{else}}n{{end}}",
            &d,
            &ExecOptions::zero()
        )
        .unwrap(),
        "n"
    );
}

#[test]
fn html_mode_escapes_action_output_only() {
    let mut funcs = Funcs::new();
    funcs.extend(&pharos_template::funcs::alertmanager());
    let t = Template::parse(
        "h",
        "<p>{{.S}}</p>[{{.Missing}}]{{.S | safeHtml}}{{.S | html}}{{define \"a\"}}<i>{{.}}</i>{{end}}{{template \"a\" 3.5}}",
        &funcs,
    )
    .unwrap();
    let d = Value::Map(BTreeMap::from([(
        "S".to_string(),
        Value::str("<a href='x'>&\"b\"</a> +1"),
    )]));
    // Expected bytes come from Go's html/template.
    assert_eq!(
        t.execute("h", &d, &ExecOptions::html()).unwrap(),
        "<p>&lt;a href=&#39;x&#39;&gt;&amp;&#34;b&#34;&lt;/a&gt; &#43;1</p>[]<a href='x'>&\"b\"</a> +1&lt;a href=&#39;x&#39;&gt;&amp;&#34;b&#34;&lt;/a&gt; +1<i>3.5</i>"
    );
    let mut text = ExecOptions::zero();
    text.escape = Escape::None;
    assert!(
        t.execute("h", &d, &text)
            .unwrap()
            .starts_with("<p><a href='x'>")
    );
}

#[test]
fn later_definitions_override_and_empty_ones_do_not() {
    let mut set = Template::parse(
        "default.tmpl",
        "{{define \"subject\"}}default {{.}}{{end}}{{define \"body\"}}{{block \"inner\" .}}inner-default{{end}}!{{end}}",
        &Funcs::new(),
    )
    .unwrap();
    assert!(set.has("subject") && set.has("inner") && set.has("body"));
    assert!(!set.has("nope"));
    set.add(
        "user.tmpl",
        "{{define \"subject\"}}custom {{.}}{{end}}\n{{define \"inner\"}}inner-custom{{end}}",
    )
    .unwrap();
    let d = Value::str("x");
    let o = ExecOptions::default();
    assert_eq!(set.execute("subject", &d, &o).unwrap(), "custom x");
    assert_eq!(set.execute("body", &d, &o).unwrap(), "inner-custom!");
    // An empty redefinition keeps the old body, as in Go.
    set.add("more.tmpl", "{{define \"subject\"}} {{end}}")
        .unwrap();
    assert_eq!(set.execute("subject", &d, &o).unwrap(), "custom x");
    // A failed parse leaves the set unchanged.
    assert!(set.add("bad.tmpl", "{{define \"subject\"}}{{.X").is_err());
    assert_eq!(set.execute("subject", &d, &o).unwrap(), "custom x");
    assert_eq!(
        set.execute("nope", &d, &o).unwrap_err(),
        TemplateError::NotFound("nope".into())
    );
    // execute_text sees the set's templates but does not change it.
    assert_eq!(
        set.execute_text("<{{template \"subject\" .}}>", &d, &o)
            .unwrap(),
        "<custom x>"
    );
    assert_eq!(set.execute_text("", &d, &o).unwrap(), "");
    assert!(!set.has(""));
}

#[test]
fn custom_functions_and_their_errors() {
    let mut funcs = Funcs::new();
    funcs.insert("double", |a: &[Value]| {
        pharos_template::funcs::want_args(a, 1)?;
        match a[0] {
            Value::Int(i) => Ok(Value::Int(i * 2)),
            ref other => Err(FuncError::Type {
                expected: "int".into(),
                got: other.type_name(),
            }),
        }
    });
    funcs.insert_simple("fail", |_: &[Value]| Err("boom".to_string()));
    // User functions override builtins of the same name, as in Go.
    funcs.insert("len", |_: &[Value]| Ok(Value::Int(-1)));
    let t = |s: &str| {
        Template::parse("t", s, &funcs)
            .and_then(|t| t.execute("t", &Value::Nil, &ExecOptions::default()))
    };
    assert_eq!(
        t("{{double 21}} {{21 | double | double}} {{len \"abc\"}}").unwrap(),
        "42 84 -1"
    );
    assert_eq!(
        t("{{double}}").unwrap_err().to_string(),
        "template: t:1:2: executing \"t\" at <double>: wrong number of args for double: want 1 got 0"
    );
    assert_eq!(
        t("{{double \"x\"}}").unwrap_err().to_string(),
        "template: t:1:2: executing \"t\" at <double \"x\">: wrong type for value; expected int; got string"
    );
    assert_eq!(
        t("x\n {{fail}}").unwrap_err().to_string(),
        "template: t:2:3: executing \"t\" at <fail>: error calling fail: boom"
    );
    assert_eq!(
        t("{{nope}}").unwrap_err().to_string(),
        "template: t:1: function \"nope\" not defined"
    );
}

#[test]
fn call_builtin_invokes_function_values() {
    let f: pharos_template::Func =
        std::sync::Arc::new(|a: &[Value]| Ok(Value::Int(a.len() as i64)));
    let d = Value::Map(BTreeMap::from([("F".to_string(), Value::Func(f))]));
    assert_eq!(run("{{call .F 1 2 3}}", &d), "3");
    let err = run_with("{{.F}}", &d, &ExecOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("can't print .F of type func"),
        "{err}"
    );
}

/// A struct with a field, a method taking arguments, and a map underneath.
#[derive(Debug)]
struct Obj {
    labels: BTreeMap<String, Value>,
}

impl TemplateObject for Obj {
    fn type_name(&self) -> &str {
        "test.Obj"
    }
    fn field(&self, name: &str) -> Option<Value> {
        (name == "Kind").then(|| Value::str("obj"))
    }
    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        match name {
            "Greet" => Some(
                pharos_template::funcs::arg_str(args, 0).map(|s| Value::String(format!("hi {s}"))),
            ),
            _ => None,
        }
    }
    fn underlying(&self) -> Option<Value> {
        Some(Value::Map(self.labels.clone()))
    }
    fn display(&self) -> Option<String> {
        Some(format!("Obj({})", self.labels.len()))
    }
}

#[test]
fn host_objects_expose_fields_methods_and_underlying_maps() {
    let o = Value::object(Obj {
        labels: BTreeMap::from([("b".into(), Value::str("2")), ("a".into(), Value::str("1"))]),
    });
    assert_eq!(
        run(
            "{{.Kind}} {{.Greet \"bob\"}} {{\"ann\" | .Greet}} {{.a}} {{len .}} {{range $k, $v := .}}{{$k}}{{$v}}{{end}} {{.}} {{printf \"%v|%d\" . 5}}",
            &o
        ),
        "obj hi bob hi ann 1 2 a1b2 Obj(2) Obj(2)|5"
    );
    let err = run_with("{{.Kind 1}}", &o, &ExecOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("Kind has arguments but cannot be invoked as function"),
        "{err}"
    );
    let err = run_with("{{.Greet}}", &o, &ExecOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("wrong number of args for Greet: want 1 got 0"),
        "{err}"
    );
}

#[test]
fn recursion_is_bounded() {
    let t = Template::parse(
        "t",
        "{{define \"r\"}}{{template \"r\" .}}{{end}}{{template \"r\"}}",
        &Funcs::new(),
    )
    .unwrap();
    let err = t
        .execute("t", &Value::Nil, &ExecOptions::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("exceeded maximum template depth (128)"),
        "{err}"
    );
    // Deeply nested parentheses are a parse error, not a stack overflow.
    let deep = format!("{{{{{}1{}}}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(Template::parse("t", &deep, &Funcs::new()).is_err());
    let deep_if = format!("{}x{}", "{{if 1}}".repeat(5000), "{{end}}".repeat(5000));
    assert!(Template::parse("t", &deep_if, &Funcs::new()).is_err());
    // Recursion through a deeply nested body stops on the nesting budget.
    let nested = format!(
        "{{{{define \"r\"}}}}{}{{{{template \"r\" .}}}}{}{{{{end}}}}{{{{template \"r\" 1}}}}",
        "{{with 1}}".repeat(60),
        "{{end}}".repeat(60)
    );
    let t = Template::parse("t", &nested, &Funcs::new()).unwrap();
    let opts = ExecOptions {
        max_depth: 100_000,
        ..ExecOptions::default()
    };
    // Half the usual 2 MiB thread stack, to keep a margin in debug builds.
    let err = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || t.execute("t", &Value::Nil, &opts).unwrap_err())
        .unwrap()
        .join()
        .unwrap();
    assert!(
        err.to_string().contains("exceeded maximum nesting"),
        "{err}"
    );
    // Moderate nesting is fine.
    let ok = format!("{}x{}", "{{if 1}}".repeat(90), "{{end}}".repeat(90));
    assert_eq!(run(&ok, &Value::Nil), "x");
}

#[test]
fn floats_print_with_go_shortest_formatting() {
    for (f, want) in [
        (1.0, "1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (2.5e-5, "2.5e-05"),
        (-0.0, "-0"),
        (f64::NEG_INFINITY, "-Inf"),
    ] {
        assert_eq!(run("{{.}}", &Value::Float(f)), want);
    }
}

/// A tiny deterministic generator so the garbage test needs no dependency.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn garbage_templates_never_panic() {
    const PIECES: &[&str] = &[
        "{{",
        "}}",
        "{{-",
        "-}}",
        " ",
        ".",
        ".A",
        ".B.C",
        "$",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        "if",
        "else",
        "end",
        "range",
        "with",
        "define",
        "template",
        "block",
        "break",
        "continue",
        "\"s\"",
        "`r`",
        "'c'",
        "1",
        "-2.5",
        "0x1F",
        "nil",
        "true",
        "len",
        "index",
        "printf",
        "\"%d %s %v %q\"",
        "and",
        "or",
        "not",
        "eq",
        "lt",
        "slice",
        "html",
        "js",
        "call",
        "print",
        "/*",
        "*/",
        ",",
        "é",
        "\n",
        "\\",
        "\"",
        "\u{0}",
        "9999999999999999999999",
        "range 5",
        "{{end}}",
        "{{else}}",
        "{{range .L}}",
        "{{if .A}}",
        "{{$x := 1}}",
    ];
    let data = Value::Map(BTreeMap::from([
        (
            "A".to_string(),
            Value::Map(BTreeMap::from([("C".to_string(), Value::Int(1))])),
        ),
        (
            "L".to_string(),
            Value::List(vec![Value::Int(1), Value::str("x"), Value::Nil]),
        ),
    ]));
    let mut rng = Lcg(0x5eed);
    let funcs = pharos_template::funcs::alertmanager();
    let opts = [
        ExecOptions::default(),
        ExecOptions::zero(),
        ExecOptions::html(),
    ];
    for i in 0..4000 {
        let n = 1 + rng.next() % 16;
        let mut text = String::new();
        for _ in 0..n {
            text.push_str(PIECES[(rng.next() % PIECES.len() as u64) as usize]);
        }
        if let Ok(t) = Template::parse("g", &text, &funcs) {
            let _ = t.execute("g", &data, &opts[i % 3]);
        }
        // Random bytes as well, cut at char boundaries.
        let bytes: Vec<u8> = (0..(rng.next() % 24))
            .map(|_| (rng.next() % 128) as u8)
            .collect();
        let s = String::from_utf8_lossy(&bytes);
        if let Ok(t) = Template::parse("g", &s, &funcs) {
            let _ = t.execute("g", &data, &opts[i % 3]);
        }
    }
}
