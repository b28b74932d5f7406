//! Walks parsed trees against data, following Go's `text/template/exec.go`.

use std::sync::Arc;

use crate::error::{FuncError, TemplateError};
use crate::format;
use crate::funcs::{call_builtin, html_escape_content};
use crate::parse::{Arg, Command, Control, Node, Num, Pipe, Tree, line_of};
use crate::template::{Escape, ExecOptions, MissingKey, Template};
use crate::value::Value;

pub(crate) fn execute(
    tmpl: &Template,
    tree: Arc<Tree>,
    data: &Value,
    opts: &ExecOptions,
) -> Result<String, TemplateError> {
    let mut st = State {
        tmpl,
        opts,
        tree,
        vars: vec![("$".to_string(), data.clone())],
        depth: 0,
        out: String::new(),
        in_html_comment: false,
        nest: 0,
    };
    let root = st.tree.clone();
    st.walk(data, &root.root)?;
    Ok(st.out)
}

#[derive(PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'a> {
    tmpl: &'a Template,
    opts: &'a ExecOptions,
    tree: Arc<Tree>,
    vars: Vec<(String, Value)>,
    depth: usize,
    out: String,
    in_html_comment: bool,
    /// Nested walks (blocks plus template calls), bounded to protect the
    /// native stack when recursive templates also nest deeply.
    nest: usize,
}

const MAX_NEST: usize = 400;

type R<T> = Result<T, TemplateError>;

impl State<'_> {
    fn error(&self, pos: usize, context: &str, msg: impl std::fmt::Display) -> TemplateError {
        let src = &self.tree.src;
        let pos = pos.min(src.len());
        let line = line_of(src, pos);
        let col = match src[..pos].rfind('\n') {
            Some(nl) => pos - nl - 1,
            None => pos,
        };
        TemplateError::Exec(format!(
            "template: {}:{}:{}: executing {} at <{}>: {}",
            self.tree.parse_name,
            line,
            col,
            format::quote(&self.tree.name, false),
            context,
            msg
        ))
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> R<Flow> {
        self.nest += 1;
        let r = self.walk_inner(dot, nodes);
        self.nest -= 1;
        r
    }

    fn walk_inner(&mut self, dot: &Value, nodes: &[Node]) -> R<Flow> {
        if self.nest > MAX_NEST {
            return Err(TemplateError::Exec(format!(
                "template: {}: exceeded maximum nesting of {MAX_NEST} blocks and template calls",
                self.tree.name
            )));
        }
        for node in nodes {
            let flow = match node {
                Node::Text(t) => {
                    if self.opts.escape == Escape::Html {
                        self.html_text(t);
                    } else {
                        self.out.push_str(t);
                    }
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.print_value(pipe, &v)?;
                    }
                    Flow::Normal
                }
                Node::If(c) => self.walk_if_or_with(dot, c, false)?,
                Node::With(c) => self.walk_if_or_with(dot, c, true)?,
                Node::Range(c) => self.walk_range(dot, c)?,
                Node::Template { pos, name, pipe } => {
                    self.walk_template(dot, *pos, name, pipe.as_ref())?;
                    Flow::Normal
                }
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    /// html/template removes HTML comments from the template text, and
    /// whatever actions print inside them.
    fn html_text(&mut self, t: &str) {
        let mut rest = t;
        loop {
            if self.in_html_comment {
                match rest.find("-->") {
                    Some(i) => {
                        rest = &rest[i + 3..];
                        self.in_html_comment = false;
                    }
                    None => return,
                }
            }
            match rest.find("<!--") {
                Some(i) => {
                    self.out.push_str(&rest[..i]);
                    rest = &rest[i + 4..];
                    self.in_html_comment = true;
                }
                None => {
                    self.out.push_str(rest);
                    return;
                }
            }
        }
    }

    fn print_value(&mut self, pipe: &Pipe, v: &Value) -> R<()> {
        if self.in_html_comment {
            return Ok(());
        }
        if let Value::Func(_) = v {
            return Err(self.error(
                pipe.pos,
                &pipe.to_string(),
                format!("can't print {pipe} of type func"),
            ));
        }
        match self.opts.escape {
            Escape::None => match v {
                Value::Nil => self.out.push_str("<no value>"),
                Value::String(s) | Value::SafeHtml(s) => self.out.push_str(s),
                other => self.out.push_str(&format::sprint_value(other)),
            },
            // html/template drops its own escaper after an explicit `html`.
            Escape::Html if ends_in_html(pipe) => match v {
                Value::Nil => {}
                other => self.out.push_str(&format::sprint_value(other)),
            },
            Escape::Html => match v {
                Value::Nil => {}
                Value::SafeHtml(s) => self.out.push_str(s),
                Value::String(s) => self.out.push_str(&html_escape_content(s)),
                other => self
                    .out
                    .push_str(&html_escape_content(&format::sprint_value(other))),
            },
        }
        Ok(())
    }

    fn walk_if_or_with(&mut self, dot: &Value, c: &Control, with: bool) -> R<Flow> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &c.pipe)?;
        let flow = if val.is_true() {
            if with {
                self.walk(&val, &c.list)?
            } else {
                self.walk(dot, &c.list)?
            }
        } else if let Some(e) = &c.else_list {
            self.walk(dot, e)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Value, c: &Control) -> R<Flow> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &c.pipe)?;
        let val = val.resolved().into_owned();
        let body_mark = self.vars.len();
        let decl = &c.pipe.decl;
        let mut ran = false;
        let mut iterate = |st: &mut Self, index: Value, elem: Value| -> R<bool> {
            ran = true;
            if !decl.is_empty() {
                if c.pipe.is_assign {
                    let first = if decl.len() > 1 {
                        index.clone()
                    } else {
                        elem.clone()
                    };
                    st.set_var(c.pos, &decl[0], first)?;
                } else {
                    st.set_top_var(1, elem.clone());
                }
            }
            if decl.len() > 1 {
                if c.pipe.is_assign {
                    st.set_var(c.pos, &decl[1], elem.clone())?;
                } else {
                    st.set_top_var(2, index);
                }
            }
            let flow = st.walk(&elem, &c.list)?;
            st.vars.truncate(body_mark);
            Ok(flow == Flow::Break)
        };
        match val {
            Value::List(items) => {
                for (i, e) in items.into_iter().enumerate() {
                    if iterate(self, Value::Int(i as i64), e)? {
                        break;
                    }
                }
            }
            Value::Map(m) => {
                for (k, e) in m {
                    if iterate(self, Value::String(k), e)? {
                        break;
                    }
                }
            }
            Value::Int(n) => {
                if decl.len() > 1 {
                    return Err(self.error(
                        c.pos,
                        &format!("range {}", c.pipe),
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                for i in 0..n.max(0) {
                    if iterate(self, Value::Int(i), Value::Int(i))? {
                        break;
                    }
                }
            }
            Value::Nil => {}
            other => {
                // Go blames the node evaluated last: the pipeline's final
                // operand when it is a lone one.
                let (pos, ctx) = match c.pipe.cmds.last() {
                    Some(cmd) if cmd.args.len() == 1 => {
                        (cmd.args[0].pos(), cmd.args[0].to_string())
                    }
                    Some(cmd) => (cmd.args.first().map_or(c.pos, Arg::pos), cmd.to_string()),
                    None => (c.pos, String::new()),
                };
                return Err(self.error(
                    pos,
                    &ctx,
                    format!("range can't iterate over {}", format::sprint_value(&other)),
                ));
            }
        }
        let flow = if !ran && let Some(e) = &c.else_list {
            self.walk(dot, e)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        // break/continue only ever apply to the innermost range.
        let _ = flow;
        Ok(Flow::Normal)
    }

    fn walk_template(&mut self, dot: &Value, pos: usize, name: &str, pipe: Option<&Pipe>) -> R<()> {
        let ctx = || match pipe {
            Some(p) => format!("{{{{template {} {}}}}}", format::quote(name, false), p),
            None => format!("{{{{template {}}}}}", format::quote(name, false)),
        };
        let Some(tree) = self.tmpl.trees.get(name).cloned() else {
            return Err(self.error(
                pos,
                &ctx(),
                format!("template {} not defined", format::quote(name, false)),
            ));
        };
        if self.depth >= self.opts.max_depth {
            return Err(self.error(
                pos,
                &ctx(),
                format!("exceeded maximum template depth ({})", self.opts.max_depth),
            ));
        }
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Nil,
        };
        let saved_vars =
            std::mem::replace(&mut self.vars, vec![("$".to_string(), new_dot.clone())]);
        let saved_tree = std::mem::replace(&mut self.tree, tree.clone());
        self.depth += 1;
        let r = self.walk(&new_dot, &tree.root);
        self.depth -= 1;
        self.tree = saved_tree;
        self.vars = saved_vars;
        r.map(|_| ())
    }

    fn set_var(&mut self, pos: usize, name: &str, v: Value) -> R<()> {
        for (n, val) in self.vars.iter_mut().rev() {
            if n == name {
                *val = v;
                return Ok(());
            }
        }
        Err(self.error(pos, name, format!("undefined variable: {name}")))
    }

    fn set_top_var(&mut self, n: usize, v: Value) {
        let len = self.vars.len();
        if let Some(slot) = len.checked_sub(n).and_then(|i| self.vars.get_mut(i)) {
            slot.1 = v;
        }
    }

    fn var_value(&self, pos: usize, name: &str) -> R<Value> {
        for (n, val) in self.vars.iter().rev() {
            if n == name {
                return Ok(val.clone());
            }
        }
        Err(self.error(pos, name, format!("undefined variable: {name}")))
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value.take())?);
        }
        let value = value.unwrap_or_default();
        for d in &pipe.decl {
            if pipe.is_assign {
                self.set_var(pipe.pos, d, value.clone())?;
            } else {
                self.vars.push((d.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd: &Command, fin: &Option<Value>) -> R<()> {
        if cmd.args.len() > 1 || fin.is_some() {
            let first = &cmd.args[0];
            return Err(self.error(
                first.pos(),
                &first.to_string(),
                format!("can't give argument to non-function {first}"),
            ));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Command, fin: Option<Value>) -> R<Value> {
        let Some(first) = cmd.args.first() else {
            return Ok(Value::Nil);
        };
        let rest = &cmd.args[1..];
        match first {
            Arg::Field { idents, .. } => {
                return self.eval_field_chain(dot, dot.clone(), first, idents, rest, fin);
            }
            Arg::Chain { node, fields, .. } => {
                let recv = self.eval_chain_receiver(dot, first, node)?;
                return self.eval_field_chain(dot, recv, first, fields, rest, fin);
            }
            Arg::Ident { name, .. } => {
                return self.eval_function(dot, name, first, &cmd.to_string(), rest, fin);
            }
            Arg::Pipe(p) => {
                self.not_a_function(cmd, &fin)?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Variable { pos, name, idents } => {
                let v = self.var_value(*pos, name)?;
                if idents.is_empty() {
                    self.not_a_function(cmd, &fin)?;
                    return Ok(v);
                }
                return self.eval_field_chain(dot, v, first, idents, rest, fin);
            }
            _ => {}
        }
        self.not_a_function(cmd, &fin)?;
        match first {
            Arg::Nil(pos) => Err(self.error(*pos, "nil", "nil is not a command")),
            lit => self.literal(dot, lit),
        }
    }

    fn literal(&self, dot: &Value, a: &Arg) -> R<Value> {
        Ok(match a {
            Arg::Dot(_) => dot.clone(),
            Arg::Bool(_, b) => Value::Bool(*b),
            Arg::Number { num, text, pos } => match num {
                Num::Int(i) => Value::Int(*i),
                Num::Float(f) => Value::Float(*f),
                Num::Overflow => {
                    return Err(self.error(*pos, text, format!("{text} overflows int")));
                }
            },
            Arg::Str { value, .. } => Value::String(value.clone()),
            _ => Value::Nil,
        })
    }

    fn eval_chain_receiver(&mut self, dot: &Value, chain: &Arg, node: &Arg) -> R<Value> {
        if let Arg::Nil(_) = node {
            return Err(self.error(
                chain.pos(),
                &chain.to_string(),
                format!("indirection through explicit nil in {chain}"),
            ));
        }
        self.eval_arg(dot, node)
    }

    fn eval_arg(&mut self, dot: &Value, a: &Arg) -> R<Value> {
        match a {
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), a, idents, &[], None)
            }
            Arg::Variable { pos, name, idents } => {
                let v = self.var_value(*pos, name)?;
                if idents.is_empty() {
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, a, idents, &[], None)
            }
            Arg::Chain { node, fields, .. } => {
                let recv = self.eval_chain_receiver(dot, a, node)?;
                self.eval_field_chain(dot, recv, a, fields, &[], None)
            }
            Arg::Ident { name, .. } => self.eval_function(dot, name, a, name, &[], None),
            Arg::Pipe(p) => self.eval_pipeline(dot, p),
            Arg::Nil(_) => Ok(Value::Nil),
            lit => self.literal(dot, lit),
        }
    }

    fn eval_args(&mut self, dot: &Value, args: &[Arg], fin: Option<Value>) -> R<Vec<Value>> {
        let mut out = Vec::with_capacity(args.len() + 1);
        for a in args {
            out.push(self.eval_arg(dot, a)?);
        }
        if let Some(f) = fin {
            out.push(f);
        }
        Ok(out)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        receiver: Value,
        node: &Arg,
        idents: &[String],
        args: &[Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let Some((last, init)) = idents.split_last() else {
            return Ok(receiver);
        };
        let mut recv = receiver;
        for name in init {
            recv = self.eval_field(dot, name, node, &[], None, recv)?;
        }
        self.eval_field(dot, last, node, args, fin, recv)
    }

    fn func_error(&self, name: &str, node: &Arg, ctx: &str, e: FuncError) -> TemplateError {
        match e {
            FuncError::Arity { want, got } => self.error(
                node.pos(),
                &node.to_string(),
                format!("wrong number of args for {name}: want {want} got {got}"),
            ),
            FuncError::Type { expected, got } => self.error(
                node.pos(),
                ctx,
                format!("wrong type for value; expected {expected}; got {got}"),
            ),
            FuncError::Call(msg) => {
                self.error(node.pos(), ctx, format!("error calling {name}: {msg}"))
            }
        }
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        node: &Arg,
        args: &[Arg],
        fin: Option<Value>,
        receiver: Value,
    ) -> R<Value> {
        let has_args = !args.is_empty() || fin.is_some();
        let ctx = node.to_string();
        let map_lookup = |st: &Self, m: &std::collections::BTreeMap<String, Value>| -> R<Value> {
            if has_args {
                return Err(st.error(
                    node.pos(),
                    &ctx,
                    format!("{name} is not a method but has arguments"),
                ));
            }
            match m.get(name) {
                Some(v) => Ok(v.clone()),
                None => match st.opts.missing_key {
                    MissingKey::Default => Ok(Value::Nil),
                    MissingKey::Zero => Ok(Value::String(String::new())),
                    MissingKey::Error => Err(st.error(
                        node.pos(),
                        &ctx,
                        format!("map has no entry for key {}", format::quote(name, false)),
                    )),
                },
            }
        };
        match &receiver {
            Value::Nil => {
                if self.opts.missing_key == MissingKey::Error {
                    return Err(self.error(
                        node.pos(),
                        &ctx,
                        format!("nil data; no entry for key {}", format::quote(name, false)),
                    ));
                }
                Ok(Value::Nil)
            }
            Value::Map(m) => map_lookup(self, m),
            Value::Object(o) => {
                let argv = if has_args {
                    self.eval_args(dot, args, fin)?
                } else {
                    Vec::new()
                };
                if let Some(r) = o.method(name, &argv) {
                    return r.map_err(|e| self.func_error(name, node, &ctx, e));
                }
                if let Some(f) = o.field(name) {
                    if has_args {
                        return Err(self.error(
                            node.pos(),
                            &ctx,
                            format!("{name} has arguments but cannot be invoked as function"),
                        ));
                    }
                    return Ok(f);
                }
                if let Some(Value::Map(m)) = o.underlying() {
                    return map_lookup(self, &m);
                }
                Err(self.error(
                    node.pos(),
                    &ctx,
                    format!("can't evaluate field {name} in type {}", o.type_name()),
                ))
            }
            other => Err(self.error(
                node.pos(),
                &ctx,
                format!("can't evaluate field {name} in type {}", other.type_name()),
            )),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &str,
        node: &Arg,
        ctx: &str,
        args: &[Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        if let Some(f) = self.tmpl.funcs.get(name).cloned() {
            let argv = self.eval_args(dot, args, fin)?;
            return f(&argv).map_err(|e| self.func_error(name, node, ctx, e));
        }
        match name {
            "and" | "or" => {
                if args.is_empty() && fin.is_none() {
                    return Err(self.func_error(
                        name,
                        node,
                        ctx,
                        FuncError::Arity {
                            want: "at least 1".into(),
                            got: 0,
                        },
                    ));
                }
                // Short-circuit: return the first value that decides.
                let mut v = Value::Nil;
                for a in args {
                    v = self.eval_arg(dot, a)?;
                    if v.is_true() == (name == "or") {
                        return Ok(v);
                    }
                }
                if let Some(f) = fin {
                    v = f;
                }
                Ok(v)
            }
            "call" => {
                let argv = self.eval_args(dot, args, fin)?;
                let Some(first) = argv.first() else {
                    return Err(self.func_error(
                        name,
                        node,
                        ctx,
                        FuncError::Arity {
                            want: "at least 1".into(),
                            got: 0,
                        },
                    ));
                };
                if let Value::Nil = first {
                    return Err(self.func_error(
                        name,
                        node,
                        ctx,
                        FuncError::Call("call of nil".into()),
                    ));
                }
                let Value::Func(f) = first else {
                    return Err(self.func_error(
                        name,
                        node,
                        ctx,
                        FuncError::Call(format!(
                            "non-function {} of type {}",
                            args.first().map(ToString::to_string).unwrap_or_default(),
                            first.type_name()
                        )),
                    ));
                };
                f(&argv[1..]).map_err(|e| match e {
                    FuncError::Call(m) => self.func_error(name, node, ctx, FuncError::Call(m)),
                    other => self.func_error(name, node, ctx, FuncError::Call(other.to_string())),
                })
            }
            _ => {
                let argv = self.eval_args(dot, args, fin)?;
                call_builtin(name, &argv, self.opts.missing_key)
                    .map_err(|e| self.func_error(name, node, ctx, e))
            }
        }
    }
}

fn ends_in_html(pipe: &Pipe) -> bool {
    matches!(
        pipe.cmds.last().and_then(|c| c.args.first()),
        Some(Arg::Ident { name, .. }) if name == "html"
    )
}
