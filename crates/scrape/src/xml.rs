//! A small XML reader for AWS Query API responses: elements, text, the
//! predefined and numeric entities, CDATA; attributes, comments, processing
//! instructions and doctypes are skipped. It builds a tree, which suits
//! responses of at most a few megabytes.

/// One element: its local name (namespace prefix dropped), its text (the
/// concatenated character data directly inside it) and its child elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

/// Deep documents are refused rather than recursed into without bound.
const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid XML at byte {at}: {message}")]
pub struct XmlError {
    pub at: usize,
    pub message: String,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Children named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`, if present and not empty.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.as_str())
            .filter(|t| !t.is_empty())
    }

    /// Follows a path of child names.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        let mut at = self;
        for n in names {
            at = at.child(n)?;
        }
        Some(at)
    }

    /// The `<item>` children of the child `name`, as AWS encodes lists.
    pub fn items<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Element> + 'a {
        self.child(name).into_iter().flat_map(|c| c.all("item"))
    }
}

/// Parses a document into its root element.
pub fn parse(input: &str) -> Result<Element, XmlError> {
    let mut p = Parser {
        s: input.as_bytes(),
        src: input,
        i: 0,
    };
    // Prolog: declarations, comments, doctype, whitespace.
    loop {
        p.skip_ws();
        if p.starts_with("<?") || p.starts_with("<!--") || p.starts_with("<!") {
            p.skip_markup()?;
        } else {
            break;
        }
    }
    if !p.starts_with("<") {
        return Err(p.err("expected the root element"));
    }
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    while p.i < p.s.len() {
        if root.is_some() {
            p.skip_ws();
            if p.i >= p.s.len() {
                break;
            }
            if p.starts_with("<?") || p.starts_with("<!--") {
                p.skip_markup()?;
                continue;
            }
            return Err(p.err("content after the root element"));
        }
        if p.starts_with("<!--") || p.starts_with("<?") {
            p.skip_markup()?;
        } else if p.starts_with("<![CDATA[") {
            let start = p.i + 9;
            let end = find(p.s, start, b"]]>").ok_or_else(|| p.err("unterminated CDATA"))?;
            if let Some(top) = stack.last_mut() {
                top.text.push_str(&p.src[start..end]);
            }
            p.i = end + 3;
        } else if p.starts_with("</") {
            p.i += 2;
            let name = p.name()?;
            p.skip_ws();
            p.expect(b'>')?;
            let done = stack
                .pop()
                .ok_or_else(|| p.err("closing tag without an open element"))?;
            if done.name != local(name) {
                return Err(p.err(&format!("closing tag {name} does not match {}", done.name)));
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(done),
                None => root = Some(done),
            }
        } else if p.starts_with("<") {
            p.i += 1;
            let name = local(p.name()?).to_owned();
            let empty = p.skip_attributes()?;
            let el = Element {
                name,
                ..Element::default()
            };
            if empty {
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            } else {
                if stack.len() >= MAX_DEPTH {
                    return Err(p.err("elements nested too deep"));
                }
                stack.push(el);
            }
        } else {
            let start = p.i;
            let end = find(p.s, start, b"<").unwrap_or(p.s.len());
            let text = unescape(&p.src[start..end]).map_err(|m| XmlError {
                at: start,
                message: m,
            })?;
            match stack.last_mut() {
                Some(top) => top.text.push_str(&text),
                None => return Err(p.err("text outside the root element")),
            }
            p.i = end;
        }
    }
    if !stack.is_empty() {
        return Err(p.err("unexpected end of document"));
    }
    root.ok_or_else(|| p.err("no root element"))
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn find(s: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    s.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, message: &str) -> XmlError {
        XmlError {
            at: self.i,
            message: message.to_owned(),
        }
    }

    fn starts_with(&self, prefix: &str) -> bool {
        self.s
            .get(self.i..)
            .is_some_and(|r| r.starts_with(prefix.as_bytes()))
    }

    fn skip_ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), XmlError> {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", b as char)))
        }
    }

    fn name(&mut self) -> Result<&'a str, XmlError> {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|&b| !b.is_ascii_whitespace() && !matches!(b, b'>' | b'/' | b'=' | b'<'))
        {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.err("expected a name"));
        }
        Ok(&self.src[start..self.i])
    }

    /// Skips a start tag's attributes; true for a self-closing tag.
    fn skip_attributes(&mut self) -> Result<bool, XmlError> {
        loop {
            match self.s.get(self.i) {
                None => return Err(self.err("unterminated start tag")),
                Some(b'>') => {
                    self.i += 1;
                    return Ok(false);
                }
                Some(b'/') if self.s.get(self.i + 1) == Some(&b'>') => {
                    self.i += 2;
                    return Ok(true);
                }
                Some(&q @ (b'"' | b'\'')) => {
                    let end = find(self.s, self.i + 1, &[q])
                        .ok_or_else(|| self.err("unterminated attribute value"))?;
                    self.i = end + 1;
                }
                Some(b'<') => return Err(self.err("'<' inside a start tag")),
                Some(_) => self.i += 1,
            }
        }
    }

    /// Skips `<?...?>`, `<!--...-->` or `<!...>`.
    fn skip_markup(&mut self) -> Result<(), XmlError> {
        let (close, from): (&[u8], usize) = if self.starts_with("<?") {
            (b"?>", 2)
        } else if self.starts_with("<!--") {
            (b"-->", 4)
        } else {
            (b">", 2)
        };
        let end =
            find(self.s, self.i + from, close).ok_or_else(|| self.err("unterminated markup"))?;
        self.i = end + close.len();
        Ok(())
    }
}

/// Replaces `&lt;` `&gt;` `&amp;` `&quot;` `&apos;` and `&#N;`/`&#xN;`.
fn unescape(s: &str) -> Result<String, String> {
    if !s.contains('&') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after
            .find(';')
            .filter(|&n| n <= 10)
            .ok_or_else(|| "unterminated entity".to_owned())?;
        let entity = &after[..semi];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(h) = entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = entity.strip_prefix('#') {
                    d.parse::<u32>().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown entity &{entity};"))?
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_aws_style_document() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r-1</requestId>
  <reservationSet>
    <item><ownerId>123</ownerId><instancesSet>
      <item><instanceId>i-1</instanceId><tagSet>
        <item><key>Name</key><value>a &amp; b &lt;c&gt; &#65;&#x42;</value></item>
        <item><key>empty</key><value/></item>
      </tagSet></item>
    </instancesSet></item>
  </reservationSet>
  <note><![CDATA[<raw> & text]]></note>
  <x:prefixed a="1>2" b='q'>v</x:prefixed>
</DescribeInstancesResponse>
"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "DescribeInstancesResponse");
        assert_eq!(root.text_of("requestId"), Some("r-1"));
        let res: Vec<_> = root.items("reservationSet").collect();
        assert_eq!(res.len(), 1);
        assert_eq!(res[0].text_of("ownerId"), Some("123"));
        let inst: Vec<_> = res[0].items("instancesSet").collect();
        let tags: Vec<_> = inst[0].items("tagSet").collect();
        assert_eq!(tags[0].text_of("value"), Some("a & b <c> AB"));
        assert_eq!(tags[1].text_of("value"), None);
        assert!(tags[1].child("value").is_some());
        assert_eq!(root.text_of("note"), Some("<raw> & text"));
        assert_eq!(root.text_of("prefixed"), Some("v"));
    }

    #[test]
    fn rejects_broken_documents() {
        for bad in [
            "",
            "text",
            "<a>",
            "<a></b>",
            "<a>x</a><b/>",
            "<a>&bogus;</a>",
            "<a>&amp</a>",
            "<a b=\"x></a>",
            "</a>",
            "<a><![CDATA[x</a>",
            "<!-- x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).unwrap_err().message.contains("deep"));
    }
}
