//! `${VAR}` expansion and `.env` files.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::error::ConfigError;

/// Expands `${VAR}` and `${VAR:-default}` in config text before it is parsed.
///
/// - `${VAR:-default}` uses `default` when `VAR` is unset or empty (shell `:-`).
/// - `$$` is a literal `$`; a `$` followed by anything but `{` or `$` is kept.
/// - Comments (a `#` at the start of a line or after whitespace, outside
///   quotes) are copied untouched, so a commented-out `${X}` never fails.
/// - An unset variable without a default is an error naming the variable,
///   the key on that line, the file and the line.
///
/// Substitution is textual, as in Loki's `-config.expand-env`: quote the
/// reference (`password: "${PASSWORD}"`) when a value may hold YAML syntax.
pub fn expand_env(
    text: &str,
    file: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (index, line) in lines.iter().enumerate() {
        expand_line(line, lookup, &mut out).map_err(|failure| {
            let key = line_key(&lines, index, failure.at);
            ConfigError::invalid(file, Some(index + 1), key, failure.message)
        })?;
    }
    Ok(out)
}

struct Failure {
    /// Byte offset in the line of the failing `${`.
    at: usize,
    message: String,
}

fn expand_line(
    line: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), Failure> {
    let bytes = line.as_bytes();
    let mut quote: Option<u8> = None;
    // Last non-blank byte outside the current scalar: decides whether a quote
    // opens a quoted scalar (`key: "x"`) or is part of a plain one (`don't`).
    let mut previous: Option<u8> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match (quote, b) {
            (Some(b'"'), b'\\') => i += 1,
            (Some(b'\''), b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 1,
            (Some(q), _) if b == q => quote = None,
            (None, b'"' | b'\'')
                if matches!(
                    previous,
                    None | Some(b':' | b'-' | b'[' | b'{' | b',' | b'?')
                ) =>
            {
                quote = Some(b);
            }
            (None, b'#') if i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t' => {
                out.push_str(&line[copied..]);
                return Ok(());
            }
            (_, b'$') => {
                out.push_str(&line[copied..i]);
                match bytes.get(i + 1) {
                    Some(b'$') => {
                        out.push('$');
                        i += 2;
                    }
                    Some(b'{') => i = expand_reference(line, i, lookup, out)?,
                    _ => {
                        out.push('$');
                        i += 1;
                    }
                }
                copied = i;
                previous = Some(b'$');
                continue;
            }
            _ => {}
        }
        if quote.is_none() && !b.is_ascii_whitespace() {
            previous = Some(b);
        }
        i += 1;
    }
    out.push_str(&line[copied..]);
    Ok(())
}

/// Expands the `${...}` starting at `start`; returns the offset after it.
fn expand_reference(
    line: &str,
    start: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<usize, Failure> {
    let fail = |message: String| Failure { at: start, message };
    let body_start = start + 2;
    let Some(len) = line[body_start..].find('}') else {
        return Err(fail(format!(
            "unterminated \"${{\" in \"{}\": close it with }} or write $$ for a literal $",
            line[start..].trim_end()
        )));
    };
    let body = &line[body_start..body_start + len];
    let (name, default) = match body.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (body, None),
    };
    if !is_var_name(name) {
        return Err(fail(format!(
            "invalid variable reference \"${{{body}}}\": write ${{NAME}} or ${{NAME:-default}} \
             with a name of letters, digits and _, or $$ for a literal $"
        )));
    }
    let value = match (lookup(name), default) {
        (Some(value), Some(default)) if value.is_empty() => default.to_owned(),
        (Some(value), _) => value,
        (None, Some(default)) => default.to_owned(),
        (None, None) => {
            return Err(fail(format!(
                "environment variable {name} is not set and has no default \
                 (write ${{{name}:-value}} to give one)"
            )));
        }
    };
    out.push_str(&value);
    Ok(body_start + len + 1)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The YAML key a `${` at byte `at` of line `index` belongs to: the key on
/// that line, or for a list item without one (`- ${HOST}`) the nearest
/// less-indented key above it.
fn line_key(lines: &[&str], index: usize, at: usize) -> Option<String> {
    if let Some(key) = key_on_line(&lines[index][..at]) {
        return Some(key);
    }
    let indent = indentation(lines[index]);
    lines[..index]
        .iter()
        .rev()
        .filter(|line| !is_blank_or_comment(line) && indentation(line) < indent)
        .find_map(|line| key_on_line(line))
}

/// Text before the first `:` that ends a YAML key (followed by a blank or
/// the end), trimmed, with any leading `- ` removed.
fn key_on_line(line: &str) -> Option<String> {
    let mut content = line.trim_start();
    while let Some(rest) = content.strip_prefix('-') {
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            break;
        }
        content = rest.trim_start();
    }
    let bytes = content.as_bytes();
    let colon = (0..bytes.len()).find(|&i| {
        bytes[i] == b':'
            && bytes
                .get(i + 1)
                .is_none_or(|next| next.is_ascii_whitespace())
    })?;
    let key = content[..colon].trim().trim_matches(['"', '\'']);
    (!key.is_empty()).then(|| key.to_owned())
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// Reads a `.env` file as docker compose does: `KEY=VALUE` lines, an optional
/// `export ` prefix, `#` comments, blank lines, `'single'` (literal) or
/// `"double"` quoted values (with `\n`, `\t`, `\r`, `\"`, `\\` escapes), and
/// unquoted values ending at a ` #` comment. Values are not expanded.
///
/// A missing file is empty. A malformed line is an error naming file and line.
pub fn read_dotenv(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ConfigError::Io { file, source }),
    };
    parse_dotenv(&text, &file)
}

fn parse_dotenv(text: &str, file: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut pairs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let fail = |key: Option<&str>, message: &str| {
            ConfigError::invalid(file, Some(index + 1), key.map(str::to_owned), message)
        };
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let content = content
            .strip_prefix("export")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .unwrap_or(content);
        let Some((name, raw)) = content.split_once('=') else {
            return Err(fail(None, "expected KEY=VALUE"));
        };
        let name = name.trim();
        if !is_var_name(name) {
            return Err(fail(
                None,
                &format!("invalid variable name \"{name}\": use letters, digits and _"),
            ));
        }
        let value = dotenv_value(raw).map_err(|message| fail(Some(name), message))?;
        pairs.push((name.to_owned(), value));
    }
    Ok(pairs)
}

fn dotenv_value(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim_start();
    let (value, rest) = if let Some(body) = trimmed.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some(c @ ('"' | '\\')) => value.push(c),
                    Some(c) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => value.push('\\'),
                },
                c => value.push(c),
            }
        }
        let end = end.ok_or("unterminated double quote (values must fit on one line)")?;
        (value, &body[end..])
    } else if let Some(body) = trimmed.strip_prefix('\'') {
        let end = body
            .find('\'')
            .ok_or("unterminated single quote (values must fit on one line)")?;
        (body[..end].to_owned(), &body[end + 1..])
    } else {
        let bytes = raw.as_bytes();
        let comment = (1..bytes.len())
            .find(|&i| bytes[i] == b'#' && bytes[i - 1].is_ascii_whitespace())
            .unwrap_or(raw.len());
        return Ok(raw[..comment].trim().to_owned());
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(value)
    } else {
        Err("unexpected text after the closing quote")
    }
}

/// Where `${VAR}` values come from: the process environment first, then a
/// `.env` file, so the shell wins over the file as in docker compose.
///
/// Nothing is written to the process environment (that is `unsafe` since
/// edition 2024). Pass it to loading as `&|name| env.get(name)`.
#[derive(Clone, Default)]
pub struct Env {
    process: bool,
    dotenv: HashMap<String, String>,
}

impl Env {
    /// The process environment alone.
    pub fn from_process() -> Self {
        Env {
            process: true,
            dotenv: HashMap::new(),
        }
    }

    /// The process environment, then the `.env` file at `path` if it exists.
    pub fn from_process_and_dotenv(path: &Path) -> Result<Self, ConfigError> {
        Ok(Env {
            process: true,
            dotenv: read_dotenv(path)?.into_iter().collect(),
        })
    }

    /// Only the given pairs, never the process environment: for tests.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            process: false,
            dotenv: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `name`, if set (a non-UTF-8 process value counts as unset).
    pub fn get(&self, name: &str) -> Option<String> {
        self.process
            .then(|| std::env::var(name).ok())
            .flatten()
            .or_else(|| self.dotenv.get(name).cloned())
    }

    /// Names whose value comes from the `.env` file (set there and not in the
    /// process environment), sorted: for a startup log line.
    pub fn dotenv_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .dotenv
            .keys()
            .filter(|name| !self.process || std::env::var_os(name).is_none())
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names
    }
}

/// Lists names only: `.env` values are often secrets.
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.dotenv.keys().collect();
        names.sort_unstable();
        f.debug_struct("Env")
            .field("process", &self.process)
            .field("dotenv", &names)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(text: &str, vars: &[(&str, &str)]) -> Result<String, ConfigError> {
        let env = Env::from_pairs(vars.iter().copied());
        expand_env(text, "pharos.yaml", &|name| env.get(name))
    }

    #[test]
    fn expands_variables_and_defaults() {
        let vars = [("BUCKET", "metrics"), ("EMPTY", "")];
        let text = "a: ${BUCKET}\nb: ${MISSING:-fallback}\nc: ${EMPTY:-used}\nd: ${BUCKET:-unused}\ne: x${MISSING:-}y\n";
        assert_eq!(
            expand(text, &vars).unwrap(),
            "a: metrics\nb: fallback\nc: used\nd: metrics\ne: xy\n"
        );
    }

    #[test]
    fn empty_value_without_default_is_kept_empty() {
        assert_eq!(expand("a: '${EMPTY}'", &[("EMPTY", "")]).unwrap(), "a: ''");
    }

    #[test]
    fn dollar_escapes() {
        let text = "price: $$5\nlone: a$b $ c$\nregex: ^foo$\n";
        assert_eq!(
            expand(text, &[]).unwrap(),
            "price: $5\nlone: a$b $ c$\nregex: ^foo$\n"
        );
        assert_eq!(
            expand("a: $${NOT_EXPANDED}", &[]).unwrap(),
            "a: ${NOT_EXPANDED}"
        );
    }

    #[test]
    fn comments_are_not_expanded() {
        let text = "# token: ${UNSET}\n  # ${UNSET}\nkey: v # was ${UNSET}\n";
        assert_eq!(expand(text, &[]).unwrap(), text);
        // Not comments: `#` inside a word, or inside a quoted scalar.
        let err = expand("a: b#${UNSET}\n", &[]).unwrap_err();
        assert_eq!(err.line(), Some(1));
        let quoted = "a: \"x #${X}\"\nb: 'don''t #${X}'\nc: don't #${UNSET}\n";
        assert_eq!(
            expand(quoted, &[("X", "1")]).unwrap(),
            "a: \"x #1\"\nb: 'don''t #1'\nc: don't #${UNSET}\n"
        );
    }

    #[test]
    fn unset_variable_names_key_line_and_file() {
        let text = "storage:\n  s3:\n    region: eu\n    bucket: ${S3_BUCKET}\n";
        let err = expand(text, &[]).unwrap_err();
        assert_eq!(err.line(), Some(4));
        assert_eq!(err.key(), Some("bucket"));
        assert_eq!(
            err.to_string(),
            "config error in pharos.yaml line 4: key \"bucket\": environment variable S3_BUCKET \
             is not set and has no default (write ${S3_BUCKET:-value} to give one)"
        );
    }

    #[test]
    fn unset_variable_in_list_items() {
        let err = expand("targets:\n  - name: ${NAME}\n", &[]).unwrap_err();
        assert_eq!((err.line(), err.key()), (Some(2), Some("name")));
        let err = expand("join:\n  - a:7946\n  - ${PEER}:7946\n", &[]).unwrap_err();
        assert_eq!((err.line(), err.key()), (Some(3), Some("join")));
    }

    #[test]
    fn malformed_references_are_errors() {
        let err = expand("a: ${UNCLOSED\n", &[]).unwrap_err();
        assert!(err.to_string().contains("unterminated"), "{err}");
        let err = expand("a: ok\nb: ${1BAD}\n", &[]).unwrap_err();
        assert_eq!(err.line(), Some(2));
        assert!(
            err.to_string()
                .contains("invalid variable reference \"${1BAD}\""),
            "{err}"
        );
        assert!(expand("a: ${}", &[]).is_err());
    }

    #[test]
    fn keeps_line_endings_and_text_without_newline() {
        assert_eq!(
            expand("a: ${X}\r\nb: 1", &[("X", "y")]).unwrap(),
            "a: y\r\nb: 1"
        );
    }

    #[test]
    fn parses_dotenv_forms() {
        let text = "\
# comment
PLAIN=value
export EXPORTED=yes
SPACED = padded  # trailing comment
HASH=a#b
DOUBLE=\"line1\\nline2 \\\"q\\\" # kept\" # comment
SINGLE='raw \\n $X'
EMPTY=

";
        let pairs = parse_dotenv(text, ".env").unwrap();
        let expected = [
            ("PLAIN", "value"),
            ("EXPORTED", "yes"),
            ("SPACED", "padded"),
            ("HASH", "a#b"),
            ("DOUBLE", "line1\nline2 \"q\" # kept"),
            ("SINGLE", "raw \\n $X"),
            ("EMPTY", ""),
        ];
        let got: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn malformed_dotenv_names_file_and_line() {
        let err = parse_dotenv("A=1\nthis is wrong\n", "/app/.env").unwrap_err();
        assert_eq!(err.line(), Some(2));
        assert_eq!(
            err.to_string(),
            "config error in /app/.env line 2: expected KEY=VALUE"
        );
        let err = parse_dotenv("A=\"open\n", ".env").unwrap_err();
        assert_eq!((err.line(), err.key()), (Some(1), Some("A")));
        let err = parse_dotenv("1A=x\n", ".env").unwrap_err();
        assert!(
            err.to_string().contains("invalid variable name \"1A\""),
            "{err}"
        );
        assert!(parse_dotenv("A='x' junk\n", ".env").is_err());
    }

    #[test]
    fn dotenv_file_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_dotenv(&dir.path().join(".env")).unwrap().is_empty());
    }

    #[test]
    fn process_env_wins_over_dotenv() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        // PATH is set in any test process; the variable below is not.
        let unset = "PHAROS_CONFIG_TEST_ONLY_IN_DOTENV_7F3A";
        assert!(std::env::var_os(unset).is_none());
        std::fs::write(&path, format!("PATH=from-dotenv\n{unset}=from-dotenv\n")).unwrap();
        let env = Env::from_process_and_dotenv(&path).unwrap();
        assert_eq!(env.get("PATH"), std::env::var("PATH").ok());
        assert_ne!(env.get("PATH").as_deref(), Some("from-dotenv"));
        assert_eq!(env.get(unset).as_deref(), Some("from-dotenv"));
        assert_eq!(env.dotenv_names(), vec![unset]);
        assert!(!format!("{env:?}").contains("from-dotenv"));
    }

    #[test]
    fn pairs_do_not_see_the_process_env() {
        let env = Env::from_pairs([("A", "1")]);
        assert_eq!(env.get("A").as_deref(), Some("1"));
        assert_eq!(env.get("PATH"), None);
    }
}
