use std::collections::HashMap;
use std::sync::Arc;

use crate::error::TemplateError;
use crate::exec;
use crate::funcs::{Funcs, is_builtin};
use crate::parse::{self, Tree, is_empty_tree};
use crate::value::Value;

/// What a field lookup of a missing map key yields (Go's `missingkey`
/// option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// Go's default: the missing value prints as `<no value>`.
    #[default]
    Default,
    /// The zero value of a string map: `""`. This is what Prometheus and
    /// Alertmanager see, since their data is `map[string]string` with
    /// `missingkey=zero`.
    Zero,
    /// Execution stops with `map has no entry for key "..."`.
    Error,
}

/// How action output is escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Escape {
    /// Plain `text/template`.
    #[default]
    None,
    /// Escapes every action's output as Go's `html/template` does for HTML
    /// text context (`&lt;` `&gt;` `&amp;` `&#39;` `&#34;` `&#43;`), except
    /// values produced by `safeHtml`; nil prints as the empty string.
    ///
    /// This is not contextual: output inside attributes, URLs, `<script>` or
    /// `<style>` gets the same text escaping, where `html/template` would
    /// pick a context-specific escaper.
    Html,
}

/// Options for one execution.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub missing_key: MissingKey,
    pub escape: Escape,
    /// Limit on nested `{{template}}` calls (Go allows 100000; we stop much
    /// earlier to keep the native stack safe).
    pub max_depth: usize,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            missing_key: MissingKey::Default,
            escape: Escape::None,
            max_depth: 128,
        }
    }
}

impl ExecOptions {
    /// The options Prometheus and Alertmanager use for text templates.
    pub fn zero() -> Self {
        ExecOptions {
            missing_key: MissingKey::Zero,
            ..Self::default()
        }
    }

    /// The options Alertmanager uses for HTML (email) templates.
    pub fn html() -> Self {
        ExecOptions {
            missing_key: MissingKey::Zero,
            escape: Escape::Html,
            ..Self::default()
        }
    }
}

/// A set of named templates sharing one function registry, like Go's
/// `*template.Template` with its associated templates.
#[derive(Clone)]
pub struct Template {
    pub(crate) trees: HashMap<String, Arc<Tree>>,
    pub(crate) funcs: Funcs,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.trees.keys().collect();
        names.sort();
        f.debug_struct("Template")
            .field("templates", &names)
            .finish()
    }
}

impl Template {
    /// An empty set using `funcs` (plus Go's builtins).
    pub fn new(funcs: &Funcs) -> Self {
        Template {
            trees: HashMap::new(),
            funcs: funcs.clone(),
        }
    }

    /// Parses `text` as template `name`, with any `define`s in it.
    pub fn parse(name: &str, text: &str, funcs: &Funcs) -> Result<Template, TemplateError> {
        let mut t = Template::new(funcs);
        t.add(name, text)?;
        Ok(t)
    }

    /// Parses more text into the set. Later definitions replace earlier
    /// ones unless they are empty, as when Go parses several files into one
    /// template (this is how a user file overrides Alertmanager's defaults).
    /// On error the set is unchanged.
    pub fn add(&mut self, name: &str, text: &str) -> Result<(), TemplateError> {
        let funcs = &self.funcs;
        let has = |f: &str| funcs.contains(f) || is_builtin(f);
        let out = parse::parse(name, text, &has).map_err(TemplateError::Parse)?;
        for tree in out.trees {
            let keep_old = is_empty_tree(&tree.root) && self.trees.contains_key(&tree.name);
            if !keep_old {
                self.trees.insert(tree.name.clone(), Arc::new(tree));
            }
        }
        Ok(())
    }

    /// Whether a template of that name is defined.
    pub fn has(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// Names of all templates in the set, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.trees.keys().cloned().collect();
        v.sort();
        v
    }

    /// Adds or replaces functions; affects templates parsed afterwards and
    /// calls made by all templates.
    pub fn funcs_mut(&mut self) -> &mut Funcs {
        &mut self.funcs
    }

    /// Executes template `name` with `data` as dot.
    pub fn execute(
        &self,
        name: &str,
        data: &Value,
        opts: &ExecOptions,
    ) -> Result<String, TemplateError> {
        let tree = self
            .trees
            .get(name)
            .ok_or_else(|| TemplateError::NotFound(name.to_string()))?;
        exec::execute(self, tree.clone(), data, opts)
    }

    /// Parses `text` as a throwaway template that can call every template in
    /// the set and executes it, leaving the set unchanged (Alertmanager's
    /// `ExecuteTextString`). Empty text gives empty output.
    pub fn execute_text(
        &self,
        text: &str,
        data: &Value,
        opts: &ExecOptions,
    ) -> Result<String, TemplateError> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let mut t = self.clone();
        t.add("", text)?;
        t.execute("", data, opts)
    }
}
