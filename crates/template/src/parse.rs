//! Builds syntax trees from tokens, following the structure and error
//! wording of Go's `text/template/parse`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::lex::{Tok, Token, lex};

/// One parsed template (a file's top level, or a `define`/`block`).
#[derive(Debug)]
pub(crate) struct Tree {
    pub name: String,
    /// Name of the text this tree was parsed from, for error locations.
    pub parse_name: String,
    pub src: Arc<str>,
    pub root: Vec<Node>,
}

#[derive(Debug)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Control),
    With(Control),
    Range(Control),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug)]
pub(crate) struct Control {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

#[derive(Debug)]
pub(crate) struct Command {
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub(crate) enum Arg {
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    Variable {
        pos: usize,
        name: String,
        idents: Vec<String>,
    },
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    Ident {
        pos: usize,
        name: String,
    },
    Pipe(Box<Pipe>),
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number {
        pos: usize,
        text: String,
        num: Num,
    },
    Str {
        pos: usize,
        quoted: String,
        value: String,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
    /// An integer literal too big for int; Go fails only when it is used.
    Overflow,
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Ident { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::Str { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
            Arg::Dot(p) | Arg::Nil(p) | Arg::Bool(p, _) => *p,
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Variable { name, idents, .. } => {
                f.write_str(name)?;
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Chain { node, fields, .. } => {
                if matches!(**node, Arg::Pipe(_)) {
                    write!(f, "({node})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Ident { name, .. } => f.write_str(name),
            Arg::Pipe(p) => write!(f, "{p}"),
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number { text, .. } => f.write_str(text),
            Arg::Str { quoted, .. } => f.write_str(quoted),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if let Arg::Pipe(p) = a {
                write!(f, "({p})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// Maximum nesting of parentheses and control structures. Deeper input is
/// rejected instead of risking the native stack (Go's parser has no limit,
/// but real templates nest a handful of levels).
const MAX_DEPTH: usize = 100;

pub(crate) struct ParseOutput {
    /// Trees in definition order, top level first.
    pub trees: Vec<Tree>,
}

pub(crate) fn parse(
    parse_name: &str,
    text: &str,
    has_func: &dyn Fn(&str) -> bool,
) -> Result<ParseOutput, String> {
    let src: Arc<str> = Arc::from(text);
    let toks = lex(text);
    let mut p = Parser {
        toks,
        i: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
        has_func,
        src: src.clone(),
        parse_name: parse_name.to_string(),
        defined: Vec::new(),
    };
    let root = p.parse_top()?;
    let mut trees = vec![Tree {
        name: parse_name.to_string(),
        parse_name: parse_name.to_string(),
        src: src.clone(),
        root,
    }];
    let mut seen: HashMap<String, usize> = HashMap::new();
    // Go rejects two non-empty definitions of one name within one text.
    let defined = std::mem::take(&mut p.defined);
    for (pos, tree) in defined {
        if let Some(&idx) = seen.get(&tree.name) {
            let existing: &Tree = &trees[idx];
            if !is_empty_tree(&existing.root) && !is_empty_tree(&tree.root) {
                return Err(format!(
                    "template: {}:{}: template: multiple definition of template {:?}",
                    parse_name,
                    line_of(text, pos),
                    tree.name
                ));
            }
            if is_empty_tree(&existing.root) {
                trees[idx] = tree;
            }
            continue;
        }
        if tree.name == parse_name {
            if !is_empty_tree(&trees[0].root) && !is_empty_tree(&tree.root) {
                return Err(format!(
                    "template: {}:{}: template: multiple definition of template {:?}",
                    parse_name,
                    line_of(text, pos),
                    tree.name
                ));
            }
            if is_empty_tree(&trees[0].root) {
                trees[0] = tree;
            }
            continue;
        }
        seen.insert(tree.name.clone(), trees.len());
        trees.push(tree);
    }
    Ok(ParseOutput { trees })
}

/// Go treats a tree holding only whitespace text as empty, so a file of
/// `define`s does not replace a template of the same name.
pub(crate) fn is_empty_tree(nodes: &[Node]) -> bool {
    nodes.iter().all(|n| match n {
        Node::Text(t) => t.trim().is_empty(),
        _ => false,
    })
}

pub(crate) fn line_of(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    1 + text.as_bytes()[..pos]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    has_func: &'a dyn Fn(&str) -> bool,
    src: Arc<str>,
    parse_name: String,
    defined: Vec<(usize, Tree)>,
}

enum ListEnd {
    End,
    Else,
}

/// Describes a token as Go's `item.String` does in "unexpected" errors.
fn describe(t: &Tok) -> String {
    let q = |s: &str| {
        if s.chars().count() > 10 {
            let cut: String = s.chars().take(10).collect();
            format!("{}...", crate::format::quote(&cut, false))
        } else {
            crate::format::quote(s, false)
        }
    };
    match t {
        Tok::Text(s)
        | Tok::Char(s)
        | Tok::CharConst(s)
        | Tok::Number(s)
        | Tok::Str(s)
        | Tok::RawStr(s) => q(s),
        Tok::LeftDelim => q("{{"),
        Tok::RightDelim => q("}}"),
        Tok::Space => q(" "),
        Tok::Pipe => q("|"),
        Tok::LeftParen => q("("),
        Tok::RightParen => q(")"),
        Tok::Declare => q(":="),
        Tok::Assign => q("="),
        Tok::Comma => q(","),
        Tok::Field(s) => q(&format!(".{s}")),
        Tok::Variable(s) | Tok::Ident(s) => q(s),
        Tok::Dot => "<.>".into(),
        Tok::Bool(b) => q(&b.to_string()),
        Tok::Nil => "<nil>".into(),
        Tok::Keyword(k) => format!("<{k}>"),
        Tok::Error(e) => e.clone(),
        Tok::Eof => "EOF".into(),
    }
}

impl Parser<'_> {
    fn errorf<T>(&self, msg: impl fmt::Display) -> Result<T, String> {
        let pos = self.toks.get(self.i.saturating_sub(1)).map_or(0, |t| t.pos);
        Err(format!(
            "template: {}:{}: {}",
            self.parse_name,
            line_of(&self.src, pos),
            msg
        ))
    }

    fn next(&mut self) -> Token {
        let t = self.toks.get(self.i).cloned().unwrap_or(Token {
            tok: Tok::Eof,
            pos: self.src.len(),
        });
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn backup(&mut self) {
        self.i = self.i.saturating_sub(1);
    }

    fn peek(&self) -> Tok {
        self.toks.get(self.i).map_or(Tok::Eof, |t| t.tok.clone())
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.tok != Tok::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Tok {
        let save = self.i;
        let t = self.next_non_space();
        // Leave the spaces consumed, as Go does, but not the token itself.
        let _ = save;
        self.backup();
        t.tok
    }

    fn unexpected<T>(&self, t: &Tok, context: &str) -> Result<T, String> {
        if let Tok::Error(e) = t {
            return self.errorf(e);
        }
        self.errorf(format!("unexpected {} in {}", describe(t), context))
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.errorf("template nesting too deep");
        }
        Ok(())
    }

    fn parse_top(&mut self) -> Result<Vec<Node>, String> {
        let mut list = Vec::new();
        loop {
            match self.peek() {
                Tok::Eof => return Ok(list),
                Tok::LeftDelim => {
                    let save = self.i;
                    self.next();
                    if self.next_non_space().tok == Tok::Keyword("define") {
                        self.parse_definition()?;
                        continue;
                    }
                    self.i = save;
                }
                _ => {}
            }
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                Item::End => return self.errorf("unexpected {{end}}"),
                Item::Else => return self.errorf("unexpected {{else}}"),
            }
        }
    }

    fn parse_definition(&mut self) -> Result<(), String> {
        let context = "define clause";
        let name_tok = self.next_non_space();
        let name = match &name_tok.tok {
            Tok::Str(q) | Tok::RawStr(q) => {
                unquote(q).map_err(|e| self.errorf::<()>(e).unwrap_err())?
            }
            t => return self.unexpected(t, context),
        };
        let t = self.next_non_space();
        if t.tok != Tok::RightDelim {
            return self.unexpected(&t.tok, context);
        }
        let root = self.sub_tree(|p| p.item_list())?;
        match root.1 {
            ListEnd::End => {}
            ListEnd::Else => return self.errorf(format!("unexpected {{{{else}}}} in {context}")),
        }
        self.defined.push((
            name_tok.pos,
            Tree {
                name,
                parse_name: self.parse_name.clone(),
                src: self.src.clone(),
                root: root.0,
            },
        ));
        Ok(())
    }

    /// Parses a nested template body with its own variable scope.
    fn sub_tree<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let rd = std::mem::replace(&mut self.range_depth, 0);
        let r = f(self);
        self.vars = vars;
        self.range_depth = rd;
        r
    }

    fn item_list(&mut self) -> Result<(Vec<Node>, ListEnd), String> {
        let mut list = Vec::new();
        while self.peek_non_space() != Tok::Eof {
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                Item::End => return Ok((list, ListEnd::End)),
                Item::Else => return Ok((list, ListEnd::Else)),
            }
        }
        self.errorf("unexpected EOF")
    }

    fn text_or_action(&mut self) -> Result<Item, String> {
        let t = self.next_non_space();
        match t.tok {
            Tok::Text(s) => Ok(Item::Node(Node::Text(s))),
            Tok::LeftDelim => {
                self.enter()?;
                let r = self.action();
                self.depth -= 1;
                r
            }
            other => self.unexpected(&other, "input"),
        }
    }

    fn action(&mut self) -> Result<Item, String> {
        let t = self.next_non_space();
        match t.tok {
            Tok::Keyword("block") => return self.block_control(),
            Tok::Keyword("break") => return self.break_continue("break"),
            Tok::Keyword("continue") => return self.break_continue("continue"),
            Tok::Keyword("else") => return self.else_control(),
            Tok::Keyword("end") => {
                let n = self.next_non_space();
                if n.tok != Tok::RightDelim {
                    return self.unexpected(&n.tok, "end");
                }
                return Ok(Item::End);
            }
            Tok::Keyword("if") => return Ok(Item::Node(Node::If(self.control("if", t.pos)?))),
            Tok::Keyword("range") => {
                return Ok(Item::Node(Node::Range(self.control("range", t.pos)?)));
            }
            Tok::Keyword("template") => return self.template_control(),
            Tok::Keyword("with") => {
                return Ok(Item::Node(Node::With(self.control("with", t.pos)?)));
            }
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", Tok::RightDelim)?;
        Ok(Item::Node(Node::Action(pipe)))
    }

    fn break_continue(&mut self, word: &str) -> Result<Item, String> {
        let n = self.next_non_space();
        if n.tok != Tok::RightDelim {
            return self.unexpected(&n.tok, &format!("{{{{{word}}}}}"));
        }
        if self.range_depth == 0 {
            return self.errorf(format!("{{{{{word}}}}} outside {{{{range}}}}"));
        }
        Ok(Item::Node(if word == "break" {
            Node::Break
        } else {
            Node::Continue
        }))
    }

    fn else_control(&mut self) -> Result<Item, String> {
        // "else if" and "else with" are handled by the enclosing control.
        let p = self.peek_non_space();
        if p == Tok::Keyword("if") || p == Tok::Keyword("with") {
            return Ok(Item::Else);
        }
        let n = self.next_non_space();
        if n.tok != Tok::RightDelim {
            return self.unexpected(&n.tok, "else");
        }
        Ok(Item::Else)
    }

    fn control(&mut self, context: &str, pos: usize) -> Result<Control, String> {
        let nvars = self.vars.len();
        let r = self.control_inner(context, pos);
        self.vars.truncate(nvars);
        r
    }

    fn control_inner(&mut self, context: &str, pos: usize) -> Result<Control, String> {
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let r = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, end) = r?;
        let else_list = match end {
            ListEnd::End => None,
            ListEnd::Else => {
                let next = self.peek_non_space();
                if (context == "if" && next == Tok::Keyword("if"))
                    || (context == "with" && next == Tok::Keyword("with"))
                {
                    let kw = self.next_non_space();
                    self.enter()?;
                    let inner = self.control(context, kw.pos);
                    self.depth -= 1;
                    let inner = inner?;
                    Some(vec![if context == "if" {
                        Node::If(inner)
                    } else {
                        Node::With(inner)
                    }])
                } else {
                    let (l, e) = self.item_list()?;
                    if let ListEnd::Else = e {
                        return self.errorf("expected end; found {{else}}");
                    }
                    Some(l)
                }
            }
        };
        Ok(Control {
            pos,
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&mut self, context: &str) -> Result<(usize, String), String> {
        let t = self.next_non_space();
        match &t.tok {
            Tok::Str(q) | Tok::RawStr(q) => {
                unquote(q).map(|n| (t.pos, n)).or_else(|e| self.errorf(e))
            }
            other => self.unexpected(other, context),
        }
    }

    fn template_control(&mut self) -> Result<Item, String> {
        let context = "template clause";
        let (pos, name) = self.template_name(context)?;
        let pipe = if self.peek_non_space() != Tok::RightDelim {
            Some(self.pipeline(context, Tok::RightDelim)?)
        } else {
            self.next_non_space();
            None
        };
        Ok(Item::Node(Node::Template { pos, name, pipe }))
    }

    fn block_control(&mut self) -> Result<Item, String> {
        let context = "block clause";
        let (pos, name) = self.template_name(context)?;
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        let (root, end) = self.sub_tree(|p| p.item_list())?;
        if let ListEnd::Else = end {
            return self.errorf(format!("unexpected {{{{else}}}} in {context}"));
        }
        self.defined.push((
            pos,
            Tree {
                name: name.clone(),
                parse_name: self.parse_name.clone(),
                src: self.src.clone(),
                root,
            },
        ));
        Ok(Item::Node(Node::Template {
            pos,
            name,
            pipe: Some(pipe),
        }))
    }

    fn pipeline(&mut self, context: &str, end: Tok) -> Result<Pipe, String> {
        let pos = self.toks.get(self.i).map_or(0, |t| t.pos);
        let mut pipe = Pipe {
            pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations: "$x :=", "$x =", or "$i, $e :=" in range.
        loop {
            let save = self.i;
            let Tok::Variable(name) = self.peek_non_space() else {
                self.i = save;
                break;
            };
            self.next_non_space();
            let after = self.i;
            match self.peek_non_space() {
                Tok::Declare | Tok::Assign => {
                    let t = self.next_non_space();
                    pipe.is_assign = t.tok == Tok::Assign;
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    break;
                }
                Tok::Comma => {
                    self.next_non_space();
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space() {
                            Tok::Variable(_) | Tok::RightDelim | Tok::RightParen => continue,
                            _ => return self.errorf("range can only initialize variables"),
                        }
                    }
                    return self.errorf(format!("too many declarations in {context}"));
                }
                _ => {
                    let _ = after;
                    self.i = save;
                    break;
                }
            }
        }
        loop {
            let t = self.next_non_space();
            if t.tok == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match t.tok {
                Tok::Bool(_)
                | Tok::CharConst(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::RawStr(_)
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    self.backup();
                    let c = self.command()?;
                    pipe.cmds.push(c);
                }
                other => return self.unexpected(&other, context),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> Result<(), String> {
        if pipe.cmds.is_empty() {
            return self.errorf(format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(
                    Arg::Bool(..)
                        | Arg::Dot(_)
                        | Arg::Nil(_)
                        | Arg::Number { .. }
                        | Arg::Str { .. }
                )
            ) {
                return self.errorf(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> Result<Command, String> {
        let mut cmd = Command { args: Vec::new() };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let t = self.next();
            match t.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.backup(),
                Tok::Pipe => {}
                other => return self.unexpected(&other, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.errorf("empty command");
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> Result<Option<Arg>, String> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if !matches!(self.peek(), Tok::Field(_)) {
            return Ok(Some(node));
        }
        // Go positions a merged chain at its second element.
        let chain_pos = self.toks.get(self.i).map_or(0, |t| t.pos);
        let mut fields = Vec::new();
        while let Tok::Field(f) = self.peek() {
            self.next();
            fields.push(f);
        }
        Ok(Some(match node {
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field {
                    pos: chain_pos,
                    idents,
                }
            }
            Arg::Variable {
                name, mut idents, ..
            } => {
                idents.extend(fields);
                Arg::Variable {
                    pos: chain_pos,
                    name,
                    idents,
                }
            }
            Arg::Bool(..) | Arg::Str { .. } | Arg::Number { .. } | Arg::Nil(_) | Arg::Dot(_) => {
                return self.errorf(format!("unexpected . after term {:?}", node.to_string()));
            }
            other => Arg::Chain {
                pos: chain_pos,
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>, String> {
        let t = self.next_non_space();
        let pos = t.pos;
        Ok(Some(match t.tok {
            Tok::Ident(name) => {
                if !(self.has_func)(&name) {
                    return self.errorf(format!("function {name:?} not defined"));
                }
                Arg::Ident { pos, name }
            }
            Tok::Dot => Arg::Dot(pos),
            Tok::Nil => Arg::Nil(pos),
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return self.errorf(format!("undefined variable {name:?}"));
                }
                Arg::Variable {
                    pos,
                    name,
                    idents: Vec::new(),
                }
            }
            Tok::Field(f) => Arg::Field {
                pos,
                idents: vec![f],
            },
            Tok::Bool(b) => Arg::Bool(pos, b),
            Tok::CharConst(text) => {
                let v = unquote_char(&text).or_else(|e| self.errorf(e))?;
                Arg::Number {
                    pos,
                    text,
                    num: Num::Int(i64::from(u32::from(v))),
                }
            }
            Tok::Number(text) => {
                let num = match parse_number(&text) {
                    Err(e) if e.ends_with("overflows int") => Num::Overflow,
                    r => r.or_else(|e| self.errorf(e))?,
                };
                Arg::Number { pos, text, num }
            }
            Tok::LeftParen => {
                self.enter()?;
                let p = self.pipeline("parenthesized pipeline", Tok::RightParen);
                self.depth -= 1;
                Arg::Pipe(Box::new(p?))
            }
            Tok::Str(q) | Tok::RawStr(q) => {
                let value = unquote(&q).or_else(|e| self.errorf(e))?;
                Arg::Str {
                    pos,
                    quoted: q,
                    value,
                }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

enum Item {
    Node(Node),
    End,
    Else,
}

fn parse_number(text: &str) -> Result<Num, String> {
    let bad = || format!("illegal number syntax: {text:?}");
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return Err(bad());
    }
    let lower = body.to_ascii_lowercase();
    let clean: String = lower.chars().filter(|c| *c != '_').collect();
    let int = if let Some(h) = clean.strip_prefix("0x") {
        Some(u64::from_str_radix(h, 16))
    } else if let Some(o) = clean.strip_prefix("0o") {
        Some(u64::from_str_radix(o, 8))
    } else if let Some(b) = clean.strip_prefix("0b") {
        Some(u64::from_str_radix(b, 2))
    } else if clean.len() > 1 && clean.starts_with('0') && clean.bytes().all(|b| b.is_ascii_digit())
    {
        Some(u64::from_str_radix(&clean[1..], 8))
    } else if clean.bytes().all(|b| b.is_ascii_digit()) {
        Some(clean.parse::<u64>())
    } else {
        None
    };
    match int {
        Some(Ok(u)) => {
            let v = if neg {
                if u > i64::MAX as u64 + 1 {
                    return Err(format!("{text} overflows int"));
                }
                (u as i128).wrapping_neg() as i64
            } else {
                i64::try_from(u).map_err(|_| format!("{text} overflows int"))?
            };
            Ok(Num::Int(v))
        }
        Some(Err(_)) => {
            if clean.bytes().all(|b| b.is_ascii_digit()) && !clean.starts_with('0') {
                Err(format!("{text} overflows int"))
            } else {
                Err(bad())
            }
        }
        None => {
            if clean.starts_with("0x")
                || clean.contains('i')
                || clean.contains("inf")
                || clean.contains("nan")
            {
                return Err(bad());
            }
            let f: f64 = clean.parse().map_err(|_| bad())?;
            Ok(Num::Float(if neg { -f } else { f }))
        }
    }
}

/// Interprets a Go string literal (quoted or raw).
pub(crate) fn unquote(q: &str) -> Result<String, String> {
    if let Some(raw) = q.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        // Go drops carriage returns from raw strings.
        return Ok(raw.replace('\r', ""));
    }
    let Some(body) = q.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return Err("invalid syntax".into());
    };
    let mut out = String::with_capacity(body.len());
    let mut bytes: Vec<u8> = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush_bytes(&mut bytes, &mut out);
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err("invalid syntax".into());
        };
        if !matches!(e, 'x' | '0'..='7') {
            flush_bytes(&mut bytes, &mut out);
        }
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            'x' => {
                let h: String = (0..2).filter_map(|_| chars.next()).collect();
                let b = u8::from_str_radix(&h, 16).map_err(|_| "invalid syntax".to_string())?;
                if h.len() != 2 {
                    return Err("invalid syntax".into());
                }
                bytes.push(b);
                continue;
            }
            '0'..='7' => {
                let mut s = String::from(e);
                s.extend((0..2).filter_map(|_| chars.next()));
                let v = u32::from_str_radix(&s, 8).map_err(|_| "invalid syntax".to_string())?;
                if s.len() != 3 || v > 255 {
                    return Err("invalid syntax".into());
                }
                bytes.push(v as u8);
                continue;
            }
            'u' | 'U' => {
                let n = if e == 'u' { 4 } else { 8 };
                let h: String = (0..n).filter_map(|_| chars.next()).collect();
                let v = u32::from_str_radix(&h, 16).map_err(|_| "invalid syntax".to_string())?;
                let ch = char::from_u32(v).ok_or_else(|| "invalid syntax".to_string())?;
                if h.len() != n {
                    return Err("invalid syntax".into());
                }
                flush_bytes(&mut bytes, &mut out);
                out.push(ch);
            }
            _ => return Err("invalid syntax".into()),
        }
        flush_bytes(&mut bytes, &mut out);
    }
    flush_bytes(&mut bytes, &mut out);
    Ok(out)
}

/// `\x` and octal escapes produce bytes; Rust strings must stay UTF-8, so
/// invalid sequences become U+FFFD (Go would keep the raw bytes).
fn flush_bytes(bytes: &mut Vec<u8>, out: &mut String) {
    if !bytes.is_empty() {
        out.push_str(&String::from_utf8_lossy(bytes));
        bytes.clear();
    }
}

fn unquote_char(q: &str) -> Result<char, String> {
    let inner = q
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .ok_or_else(|| format!("malformed character constant: {q}"))?;
    let s = if inner == "\"" {
        "\"".to_string()
    } else if inner == "\\'" {
        "'".to_string()
    } else {
        unquote(&format!("\"{inner}\""))
            .map_err(|_| format!("malformed character constant: {q}"))?
    };
    let mut cs = s.chars();
    match (cs.next(), cs.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(format!("malformed character constant: {q}")),
    }
}
