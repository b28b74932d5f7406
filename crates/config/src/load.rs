//! Reading a config: expand, parse strictly, validate.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::env::expand_env;
use crate::error::ConfigError;
use crate::locate::locate;
use crate::validate::{Validate, Validator};

/// A config loaded from a file.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The parsed and validated config.
    pub value: T,
    /// Where it was read from.
    pub path: PathBuf,
    /// The text after `${VAR}` expansion, as parsed. It holds any secrets the
    /// environment supplied: never log or serve it; serialize `value` instead,
    /// which masks [`Secret`](crate::Secret)s.
    pub text: String,
}

/// Loads a config from `text`: expands `${VAR}` through `env`, parses YAML
/// strictly (unknown keys are errors when the structs deny them), then runs
/// [`Validate`]. `file` names the source in errors. Empty text, or only
/// comments, gives the defaults.
pub fn load_str<T: DeserializeOwned + Validate>(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<T, ConfigError> {
    let expanded = expand_env(text, file, env)?;
    parse(&expanded, file)
}

/// Reads `path` and loads it as [`load_str`] does.
pub fn load_file<T: DeserializeOwned + Validate>(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded<T>, ConfigError> {
    let file = path.display().to_string();
    let raw = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: file.clone(),
        source,
    })?;
    let text = expand_env(&raw, &file, env)?;
    let value = parse(&text, &file)?;
    Ok(Loaded {
        value,
        path: path.to_owned(),
        text,
    })
}

fn parse<T: DeserializeOwned + Validate>(text: &str, file: &str) -> Result<T, ConfigError> {
    // A first untyped pass tells YAML syntax errors apart from schema errors
    // and recognises an empty document.
    let document: serde_yaml::Value = serde_yaml::from_str(text).map_err(|err| {
        let line = err.location().map(|l| l.line());
        let message = format!("invalid YAML: {}", context_lines(&strip_mark(&err)));
        ConfigError::invalid(file, line, None, message)
    })?;
    let source = if document.is_null() { "{}" } else { text };
    let value: T = serde_yaml::from_str(source).map_err(|err| translate(&err, text, file))?;
    let mut validator = Validator::new();
    value.validate(&mut validator);
    match validator.into_errors().into_iter().next() {
        Some((key, message)) => Err(ConfigError::invalid(
            file,
            locate(text, &key),
            (!key.is_empty()).then_some(key),
            message,
        )),
        None => Ok(value),
    }
}

/// The error's text without serde_yaml's ` at line L column C`: the
/// [`ConfigError`] shows the line its own way.
fn strip_mark(err: &serde_yaml::Error) -> String {
    let text = err.to_string();
    match err.location() {
        Some(loc) => text.replacen(
            &format!(" at line {} column {}", loc.line(), loc.column()),
            "",
            1,
        ),
        None => text,
    }
}

/// Rewrites libyaml's context marks (`while parsing a block mapping at line
/// 2 column 3`) as `... started on line 2`: columns are noise in one line.
fn context_lines(message: &str) -> String {
    const MARK: &str = " at line ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let Some(column) = after[digits..].strip_prefix(" column ") else {
            out.push_str(&rest[..at + MARK.len()]);
            rest = after;
            continue;
        };
        let column_digits = column.len()
            - column
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        out.push_str(&rest[..at]);
        out.push_str(" started on line ");
        out.push_str(&after[..digits]);
        rest = &column[column_digits..];
    }
    out.push_str(rest);
    out
}

/// Turns a serde_yaml schema error (`path: message`) into a [`ConfigError`]
/// naming the key.
fn translate(err: &serde_yaml::Error, text: &str, file: &str) -> ConfigError {
    let full = strip_mark(err);
    // serde_yaml writes `path: message`; a path has no blanks, a message
    // without a path (an error at the root) has one before any `: `.
    let (path, message) = match full.split_once(": ") {
        Some((path, message)) if !path.contains(char::is_whitespace) => (path, message),
        _ => ("", full.as_str()),
    };
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    let located = |key: &str| {
        err.location()
            .map(|l| l.line())
            .or_else(|| locate(text, key))
    };

    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (name, expected) = split_expected(rest);
        let key = join(&name);
        return ConfigError::UnknownKey {
            file: file.to_owned(),
            line: located(&key),
            expected,
            key,
        };
    }
    let key = (!path.is_empty()).then(|| path.to_owned());
    let message = if let Some(rest) = message.strip_prefix("unknown variant ") {
        let (name, expected) = split_expected(rest);
        format!(
            "unknown value \"{name}\" (expected one of: {})",
            expected.join(", ")
        )
    } else if let Some(rest) = message.strip_prefix("missing field ") {
        format!("missing required key \"{}\"", rest.trim_matches('`'))
    } else if let Some(rest) = message.strip_prefix("duplicate field ") {
        format!("key \"{}\" is given twice", rest.trim_matches('`'))
    } else {
        message.replace('`', "\"")
    };
    let line = located(path);
    ConfigError::Invalid {
        file: file.to_owned(),
        line,
        key,
        message,
    }
}

/// Splits serde's "`name`, expected one of `a`, `b`" into the name and the
/// expected list.
fn split_expected(rest: &str) -> (String, Vec<String>) {
    let (name, tail) = rest.split_once(", ").unwrap_or((rest, ""));
    let name = name.trim_matches('`').to_owned();
    let expected = tail
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    (name, expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Duration, Env, Secret};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Server {
        http_listen_address: String,
        graceful_shutdown_timeout: Duration,
        password: Secret,
    }

    impl Default for Server {
        fn default() -> Self {
            Server {
                http_listen_address: "0.0.0.0:9090".into(),
                graceful_shutdown_timeout: Duration::from_secs(30),
                password: Secret::default(),
            }
        }
    }

    impl Validate for Server {
        fn validate(&self, v: &mut Validator) {
            v.check(
                self.graceful_shutdown_timeout.as_std() <= std::time::Duration::from_secs(3600),
                "graceful_shutdown_timeout",
                "must be at most 1h",
            );
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Single,
        Cluster,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Target {
        name: String,
        #[serde(default)]
        weight: u32,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct App {
        mode: Mode,
        server: Server,
        targets: Vec<Target>,
    }

    impl Default for App {
        fn default() -> Self {
            App {
                mode: Mode::Single,
                server: Server::default(),
                targets: Vec::new(),
            }
        }
    }

    impl Validate for App {
        fn validate(&self, v: &mut Validator) {
            v.section("server", &self.server);
            for (i, target) in self.targets.iter().enumerate() {
                v.nested(&format!("targets[{i}]"), |v| {
                    v.check(target.weight <= 100, "weight", "must be at most 100");
                });
            }
        }
    }

    fn load(text: &str) -> Result<App, ConfigError> {
        let env = Env::from_pairs([("PASSWORD", "hunter2")]);
        load_str(text, "pharos.yaml", &|name| env.get(name))
    }

    #[test]
    fn parses_nested_values_with_env() {
        let app = load(
            "mode: cluster\nserver:\n  graceful_shutdown_timeout: 1m\n  password: ${PASSWORD}\n\
             targets:\n  - name: a\n    weight: 3\n",
        )
        .unwrap();
        assert_eq!(app.mode, Mode::Cluster);
        assert_eq!(
            app.server.graceful_shutdown_timeout,
            Duration::from_secs(60)
        );
        assert_eq!(app.server.password.expose(), "hunter2");
        assert_eq!(app.server.http_listen_address, "0.0.0.0:9090");
        assert_eq!(
            app.targets,
            [Target {
                name: "a".into(),
                weight: 3
            }]
        );
    }

    #[test]
    fn empty_or_comment_only_file_gives_defaults() {
        for text in ["", "\n\n", "# nothing here\n  # still nothing\n", "---\n"] {
            assert_eq!(load(text).unwrap(), App::default(), "{text:?}");
        }
    }

    #[test]
    fn unknown_key_names_key_parent_and_line() {
        let err = load("server:\n  graceful_shutdown_timeout: 5s\n  htp_listen_address: x\n")
            .unwrap_err();
        assert_eq!(err.line(), Some(3));
        assert_eq!(err.key(), Some("server.htp_listen_address"));
        assert_eq!(
            err.to_string(),
            "config error in pharos.yaml line 3: unknown key \"htp_listen_address\" under \"server\", \
             did you mean \"http_listen_address\"? (expected one of: http_listen_address, \
             graceful_shutdown_timeout, password)"
        );
    }

    #[test]
    fn unknown_top_level_key() {
        let err = load("mode: single\nservers: {}\n").unwrap_err();
        assert_eq!((err.line(), err.key()), (Some(2), Some("servers")));
        assert!(
            err.to_string().starts_with(
                "config error in pharos.yaml line 2: unknown top-level key \"servers\", did you mean \"server\"?"
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_in_list_item() {
        let err = load("targets:\n  - name: a\n  - name: b\n    wieght: 2\n").unwrap_err();
        assert_eq!(
            (err.line(), err.key()),
            (Some(4), Some("targets[1].wieght"))
        );
        assert!(err.to_string().contains("under \"targets[1]\""), "{err}");
    }

    #[test]
    fn bad_duration_names_key_and_line() {
        let err =
            load("\nserver:\n  http_listen_address: ':80'\n  graceful_shutdown_timeout: 5x\n")
                .unwrap_err();
        assert_eq!(err.line(), Some(4));
        assert_eq!(err.key(), Some("server.graceful_shutdown_timeout"));
        assert_eq!(
            err.to_string(),
            "config error in pharos.yaml line 4: key \"server.graceful_shutdown_timeout\": \
             invalid duration \"5x\": use units ms, s, m, h, d, w, y like 1h30m"
        );
    }

    #[test]
    fn wrong_type_and_unknown_variant() {
        let err = load("targets:\n  - name: a\n    weight: heavy\n").unwrap_err();
        assert_eq!(
            (err.line(), err.key()),
            (Some(3), Some("targets[0].weight"))
        );
        assert!(
            err.to_string()
                .contains("invalid type: string \"heavy\", expected u32"),
            "{err}"
        );

        let err = load("mode: clustered\n").unwrap_err();
        assert_eq!((err.line(), err.key()), (Some(1), Some("mode")));
        assert!(
            err.to_string().ends_with(
                "key \"mode\": unknown value \"clustered\" (expected one of: single, cluster)"
            ),
            "{err}"
        );
    }

    #[test]
    fn missing_required_key() {
        let err = load("targets:\n  - weight: 1\n").unwrap_err();
        assert_eq!(err.key(), Some("targets[0]"));
        assert_eq!(err.line(), Some(2));
        assert!(
            err.to_string().ends_with("missing required key \"name\""),
            "{err}"
        );
    }

    #[test]
    fn validation_error_names_key_and_line() {
        let err = load("server:\n  password: x\n  graceful_shutdown_timeout: 2h\n").unwrap_err();
        assert_eq!(err.line(), Some(3));
        assert_eq!(err.key(), Some("server.graceful_shutdown_timeout"));
        assert_eq!(
            err.to_string(),
            "config error in pharos.yaml line 3: key \"server.graceful_shutdown_timeout\": must be at most 1h"
        );
        let err = load("targets:\n  - name: a\n  - name: b\n    weight: 101\n").unwrap_err();
        assert_eq!(
            (err.line(), err.key()),
            (Some(4), Some("targets[1].weight"))
        );
    }

    #[test]
    fn yaml_syntax_error_has_line() {
        let err = load("server:\n  password: [unclosed\nmode: single\n").unwrap_err();
        assert_eq!(err.key(), None);
        assert!(err.line().is_some());
        assert!(err.to_string().contains("invalid YAML: "), "{err}");
        assert_eq!(
            err.to_string(),
            "config error in pharos.yaml line 3: invalid YAML: did not find expected ',' or ']', \
             while parsing a flow sequence started on line 2"
        );
        assert_eq!(
            context_lines("x at line 12 column 4, y at line 3 column 1"),
            "x started on line 12, y started on line 3"
        );
        assert_eq!(
            context_lines("look at line of sight"),
            "look at line of sight"
        );
    }

    #[test]
    fn env_error_stops_loading() {
        let err = load("server:\n  password: ${NOPE}\n").unwrap_err();
        assert_eq!((err.line(), err.key()), (Some(2), Some("password")));
    }

    #[test]
    fn secrets_do_not_leak_in_errors() {
        let err = load("server:\n  password: ${PASSWORD}\n  bogus: 1\n").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn load_file_reads_expands_and_reports_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pharos.yaml");
        std::fs::write(&path, "server:\n  password: ${PASSWORD}\n").unwrap();
        let env = Env::from_pairs([("PASSWORD", "s3cret")]);
        let loaded: Loaded<App> = load_file(&path, &|name| env.get(name)).unwrap();
        assert_eq!(loaded.value.server.password.expose(), "s3cret");
        assert_eq!(loaded.text, "server:\n  password: s3cret\n");
        assert_eq!(loaded.path, path);

        std::fs::write(&path, "server:\n  graceful_shutdown_timeout: 1q\n").unwrap();
        let err = load_file::<App>(&path, &|name| env.get(name)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("config error in {} line 2: ", path.display())),
            "{err}"
        );

        let missing = dir.path().join("absent.yaml");
        let err = load_file::<App>(&missing, &|_| None).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
    }
}
