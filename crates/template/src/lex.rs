//! Splits template text into tokens the way Go's `text/template/parse`
//! lexer does, including trim markers and comments.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Pipe,
    LeftParen,
    RightParen,
    Declare,
    Assign,
    Comma,
    /// A single printable ASCII character the lexer has no use for.
    Char(String),
    CharConst(String),
    Number(String),
    /// The quoted text as written, escapes not yet interpreted.
    Str(String),
    RawStr(String),
    Field(String),
    Variable(String),
    Dot,
    Ident(String),
    Bool(bool),
    Nil,
    Keyword(&'static str),
    /// A lexing error; always the last token.
    Error(String),
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

const KEYWORDS: &[&str] = &[
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// A lexing failure: message and the byte offset where it happened.
pub(crate) struct LexError {
    pub msg: String,
    pub pos: usize,
}

/// Lexes the whole input. Like Go's lexer, an error becomes a final error
/// token, so the parser reports whatever it chokes on first.
pub(crate) fn lex(input: &str) -> Vec<Token> {
    let mut l = Lexer {
        src: input,
        pos: 0,
        toks: Vec::new(),
        paren_depth: 0,
    };
    if let Err(e) = l.run() {
        l.toks.push(Token {
            tok: Tok::Error(e.msg),
            pos: e.pos,
        });
    }
    l.toks
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    toks: Vec<Token>,
    paren_depth: usize,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn push(&mut self, tok: Tok, pos: usize) {
        self.toks.push(Token { tok, pos });
    }

    fn err<T>(&self, msg: impl Into<String>, pos: usize) -> Result<T, LexError> {
        Err(LexError {
            msg: msg.into(),
            pos,
        })
    }

    fn run(&mut self) -> Result<(), LexError> {
        let mut trim_next_text = false;
        loop {
            let start = self.pos;
            let found = self.rest().find("{{");
            let end = found.map_or(self.src.len(), |i| self.pos + i);
            let mut text = &self.src[start..end];
            if trim_next_text {
                text = text.trim_start_matches([' ', '\t', '\r', '\n']);
            }
            let Some(_) = found else {
                if !text.is_empty() {
                    self.push(Tok::Text(text.to_string()), start);
                }
                self.pos = self.src.len();
                self.push(Tok::Eof, self.pos);
                return Ok(());
            };
            let after = &self.src[end + 2..];
            let left_trim =
                after.len() >= 2 && after.as_bytes()[0] == b'-' && is_space(after.as_bytes()[1]);
            if left_trim {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                self.push(Tok::Text(text.to_string()), start);
            }
            self.pos = end + 2;
            if left_trim {
                self.pos += 2;
            }
            // Comments are dropped entirely, but their trim markers still act.
            if self.rest().starts_with("/*") {
                let body_start = self.pos + 2;
                let Some(close) = self.src[body_start..].find("*/") else {
                    return self.err("unclosed comment", end);
                };
                self.pos = body_start + close + 2;
                let r = self.rest();
                let (trim, len) =
                    if r.len() >= 4 && is_space(r.as_bytes()[0]) && r[1..].starts_with("-}}") {
                        (true, 4)
                    } else if r.starts_with("}}") {
                        (false, 2)
                    } else {
                        return self.err("comment ends before closing delimiter", end);
                    };
                self.pos += len;
                trim_next_text = trim;
                continue;
            }
            self.push(Tok::LeftDelim, end);
            trim_next_text = self.inside_action(end)?;
        }
    }

    /// Lexes one action up to and including its right delimiter; returns
    /// whether that delimiter carried a trim marker.
    fn inside_action(&mut self, open: usize) -> Result<bool, LexError> {
        self.paren_depth = 0;
        loop {
            let r = self.rest();
            if r.len() >= 4 && is_space(r.as_bytes()[0]) && r[1..].starts_with("-}}") {
                if self.paren_depth > 0 {
                    return self.err("unclosed left paren", self.pos);
                }
                self.push(Tok::RightDelim, self.pos);
                self.pos += 4;
                return Ok(true);
            }
            if r.starts_with("}}") {
                if self.paren_depth > 0 {
                    return self.err("unclosed left paren", self.pos);
                }
                self.push(Tok::RightDelim, self.pos);
                self.pos += 2;
                return Ok(false);
            }
            let Some(c) = self.peek_char() else {
                return self.err("unclosed action", open);
            };
            let start = self.pos;
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    // A space run stops before a " -}}" so the trim marker is seen.
                    while let Some(b) = self.rest().as_bytes().first().copied() {
                        if !is_space(b) {
                            break;
                        }
                        let r = self.rest();
                        if r.len() >= 4 && r[1..].starts_with("-}}") {
                            break;
                        }
                        self.pos += 1;
                    }
                    if self.pos > start {
                        self.push(Tok::Space, start);
                    }
                }
                '=' => {
                    self.pos += 1;
                    self.push(Tok::Assign, start);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return self.err("expected :=", start);
                    }
                    self.pos += 2;
                    self.push(Tok::Declare, start);
                }
                '|' => {
                    self.pos += 1;
                    self.push(Tok::Pipe, start);
                }
                ',' => {
                    self.pos += 1;
                    self.push(Tok::Comma, start);
                }
                '"' => self.quote(start)?,
                '`' => {
                    let Some(end) = self.src[start + 1..].find('`') else {
                        return self.err("unterminated raw quoted string", start);
                    };
                    self.pos = start + 1 + end + 1;
                    self.push(Tok::RawStr(self.src[start..self.pos].to_string()), start);
                }
                '\'' => self.char_const(start)?,
                '$' => {
                    self.pos += 1;
                    self.alnum_run();
                    let name = self.src[start..self.pos].to_string();
                    self.push(Tok::Variable(name), start);
                    self.check_terminator()?;
                }
                '.' => {
                    let next = self.rest()[1..].chars().next();
                    match next {
                        Some(d) if d.is_ascii_digit() => self.number(start)?,
                        Some(a) if is_alnum(a) => {
                            self.pos += 1;
                            self.alnum_run();
                            let name = self.src[start + 1..self.pos].to_string();
                            self.push(Tok::Field(name), start);
                            self.check_terminator()?;
                        }
                        _ => {
                            self.pos += 1;
                            self.push(Tok::Dot, start);
                        }
                    }
                }
                '+' | '-' | '0'..='9' => self.number(start)?,
                '(' => {
                    self.pos += 1;
                    self.paren_depth += 1;
                    self.push(Tok::LeftParen, start);
                }
                ')' => {
                    self.pos += 1;
                    self.push(Tok::RightParen, start);
                    if self.paren_depth == 0 {
                        return self.err(format!("unexpected right paren {}", go_char(')')), start);
                    }
                    self.paren_depth -= 1;
                }
                c if is_alnum(c) => {
                    self.alnum_run();
                    let word = &self.src[start..self.pos];
                    let tok = if let Some(k) = KEYWORDS.iter().find(|k| **k == word) {
                        Tok::Keyword(k)
                    } else if word == "true" || word == "false" {
                        Tok::Bool(word == "true")
                    } else if word == "nil" {
                        Tok::Nil
                    } else {
                        Tok::Ident(word.to_string())
                    };
                    self.push(tok, start);
                    self.check_terminator()?;
                }
                c if c.is_ascii() && !c.is_ascii_control() => {
                    // Go passes other printable ASCII through for the parser
                    // to reject in context.
                    self.pos += 1;
                    self.push(Tok::Char(c.to_string()), start);
                }
                c => {
                    return self.err(
                        format!("unrecognized character in action: {}", go_char(c)),
                        start,
                    );
                }
            }
        }
    }

    fn alnum_run(&mut self) {
        while let Some(c) = self.peek_char() {
            if !is_alnum(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    fn check_terminator(&self) -> Result<(), LexError> {
        let r = self.rest();
        let Some(c) = r.chars().next() else {
            return Ok(());
        };
        if matches!(
            c,
            ' ' | '\t' | '\r' | '\n' | '.' | ',' | '|' | ':' | ')' | '('
        ) || r.starts_with("}}")
        {
            return Ok(());
        }
        self.err(format!("bad character {}", go_char(c)), self.pos)
    }

    fn quote(&mut self, start: usize) -> Result<(), LexError> {
        let bytes = self.src.as_bytes();
        let mut i = start + 1;
        loop {
            match bytes.get(i) {
                None | Some(b'\n') => return self.err("unterminated quoted string", start),
                Some(b'\\') => {
                    if matches!(bytes.get(i + 1), None | Some(b'\n')) {
                        return self.err("unterminated quoted string", start);
                    }
                    i += 2;
                }
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        // Escapes can split a multi-byte char only if the text is malformed;
        // slicing at '"' is always on a char boundary.
        self.push(Tok::Str(self.src[start..self.pos].to_string()), start);
        Ok(())
    }

    fn char_const(&mut self, start: usize) -> Result<(), LexError> {
        let bytes = self.src.as_bytes();
        let mut i = start + 1;
        loop {
            match bytes.get(i) {
                None | Some(b'\n') => return self.err("unterminated character constant", start),
                Some(b'\\') => {
                    if matches!(bytes.get(i + 1), None | Some(b'\n')) {
                        return self.err("unterminated character constant", start);
                    }
                    i += 2;
                }
                Some(b'\'') => break,
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        self.push(Tok::CharConst(self.src[start..self.pos].to_string()), start);
        Ok(())
    }

    fn number(&mut self, start: usize) -> Result<(), LexError> {
        // Mirrors Go's scanNumber so the same texts are accepted and the
        // same prefix is quoted in "bad number syntax".
        let b = self.src.as_bytes();
        let mut i = start;
        let accept = |i: &mut usize, set: &[u8]| -> bool {
            if b.get(*i).is_some_and(|c| set.contains(c)) {
                *i += 1;
                true
            } else {
                false
            }
        };
        let run = |i: &mut usize, set: &[u8]| {
            while b.get(*i).is_some_and(|c| set.contains(c)) {
                *i += 1;
            }
        };
        accept(&mut i, b"+-");
        let mut digits: &[u8] = b"0123456789_";
        if accept(&mut i, b"0") {
            if accept(&mut i, b"xX") {
                digits = b"0123456789abcdefABCDEF_";
            } else if accept(&mut i, b"oO") {
                digits = b"01234567_";
            } else if accept(&mut i, b"bB") {
                digits = b"01_";
            }
        }
        run(&mut i, digits);
        if accept(&mut i, b".") {
            run(&mut i, digits);
        }
        if digits.len() == 11 && accept(&mut i, b"eE") {
            accept(&mut i, b"+-");
            run(&mut i, b"0123456789_");
        }
        if digits.len() == 23 && accept(&mut i, b"pP") {
            accept(&mut i, b"+-");
            run(&mut i, b"0123456789_");
        }
        accept(&mut i, b"i");
        self.pos = i;
        if let Some(c) = self.peek_char()
            && is_alnum(c)
        {
            self.pos += c.len_utf8();
            return self.err(
                format!("bad number syntax: {:?}", &self.src[start..self.pos]),
                start,
            );
        }
        let text = &self.src[start..i];
        self.push(Tok::Number(text.to_string()), start);
        Ok(())
    }
}

/// Formats a char as Go's `%#U` does, e.g. `U+0021 '!'`.
pub(crate) fn go_char(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{}'", c as u32, c)
    }
}
