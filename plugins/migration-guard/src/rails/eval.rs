//! What a static reader can evaluate of the Ruby real migrations use
//! (strong_migrations sees it all at run time): loops over literal lists
//! (`%i[a b].each do |c|`), splats of them, constants assigned a literal
//! in the file, and methods defined in the same file. Whatever stays
//! unknown becomes the name `?`, so the operation is still judged (fail
//! closed), never dropped.

use super::Reader;
use super::options::literal_parts;
use super::options::name;
use lib_ruby_parser::Node;
use lib_ruby_parser::nodes::{Block, Numblock, Send};

/// A bare `it`: the block's element in Ruby 3.4.
pub(super) fn is_it(s: &Send) -> bool {
    s.recv.is_none() && s.method_name == "it" && s.args.is_empty()
}
use std::collections::BTreeMap;

/// Calls whose block runs once per element of the receiver.
const ITERATORS: &[&str] =
    &["each", "each_with_index", "map", "flat_map", "each_with_object", "find_each", "times"];

/// Calls in a migration body that change no schema and no data (or that the
/// reader handles elsewhere): Ruby's output and control, the migration's
/// messages and questions, and DSL calls judged safe.
const HARMLESS: &[&str] = &[
    "say",
    "puts",
    "print",
    "p",
    "pp",
    "raise",
    "fail",
    "sleep",
    "require",
    "require_relative",
    "loop",
    "lambda",
    "proc",
    "attr_accessor",
    "private",
    "protected",
    "public",
    "freeze",
    "reset_column_information",
    "connection",
    "transaction",
    "up_only",
    "reversible",
    "index_exists?",
    "column_exists?",
    "table_exists?",
    "foreign_key_exists?",
    "index_name_exists?",
    "check_constraint_exists?",
    "view_exists?",
    "data_source_exists?",
    "create_enum",
    "add_enum_value",
    "create_schema",
    "enable_extension",
    "remove_check_constraint",
    "remove_foreign_key",
    "remove_unique_constraint",
    "remove_exclusion_constraint",
    "rename_index",
    "change_table_comment",
    "change_column_comment",
    "add_unique_constraint",
    "change_column_null",
    "create_join_table",
    "create_table",
    "disable_ddl_transaction!",
    "safety_assured",
    "revert",
    "migrate",
    "select_value",
    "select_values",
    "select_all",
    "select_one",
    "select_rows",
    "quote",
    "quote_table_name",
    "quote_column_name",
    "exec_migration",
];

/// How deep helper methods may call each other before the reader stops.
const MAX_DEPTH: u32 = 8;

/// What the file defines: constants with literal values, helper methods.
#[derive(Default)]
pub(super) struct Scope {
    pub consts: BTreeMap<String, Vec<String>>,
    /// `SQL = <<~SQL ... SQL`: constants holding literal SQL.
    pub strings: BTreeMap<String, String>,
    pub helpers: BTreeMap<String, Node>,
    /// Model classes the file defines with `self.table_name = "..."`.
    pub tables: BTreeMap<String, String>,
}

/// Methods that change only a string's whitespace or its frozenness:
/// `<<~SQL.squish` is still the literal SQL.
pub(super) const TEXT_METHODS: &[&str] = &[
    "squish",
    "squish!",
    "strip",
    "strip!",
    "lstrip",
    "rstrip",
    "chomp",
    "strip_heredoc",
    "freeze",
    "dup",
    "to_s",
    "itself",
];

/// Marks where SQL interpolates a Ruby value the reader cannot know; the
/// SQL reader reads a name holding it as unknown (`?`).
pub const UNKNOWN: &str = "__bluegreen_unknown__";

/// `X.freeze`, `<<~SQL.squish`: the string itself.
pub(super) fn unwrapped(node: &Node) -> &Node {
    match node {
        Node::Send(s) if s.args.is_empty() && TEXT_METHODS.contains(&s.method_name.as_str()) => {
            s.recv.as_deref().map(unwrapped).unwrap_or(node)
        }
        other => other,
    }
}

/// A block's element variable: `|c|`, the first of `|c, i|`, or Ruby 3.4's
/// `it` when it has no parameters.
pub(super) fn block_var(b: &Block) -> Option<String> {
    match b.args.as_deref() {
        // `|c|` is a Procarg0 holding the Arg; `|c, i|` lists Args.
        Some(Node::Args(a)) => a.args.iter().find_map(|x| match x {
            Node::Arg(arg) => Some(arg.name.clone()),
            Node::Procarg0(p) => p.args.iter().find_map(|y| match y {
                Node::Arg(arg) => Some(arg.name.clone()),
                _ => None,
            }),
            _ => None,
        }),
        _ => Some("it".to_string()),
    }
}

/// Classes anywhere in the file that name their table
/// (`class MigrationUser < ActiveRecord::Base; self.table_name = "users"`).
pub(super) fn table_names(node: &Node, out: &mut BTreeMap<String, String>) {
    match node {
        Node::Begin(b) => b.statements.iter().for_each(|s| table_names(s, out)),
        Node::Module(m) => m.body.iter().for_each(|b| table_names(b, out)),
        Node::Class(c) => {
            let Some(body) = c.body.as_deref() else { return };
            let stmts: Vec<&Node> = match body {
                Node::Begin(b) => b.statements.iter().collect(),
                other => vec![other],
            };
            for st in &stmts {
                if let Node::Send(s) = st
                    && matches!(s.recv.as_deref(), Some(Node::Self_(_)))
                    && s.method_name == "table_name="
                    && let Some(t) = s.args.first().and_then(name)
                    && let Node::Const(k) = &*c.name
                {
                    out.insert(k.name.clone(), crate::ops::table_name(&t));
                }
            }
            stmts.into_iter().for_each(|s| table_names(s, out));
        }
        _ => {}
    }
}

impl Scope {
    /// Collects a class body's `CONST = %i[...]` and `def helper` (every
    /// method but the ones a migration runs or reverses itself).
    pub fn collect(&mut self, body: &[&Node]) {
        for s in body {
            match s {
                Node::Casgn(c) => {
                    let value = c.value.as_deref().map(unfrozen);
                    if let Some(v) = value.and_then(literal_list) {
                        self.consts.insert(c.name.clone(), v);
                    }
                    let text = match value {
                        Some(Node::Str(st)) => Some(st.value.to_string_lossy()),
                        Some(Node::Heredoc(h)) => literal_parts(&h.parts),
                        Some(Node::Dstr(d)) => literal_parts(&d.parts),
                        _ => None,
                    };
                    if let Some(t) = text {
                        self.strings.insert(c.name.clone(), t);
                    }
                }
                Node::Def(d) if !matches!(d.name.as_str(), "change" | "up" | "down") => {
                    if let Some(b) = &d.body {
                        self.helpers.insert(d.name.clone(), (**b).clone());
                    }
                }
                _ => {}
            }
        }
    }
}

/// `X.freeze` (or `<<~SQL.squish`) is `X`.
fn unfrozen(node: &Node) -> &Node {
    unwrapped(node)
}

/// `%i[a b]`, `[:a, "b"]`, or one symbol or string, as names.
fn literal_list(node: &Node) -> Option<Vec<String>> {
    match node {
        Node::Array(a) => a.elements.iter().map(name).collect(),
        other => name(other).map(|n| vec![n]),
    }
}

impl Reader<'_> {
    /// Positional arguments as names (the options hash and array arguments
    /// left out, as before): bound block variables and literal constants
    /// resolved, splats expanded, anything else `?`.
    pub(super) fn names(&self, args: &[Node]) -> Vec<String> {
        let mut out = Vec::new();
        for a in args {
            match a {
                Node::Kwargs(_) | Node::Hash(_) | Node::Array(_) | Node::BlockPass(_) => {}
                Node::Splat(s) => match s.value.as_deref().and_then(|v| self.list(v)) {
                    Some(list) => out.extend(list),
                    None => out.push("?".into()),
                },
                other => out.push(self.value(other).unwrap_or_else(|| "?".into())),
            }
        }
        out
    }

    pub(super) fn value(&self, node: &Node) -> Option<String> {
        match node {
            Node::Lvar(v) => self.bound.get(&v.name).cloned(),
            // Ruby 3.4's `it`, which this parser (Ruby 3.1) reads as a call.
            Node::Send(s) if is_it(s) => self.bound.get("it").cloned(),
            Node::Begin(b) if b.statements.len() == 1 => self.value(&b.statements[0]),
            Node::Const(c) => self.scope.consts.get(&c.name).and_then(|l| l.first().cloned()),
            other => name(other),
        }
    }

    /// A string's text when every interpolation in it is a value the reader
    /// knows (`"DROP VIEW #{view}"` inside a loop over a literal list).
    pub(super) fn text(&self, parts: &[Node]) -> Option<String> {
        let mut s = String::new();
        for p in parts {
            match p {
                Node::Str(st) => s.push_str(&st.value.to_string_lossy()),
                // A loop over a list the reader does not know binds `?`.
                other => match self.value(other)? {
                    v if v == "?" => return None,
                    v => s.push_str(&v),
                },
            }
        }
        Some(s)
    }

    /// A string's text with every interpolation the reader does not know
    /// written as [`UNKNOWN`], numbered so two stay distinct.
    pub(super) fn text_with_unknowns(&self, parts: &[Node]) -> String {
        let mut s = String::new();
        for (i, p) in parts.iter().enumerate() {
            match p {
                Node::Str(st) => s.push_str(&st.value.to_string_lossy()),
                other => match self.value(other) {
                    Some(v) if v != "?" => s.push_str(&v),
                    _ => s.push_str(&format!("{UNKNOWN}{i}")),
                },
            }
        }
        s
    }

    /// A list the reader knows: a literal, or a constant assigned one.
    fn list(&self, node: &Node) -> Option<Vec<String>> {
        match node {
            Node::Const(c) => self.scope.consts.get(&c.name).cloned(),
            other => literal_list(other),
        }
    }

    /// A block the reader has no special meaning for. An iterator's body
    /// runs once per known element, with its variable bound (or once with
    /// it unknown); any other block's body is read as it stands.
    pub(super) fn other_block(&mut self, b: &Block) {
        let Node::Send(call) = &*b.call else { return };
        // No parameters: Ruby 3.4's `it` names the element.
        let var = block_var(b);
        let Some(body) = b.body.as_deref() else { return };
        self.iterate(call, var, body);
    }

    /// `{ remove_column :t, _1 }`: a block with numbered parameters.
    pub(super) fn numblock(&mut self, b: &Numblock) {
        let Node::Send(call) = &*b.call else { return };
        self.iterate(call, Some("_1".into()), &b.body);
    }

    fn iterate(&mut self, call: &Send, var: Option<String>, body: &Node) {
        if !ITERATORS.contains(&call.method_name.as_str()) {
            self.call(call);
            self.walk(body);
            return;
        }
        let elements =
            call.recv.as_deref().and_then(|r| self.list(r)).unwrap_or_else(|| vec!["?".into()]);
        for e in elements {
            if let Some(v) = &var {
                self.bound.insert(v.clone(), e);
            }
            self.walk(body);
        }
        if let Some(v) = &var {
            self.bound.remove(v);
        }
    }

    /// A call to a method defined in the same file: read its body.
    /// A method the file does not define and the migration DSL does not
    /// know (a helper from a concern or `lib/`) is reported as unchecked.
    pub(super) fn helper(&mut self, method: &str, at: usize) {
        if self.depth >= MAX_DEPTH {
            return;
        }
        let Some(body) = self.scope.helpers.get(method).cloned() else {
            if !HARMLESS.contains(&method) {
                let why = format!(
                    "`{method}` is not defined in this file, so what it does is not checked"
                );
                self.push(at, crate::ops::Op::Unparsed { why });
            }
            return;
        };
        self.depth += 1;
        self.walk(&body);
        self.depth -= 1;
    }
}
