//! Finds the line of a dotted key path in block-style YAML text.
//!
//! Validation reports key paths, not positions; this walks the text by
//! indentation to point the operator at a line. It understands block
//! mappings and sequences (including `- key:` items and sequences at their
//! parent key's indentation), not flow style or multi-line keys; for those,
//! and for keys absent from the file (defaults), it returns `None`.

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind<'a> {
    Dash,
    Key(&'a str),
    Scalar,
}

#[derive(Clone, Copy)]
struct Node<'a> {
    column: usize,
    kind: Kind<'a>,
}

struct Line<'a> {
    number: usize,
    nodes: Vec<Node<'a>>,
}

#[derive(Clone, Copy)]
struct Cursor {
    line: usize,
    node: usize,
}

/// The 1-based line where `path` (like `server.tls.cert_file` or
/// `scrape_configs[1].job_name`) is written in `text`, if it is.
pub(crate) fn locate(text: &str, path: &str) -> Option<usize> {
    let steps = parse_path(path)?;
    let lines: Vec<Line<'_>> = text
        .lines()
        .enumerate()
        .filter_map(|(index, line)| tokenize(index + 1, line))
        .collect();
    if lines.is_empty() || steps.is_empty() {
        return None;
    }
    let mut cursor = Cursor { line: 0, node: 0 };
    for (i, step) in steps.iter().enumerate() {
        if i > 0 {
            cursor = value_start(&lines, cursor)?;
        }
        cursor = match step {
            Step::Key(name) => find_key(&lines, cursor, name)?,
            Step::Index(n) => find_item(&lines, cursor, *n)?,
        };
    }
    Some(lines[cursor.line].number)
}

fn parse_path(path: &str) -> Option<Vec<Step<'_>>> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !name.is_empty() {
            steps.push(Step::Key(name));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let (index, after) = inner.split_once(']')?;
            steps.push(Step::Index(index.parse().ok()?));
            rest = after;
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(steps)
}

fn tokenize(number: usize, line: &str) -> Option<Line<'_>> {
    let mut column = line.len() - line.trim_start_matches(' ').len();
    let mut rest = &line[column..];
    let trimmed = rest.trim_end();
    if trimmed.is_empty()
        || trimmed.starts_with('#')
        || trimmed.starts_with('%')
        || trimmed == "---"
        || trimmed == "..."
        || trimmed.starts_with("--- ")
    {
        return None;
    }
    let mut nodes = Vec::new();
    while rest == "-" || rest.starts_with("- ") || rest.starts_with("-\t") {
        nodes.push(Node {
            column,
            kind: Kind::Dash,
        });
        let after = rest[1..].trim_start();
        column += rest.len() - after.len();
        rest = after;
    }
    if !rest.is_empty() && !rest.starts_with('#') {
        let kind = key_of(rest).map_or(Kind::Scalar, Kind::Key);
        nodes.push(Node { column, kind });
    }
    Some(Line { number, nodes })
}

/// The key of `content` if it starts with `key:` (plain or quoted).
fn key_of(content: &str) -> Option<&str> {
    let ends_key = |rest: &str| rest == ":" || rest.starts_with(": ") || rest.starts_with(":\t");
    if let Some(quote) = content.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let close = content[1..].find(quote)? + 1;
        return ends_key(content[close + 1..].trim_end()).then(|| &content[1..close]);
    }
    if content.starts_with(['{', '[', '&', '*', '!', '|', '>']) {
        return None;
    }
    let bytes = content.as_bytes();
    (0..bytes.len())
        .take_while(|&i| !(bytes[i] == b'#' && i > 0 && bytes[i - 1].is_ascii_whitespace()))
        .find(|&i| ends_key(content[i..].trim_end()))
        .map(|i| content[..i].trim_end())
}

fn node<'a>(lines: &[Line<'a>], cursor: Cursor) -> Option<Node<'a>> {
    lines.get(cursor.line)?.nodes.get(cursor.node).copied()
}

/// The first node of the value of the key or item at `cursor`.
fn value_start(lines: &[Line<'_>], cursor: Cursor) -> Option<Cursor> {
    let current = node(lines, cursor)?;
    let same_line = Cursor {
        line: cursor.line,
        node: cursor.node + 1,
    };
    if node(lines, same_line).is_some() {
        return Some(same_line);
    }
    let next = Cursor {
        line: cursor.line + 1,
        node: 0,
    };
    let first = node(lines, next)?;
    let indented = first.column > current.column;
    // `key:` followed by `- item` at the key's own indentation is a sequence too.
    let compact = first.column == current.column
        && first.kind == Kind::Dash
        && matches!(current.kind, Kind::Key(_));
    (indented || compact).then_some(next)
}

/// The key `name` in the mapping whose first key is at `start`.
fn find_key(lines: &[Line<'_>], start: Cursor, name: &str) -> Option<Cursor> {
    let first = node(lines, start)?;
    match first.kind {
        Kind::Key(key) if key == name => return Some(start),
        Kind::Key(_) => {}
        _ => return None,
    }
    for (offset, line) in lines[start.line + 1..].iter().enumerate() {
        let head = line.nodes.first()?;
        if head.column < first.column {
            return None;
        }
        if head.column == first.column && head.kind == Kind::Key(name) {
            return Some(Cursor {
                line: start.line + 1 + offset,
                node: 0,
            });
        }
    }
    None
}

/// Item `n` (0-based) of the sequence whose first dash is at `start`.
fn find_item(lines: &[Line<'_>], start: Cursor, n: usize) -> Option<Cursor> {
    let first = node(lines, start)?;
    if first.kind != Kind::Dash {
        return None;
    }
    if n == 0 {
        return Some(start);
    }
    let mut seen = 0;
    for (offset, line) in lines[start.line + 1..].iter().enumerate() {
        let head = line.nodes.first()?;
        if head.column < first.column {
            return None;
        }
        if head.column == first.column {
            if head.kind != Kind::Dash {
                return None;
            }
            seen += 1;
            if seen == n {
                return Some(Cursor {
                    line: start.line + 1 + offset,
                    node: 0,
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# leading comment
server:
  http_listen_address: 0.0.0.0:9090   # trailing: comment
  tls:

    cert_file: a.pem
  grpc: {port: 1}
cluster:
  join:
  - a:7946
  - b:7946
scrape_configs:
  - job_name: one
    static_configs:
      - targets: [x]
  -
    job_name: two
    \"quoted key\": 1
list_of_lists:
  - - inner0
    - inner1
  - - second
limits:
  max_active_series: 5
";

    #[test]
    fn finds_nested_keys() {
        assert_eq!(locate(TEXT, "server"), Some(2));
        assert_eq!(locate(TEXT, "server.http_listen_address"), Some(3));
        assert_eq!(locate(TEXT, "server.tls.cert_file"), Some(6));
        assert_eq!(locate(TEXT, "server.grpc"), Some(7));
        assert_eq!(locate(TEXT, "limits.max_active_series"), Some(24));
    }

    #[test]
    fn finds_sequence_items() {
        assert_eq!(locate(TEXT, "cluster.join"), Some(9));
        assert_eq!(locate(TEXT, "cluster.join[0]"), Some(10));
        assert_eq!(locate(TEXT, "cluster.join[1]"), Some(11));
        assert_eq!(locate(TEXT, "scrape_configs[0].job_name"), Some(13));
        assert_eq!(
            locate(TEXT, "scrape_configs[0].static_configs[0].targets"),
            Some(15)
        );
        assert_eq!(locate(TEXT, "scrape_configs[1].job_name"), Some(17));
        assert_eq!(locate(TEXT, "scrape_configs[1].quoted key"), Some(18));
        assert_eq!(locate(TEXT, "list_of_lists[0][1]"), Some(21));
        assert_eq!(locate(TEXT, "list_of_lists[1][0]"), Some(22));
    }

    #[test]
    fn absent_keys_have_no_line() {
        assert_eq!(locate(TEXT, "server.missing"), None);
        assert_eq!(locate(TEXT, "cert_file"), None);
        assert_eq!(locate(TEXT, "cluster.join[2]"), None);
        assert_eq!(locate(TEXT, "server.grpc.port"), None);
        assert_eq!(locate(TEXT, "limits.max_active_series.deeper"), None);
        assert_eq!(locate("", "server"), None);
        assert_eq!(locate(TEXT, "bad[x]"), None);
    }
}
