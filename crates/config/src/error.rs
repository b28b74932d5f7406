//! The one error type of config loading.

use std::fmt::Write as _;

/// Why a config could not be loaded.
///
/// Its `Display` is one line a person can act on: the file, the line when
/// known, the key, and what to do, e.g.
/// `config error in pharos.yaml line 7: key "server.grace": invalid duration "5x": ...`.
/// Secrets never appear in it: values are quoted only when a parser rejected them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read (missing, permissions, not UTF-8).
    #[error("config error in {file}: cannot read file: {source}")]
    Io {
        /// The path as given.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A key that the section does not define: usually a typo.
    #[error("{}", render_unknown(.file, *.line, .key, .expected))]
    UnknownKey {
        /// The file being loaded.
        file: String,
        /// 1-based line of the unknown key.
        line: Option<usize>,
        /// Full dotted path of the unknown key, e.g. `server.htp_listen_address`.
        key: String,
        /// The keys the section accepts.
        expected: Vec<String>,
    },
    /// Anything else: YAML syntax, a wrong type or value, an unset environment
    /// variable, a failed validation.
    #[error("{}", render_invalid(.file, *.line, .key.as_deref(), .message))]
    Invalid {
        /// The file being loaded.
        file: String,
        /// 1-based line, when it can be known (a defaulted key has none).
        line: Option<usize>,
        /// Dotted key path, e.g. `server.graceful_shutdown_timeout`.
        key: Option<String>,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] error; for callers that check config after
    /// loading (for example against command-line flags).
    pub fn invalid(
        file: impl Into<String>,
        line: Option<usize>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            file: file.into(),
            line,
            key,
            message: message.into(),
        }
    }

    /// The file the error is about.
    pub fn file(&self) -> &str {
        match self {
            ConfigError::Io { file, .. }
            | ConfigError::UnknownKey { file, .. }
            | ConfigError::Invalid { file, .. } => file,
        }
    }

    /// 1-based line in the file, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::UnknownKey { line, .. } | ConfigError::Invalid { line, .. } => *line,
        }
    }

    /// Dotted key path the error is about, when known.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::UnknownKey { key, .. } => Some(key),
            ConfigError::Invalid { key, .. } => key.as_deref(),
        }
    }
}

fn prefix(file: &str, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("config error in {file} line {line}: "),
        None => format!("config error in {file}: "),
    }
}

fn render_invalid(file: &str, line: Option<usize>, key: Option<&str>, message: &str) -> String {
    let mut out = prefix(file, line);
    if let Some(key) = key {
        let _ = write!(out, "key \"{key}\": ");
    }
    out.push_str(message);
    out
}

fn render_unknown(file: &str, line: Option<usize>, key: &str, expected: &[String]) -> String {
    let mut out = prefix(file, line);
    match key.rsplit_once('.') {
        Some((parent, name)) => {
            let _ = write!(out, "unknown key \"{name}\" under \"{parent}\"");
        }
        None => {
            let _ = write!(out, "unknown top-level key \"{key}\"");
        }
    }
    let name = key.rsplit_once('.').map_or(key, |(_, name)| name);
    if let Some(close) = closest(name, expected) {
        let _ = write!(out, ", did you mean \"{close}\"?");
    }
    if expected.is_empty() {
        out.push_str(" (this section takes no keys)");
    } else {
        let _ = write!(out, " (expected one of: {})", expected.join(", "));
    }
    out
}

/// The expected key nearest to a typo, if near enough to be a likely fix.
fn closest<'a>(name: &str, expected: &'a [String]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    expected
        .iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_file_line_and_key() {
        let err = ConfigError::invalid(
            "/etc/pharos.yaml",
            Some(7),
            Some("server.graceful_shutdown_timeout".into()),
            "invalid duration \"5x\"",
        );
        assert_eq!(
            err.to_string(),
            "config error in /etc/pharos.yaml line 7: key \"server.graceful_shutdown_timeout\": invalid duration \"5x\""
        );
        assert_eq!(err.line(), Some(7));
        assert_eq!(err.key(), Some("server.graceful_shutdown_timeout"));
        assert_eq!(err.file(), "/etc/pharos.yaml");
    }

    #[test]
    fn invalid_without_line_or_key() {
        let err = ConfigError::invalid("a.yaml", None, None, "boom");
        assert_eq!(err.to_string(), "config error in a.yaml: boom");
        assert_eq!(err.line(), None);
        assert_eq!(err.key(), None);
    }

    #[test]
    fn unknown_key_suggests_the_nearest() {
        let err = ConfigError::UnknownKey {
            file: "pharos.yaml".into(),
            line: Some(3),
            key: "server.htp_listen_address".into(),
            expected: vec!["http_listen_address".into(), "grpc_listen_address".into()],
        };
        assert_eq!(
            err.to_string(),
            "config error in pharos.yaml line 3: unknown key \"htp_listen_address\" under \"server\", \
             did you mean \"http_listen_address\"? (expected one of: http_listen_address, grpc_listen_address)"
        );
        assert_eq!(err.key(), Some("server.htp_listen_address"));
    }

    #[test]
    fn unknown_top_level_key_without_near_match() {
        let err = ConfigError::UnknownKey {
            file: "p.yaml".into(),
            line: None,
            key: "zzz".into(),
            expected: vec!["server".into()],
        };
        assert_eq!(
            err.to_string(),
            "config error in p.yaml: unknown top-level key \"zzz\" (expected one of: server)"
        );
    }

    #[test]
    fn io_error_names_the_path() {
        let err = ConfigError::Io {
            file: "/nope/pharos.yaml".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory"),
        };
        assert_eq!(
            err.to_string(),
            "config error in /nope/pharos.yaml: cannot read file: No such file or directory"
        );
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
