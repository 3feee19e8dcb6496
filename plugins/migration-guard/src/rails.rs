//! Rails migrations, read with a real Ruby parser (lib-ruby-parser). Only
//! what runs on deploy counts: `change` and `up` (and `dir.up` inside
//! `reversible`), never `down`. Comments and strings that merely mention an
//! operation are not calls, so they never match. SQL run through `execute`,
//! `exec_query` and the like (also on `connection` or
//! `ActiveRecord::Base.connection`, a `raw_connection`, Sequel-style `DB`,
//! or an entry point the `sql_methods` setting names) goes through the SQL
//! reader; `safety_assured { }` marks what it wraps as overridden. Bodies of
//! `begin ... rescue ... ensure ... end`, loops, assignments and `&&`/`||`
//! are read like any other.

use crate::ops::{Located, Op, Phase, line_of, table_name};
use crate::sql::Sql;
use lib_ruby_parser::nodes::{Block, Send};
use lib_ruby_parser::{Node, Parser, ParserOptions};

mod eval;
mod inflect;
mod options;
pub mod schema;
mod tables;

pub use eval::UNKNOWN;
use options::*;

struct Reader<'a> {
    file: &'a str,
    src: &'a str,
    phase: Phase,
    /// Off after `disable_ddl_transaction!`.
    in_transaction: bool,
    allowed: Vec<(String, String)>,
    reverting: bool,
    out: Vec<Located>,
    /// Constants and helper methods the file defines.
    scope: eval::Scope,
    /// Block variables bound to a known element.
    bound: std::collections::BTreeMap<String, String>,
    /// Helper calls being read (bounded).
    depth: u32,
    /// The database `execute`d SQL is for.
    sql: Sql,
    /// The application's own SQL entry points (`sql_methods`).
    entries: &'a [Entry],
    /// Block variables and locals holding a database connection.
    connections: std::collections::BTreeSet<String>,
    /// Block variables bound to a batch of a model's rows
    /// (`Model.in_batches do |batch|`): the table.
    relations: std::collections::BTreeMap<String, String>,
    /// Locals assigned literal SQL (`sql = <<~SQL ... SQL`).
    locals: std::collections::BTreeMap<String, String>,
}

/// A method that runs the SQL it is given as its first argument: on a
/// receiver as written (`DB`, `ActiveRecord::Base.connection`), or on none
/// (`run_sql`, also called as `self.run_sql`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub recv: Option<String>,
    pub method: String,
}

impl Entry {
    /// `DB.exec, SqlHelpers.run_sql, run_sql` (brackets and quotes, as a
    /// YAML list would write them, are allowed).
    pub fn parse_list(list: &str) -> Result<Vec<Entry>, String> {
        let unquoted = list.trim().trim_matches(|c| c == '"' || c == '\'');
        let list = unquoted.trim().trim_start_matches('[').trim_end_matches(']');
        list.split(|c: char| c == ',' || c.is_whitespace())
            .map(|e| e.trim_matches(|c| c == '"' || c == '\''))
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (recv, method) = match e.rsplit_once('.') {
                    Some(("self", m)) => (None, m),
                    Some((r, m)) => (Some(r), m),
                    None => (None, e),
                };
                let ident = |s: &str, extra: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c))
                };
                if !ident(method, "!?") || !recv.is_none_or(|r| ident(r, ":.")) {
                    return Err(format!("`{e}` is not a method (`Receiver.method` or `method`)"));
                }
                Ok(Entry { recv: recv.map(String::from), method: method.to_string() })
            })
            .collect()
    }
}

/// A receiver as written: `DB`, `ActiveRecord::Base.connection`, `conn`;
/// `None` when it is more than constants, variables and argument-less calls.
fn path(node: &Node) -> Option<String> {
    match node {
        Node::Const(c) => match c.scope.as_deref() {
            None => Some(c.name.clone()),
            Some(Node::Cbase(_)) => Some(c.name.clone()),
            Some(scope) => Some(format!("{}::{}", path(scope)?, c.name)),
        },
        Node::Send(s) if s.args.is_empty() => match s.recv.as_deref() {
            None => Some(s.method_name.clone()),
            Some(r) => Some(format!("{}.{}", path(r)?, s.method_name)),
        },
        Node::Lvar(v) => Some(v.name.clone()),
        Node::Self_(_) => Some("self".into()),
        _ => None,
    }
}

/// Methods that run the SQL they are given, on a connection: Active
/// Record's, and the driver's on `raw_connection` (pg's `exec`, mysql2's
/// `query`).
const CONNECTION_SQL: &[&str] = &[
    "execute",
    "exec_query",
    "exec_update",
    "exec_delete",
    "exec_insert",
    "exec",
    "exec_params",
    "async_exec",
    "query",
];

/// Entry points common enough to read without configuration: Sequel's
/// conventional `DB` constant.
const COMMON: &[(&str, &str)] = &[("DB", "exec"), ("DB", "execute"), ("DB", "run")];

/// Method names that suggest SQL is run: on a receiver the guard does not
/// know, the call is reported (`?`), never passed.
const SQL_LIKE: &[&str] = &[
    "execute",
    "exec",
    "exec_query",
    "exec_update",
    "exec_delete",
    "exec_insert",
    "exec_params",
    "async_exec",
    "run",
    "query",
    "execute_sql",
    "run_sql",
    "exec_sql",
    "sql",
];

/// Constants of Ruby and Rails whose class methods change no schema and
/// no data.
const STDLIB: &[&str] = &[
    "Rails",
    "Time",
    "Date",
    "DateTime",
    "SecureRandom",
    "ENV",
    "File",
    "Dir",
    "Pathname",
    "JSON",
    "YAML",
    "Kernel",
    "Logger",
    "Digest",
    "Integer",
    "Float",
    "String",
    "Array",
    "Hash",
    "Set",
    "Struct",
    "Process",
    "Benchmark",
    "Math",
    "URI",
    "Regexp",
    "BigDecimal",
    "I18n",
    "ActiveSupport",
    "STDOUT",
    "STDERR",
    "Thread",
];

/// A model's class methods that read, or write rows one by one (a data
/// migration the old release tolerates), or handle what the reader reads
/// elsewhere (`transaction` blocks, `connection`).
const MODEL_METHODS: &[&str] = &[
    "where",
    "not",
    "find",
    "find_by",
    "find_by!",
    "find_each",
    "find_in_batches",
    "in_batches",
    "each",
    "all",
    "unscoped",
    "first",
    "last",
    "take",
    "count",
    "exists?",
    "pluck",
    "pick",
    "ids",
    "create",
    "create!",
    "new",
    "insert",
    "insert!",
    "insert_all",
    "insert_all!",
    "upsert",
    "upsert_all",
    "find_or_create_by",
    "find_or_create_by!",
    "find_or_initialize_by",
    "create_or_find_by",
    "create_or_find_by!",
    "update",
    "update!",
    "destroy",
    "delete",
    "reset_column_information",
    "column_names",
    "columns",
    "columns_hash",
    "table_name",
    "table_name=",
    "primary_key",
    "transaction",
    "connection",
    "lease_connection",
    "with_connection",
    "connection_pool",
    "sanitize_sql",
    "sanitize_sql_array",
    "sanitize_sql_for_conditions",
    "sanitize_sql_like",
    "joins",
    "left_joins",
    "includes",
    "order",
    "limit",
    "select",
    "group",
    "distinct",
    "maximum",
    "minimum",
    "sum",
    "average",
    "none",
    "reset_sequence_name",
    "reset_primary_key",
    "inheritance_column=",
    "attribute_names",
    "say",
    "say_with_time",
    "logger",
];

pub fn read(file: &str, src: &str, phase: Phase, sql: Sql, entries: &[Entry]) -> Vec<Located> {
    let result = Parser::new(src.as_bytes().to_vec(), ParserOptions::default()).do_parse();
    let mut r = Reader {
        file,
        src,
        phase,
        in_transaction: true,
        allowed: Vec::new(),
        reverting: false,
        out: Vec::new(),
        scope: eval::Scope::default(),
        bound: Default::default(),
        depth: 0,
        sql,
        entries,
        connections: Default::default(),
        relations: Default::default(),
        locals: Default::default(),
    };
    if let Some(d) = result.diagnostics.iter().find(|d| d.is_error()) {
        r.push(d.loc.begin, Op::Unparsed { why: format!("Ruby syntax: {}", d.render_message()) });
        return r.out;
    }
    let Some(ast) = result.ast else { return r.out };
    let mut classes = Vec::new();
    collect_classes(&ast, &mut classes);
    eval::table_names(&ast, &mut r.scope.tables);
    for body in &classes {
        r.scope.collect(&statements(body));
        // `disable_ddl_transaction!` may come anywhere in the class.
        for s in statements(body) {
            if let Node::Send(s) = s
                && s.recv.is_none()
                && s.method_name == "disable_ddl_transaction!"
            {
                r.in_transaction = false;
            }
        }
    }
    for body in classes {
        for s in statements(body) {
            // `def up`, and the old style `def self.up` (Rails before 3.1).
            let (name, b) = match s {
                Node::Def(d) => (d.name.as_str(), d.body.as_deref()),
                Node::Defs(d) => (d.name.as_str(), d.body.as_deref()),
                _ => continue,
            };
            if matches!(name, "change" | "up")
                && let Some(b) = b
            {
                r.walk(b);
            }
            // `down` never runs on deploy, but the check it would add back
            // says what a check validated by name requires.
            if name == "down"
                && let Some(b) = b
            {
                r.declarations(b);
            }
        }
    }
    r.out
}

/// `connection`, `Anything.connection` (`lease_connection`), a
/// `raw_connection` on either: the migration's database connection.
fn is_connection(node: &Node) -> bool {
    matches!(node, Node::Send(c) if c.args.is_empty()
        && matches!(c.method_name.as_str(), "connection" | "lease_connection" | "raw_connection"))
}

fn collect_classes<'n>(node: &'n Node, out: &mut Vec<&'n Node>) {
    match node {
        Node::Class(c) => {
            if let Some(b) = &c.body {
                out.push(b);
            }
        }
        Node::Module(m) => {
            if let Some(b) = &m.body {
                collect_classes(b, out);
            }
        }
        Node::Begin(b) => b.statements.iter().for_each(|s| collect_classes(s, out)),
        _ => {}
    }
}

fn statements(node: &Node) -> Vec<&Node> {
    match node {
        Node::Begin(b) => b.statements.iter().collect(),
        Node::KwBegin(b) => b.statements.iter().collect(),
        other => vec![other],
    }
}

impl Reader<'_> {
    /// `add_check_constraint :t, "col IS NOT NULL", name: "n"` anywhere in
    /// `node` (a `down` body): declared, not run.
    fn declarations(&mut self, node: &Node) {
        match node {
            Node::Begin(_) | Node::KwBegin(_) => {
                for s in statements(node) {
                    self.declarations(s);
                }
            }
            Node::Send(s) if s.recv.is_none() && s.method_name == "add_check_constraint" => {
                let table = self.names(&s.args).first().map(|t| table_name(t)).unwrap_or_default();
                let opts = options(&s.args);
                self.declare_check(s.expression_l.begin, &table, s.args.get(1), &opts);
            }
            Node::Block(b) => b.body.iter().for_each(|n| self.declarations(n)),
            Node::If(i) => {
                [&i.if_true, &i.if_false].into_iter().flatten().for_each(|n| self.declarations(n))
            }
            _ => {}
        }
    }

    /// A named check's NOT NULL columns, stated without adding it.
    fn declare_check(
        &mut self,
        at: usize,
        table: &str,
        expr: Option<&Node>,
        opts: &[(String, &Node)],
    ) {
        let Some(check) = opt(opts, "name").and_then(name) else { return };
        let not_null =
            expr.and_then(name).map(|e| crate::schema::not_null_columns_of(&e)).unwrap_or_default();
        if !not_null.is_empty() {
            let op = Op::DeclaresCheck { table: table.to_string(), name: check, not_null };
            // Not inverted inside `revert`: a declaration is not an action.
            let was = std::mem::replace(&mut self.reverting, false);
            self.push(at, op);
            self.reverting = was;
        }
    }

    fn push(&mut self, offset: usize, op: Op) {
        let op = if self.reverting { invert(op) } else { Some(op) };
        if let Some(op) = op {
            self.out.push(Located {
                op,
                file: self.file.to_string(),
                line: line_of(self.src, offset),
                phase: self.phase,
                in_transaction: self.in_transaction,
                allowed: self.allowed.clone(),
                online: false,
            });
        }
    }

    fn walk(&mut self, node: &Node) {
        match node {
            Node::Begin(_) | Node::KwBegin(_) => {
                for s in statements(node) {
                    self.walk(s);
                }
            }
            Node::Send(s) => self.call(s),
            Node::Block(b) => self.block(b),
            Node::Numblock(b) => self.numblock(b),
            Node::If(i) => {
                for n in [&i.if_true, &i.if_false].into_iter().flatten() {
                    self.walk(n);
                }
            }
            Node::IfMod(i) => {
                for n in [&i.if_true, &i.if_false].into_iter().flatten() {
                    self.walk(n);
                }
            }
            // `begin ... rescue ... else ... ensure ... end` (also a `def`
            // body with `rescue`): every part may run.
            Node::Rescue(r) => {
                let bodies = r.rescue_bodies.iter().filter_map(|b| match b {
                    Node::RescueBody(b) => b.body.as_deref(),
                    _ => None,
                });
                let parts: Vec<&Node> =
                    r.body.as_deref().into_iter().chain(bodies).chain(r.else_.as_deref()).collect();
                parts.into_iter().for_each(|n| self.walk(n));
            }
            Node::Ensure(e) => {
                for n in [&e.body, &e.ensure].into_iter().flatten() {
                    self.walk(n);
                }
            }
            Node::While(w) => {
                self.walk(&w.cond);
                w.body.iter().for_each(|n| self.walk(n));
            }
            Node::Until(u) => {
                self.walk(&u.cond);
                u.body.iter().for_each(|n| self.walk(n));
            }
            Node::WhilePost(w) => self.walk(&w.body),
            Node::UntilPost(u) => self.walk(&u.body),
            Node::And(a) => {
                self.walk(&a.lhs);
                self.walk(&a.rhs);
            }
            Node::Or(o) => {
                self.walk(&o.lhs);
                self.walk(&o.rhs);
            }
            Node::Lvasgn(a) => self.assign(&a.name, a.value.as_deref()),
            Node::Ivasgn(a) => {
                a.value.iter().for_each(|n| self.walk(n));
            }
            Node::OrAsgn(a) => self.walk(&a.value),
            Node::AndAsgn(a) => self.walk(&a.value),
            Node::Return(r) => r.args.iter().for_each(|n| self.walk(n)),
            Node::Case(c) => {
                for w in &c.when_bodies {
                    if let Node::When(w) = w
                        && let Some(b) = &w.body
                    {
                        self.walk(b);
                    }
                }
                if let Some(e) = &c.else_body {
                    self.walk(e);
                }
            }
            _ => {}
        }
    }

    fn block(&mut self, b: &Block) {
        let Node::Send(call) = &*b.call else { return };
        let body = b.body.as_deref();
        // `Model.in_batches do |batch| batch.update_all(...) end`: the
        // variable is a batch of the table's rows.
        if call.method_name == "in_batches"
            && let Some((table, _)) = call.recv.as_deref().and_then(|r| self.model(r))
            && let Some(var) = eval::block_var(b)
        {
            self.relations.insert(var.clone(), table);
            body.into_iter().for_each(|n| self.walk(n));
            self.relations.remove(&var);
            return;
        }
        // `with_connection do |conn| conn.execute(...) end`.
        if call.method_name == "with_connection"
            && let Some(var) = eval::block_var(b)
        {
            self.connections.insert(var.clone());
            body.into_iter().for_each(|n| self.walk(n));
            self.connections.remove(&var);
            return;
        }
        match (call.recv.as_deref(), call.method_name.as_str()) {
            (None, "safety_assured") => {
                self.allowed.push(("*".into(), "safety_assured".into()));
                body.into_iter().for_each(|n| self.walk(n));
                self.allowed.pop();
            }
            (None, "reversible") | (None, "up_only") | (None, "say_with_time") => {
                body.into_iter().for_each(|n| self.walk(n))
            }
            (Some(Node::Lvar(_)), "up") => body.into_iter().for_each(|n| self.walk(n)),
            (Some(Node::Lvar(_)), "down") => {}
            (None, "revert") => {
                let was = self.reverting;
                self.reverting = !was;
                body.into_iter().for_each(|n| self.walk(n));
                self.reverting = was;
            }
            (None, "change_table") => {
                let Some(table) = call.args.first().and_then(name) else { return };
                let table = table_name(&table);
                for s in body.map(statements).unwrap_or_default() {
                    // `t.remove`, or `it.remove` (Ruby 3.4).
                    if let Node::Send(s) = s
                        && match s.recv.as_deref() {
                            Some(Node::Lvar(_)) => true,
                            Some(Node::Send(r)) => eval::is_it(r),
                            _ => false,
                        }
                    {
                        self.table_call(&table, s);
                    }
                }
            }
            // create_table's block defines the new table's columns: nothing to judge.
            (None, "create_table") => self.call(call),
            _ => self.other_block(b),
        }
    }

    /// `name = value`: a literal SQL string or a connection is remembered
    /// for later calls; the value is read like any expression.
    fn assign(&mut self, name: &str, value: Option<&Node>) {
        self.locals.remove(name);
        self.connections.remove(name);
        let Some(value) = value else { return };
        if let Some(text) = self.literal(value) {
            self.locals.insert(name.to_string(), text.0);
            return;
        }
        // SQL interpolating values the reader cannot know: kept with them
        // as unknowns, so `execute sql` judges it as it would the string.
        match eval::unwrapped(value) {
            Node::Heredoc(h) => {
                self.locals.insert(name.to_string(), self.text_with_unknowns(&h.parts));
                return;
            }
            Node::Dstr(d) => {
                self.locals.insert(name.to_string(), self.text_with_unknowns(&d.parts));
                return;
            }
            _ => {}
        }
        if is_connection(value) || self.is_sql_receiver(value) {
            self.connections.insert(name.to_string());
            return;
        }
        self.walk(value);
    }

    /// Whether `recv.method(sql)` runs `sql`: a connection's SQL methods,
    /// the common entry points and those the settings name.
    fn runs_sql(&self, recv: Option<&Node>, method: &str) -> bool {
        let recv = match recv {
            Some(Node::Self_(_)) | None => None,
            Some(r) => Some(r),
        };
        let on_connection = match recv {
            None => matches!(
                method,
                "execute" | "exec_query" | "exec_update" | "exec_delete" | "exec_insert"
            ),
            Some(r) => CONNECTION_SQL.contains(&method) && self.is_sql_receiver(r),
        };
        let named =
            |e: &Entry| e.method == method && e.recv.as_deref() == recv.and_then(path).as_deref();
        let common = recv.and_then(path).is_some_and(|p| COMMON.contains(&(p.as_str(), method)));
        on_connection || common || self.entries.iter().any(named)
    }

    /// A connection, or a variable holding one.
    fn is_sql_receiver(&self, node: &Node) -> bool {
        match node {
            Node::Lvar(v) => self.connections.contains(&v.name),
            // `connection.raw_connection`, `ActiveRecord::Base.connection`.
            other => is_connection(other),
        }
    }

    /// `Model`, `Model.unscoped`, `Model.all`, `Model.in_batches`, or a
    /// batch's block variable: the whole table, and whether in batches.
    fn model(&self, node: &Node) -> Option<(String, bool)> {
        match node {
            Node::Const(c)
                if !path(node).is_some_and(|p| {
                    STDLIB.contains(&p.split("::").next().unwrap_or_default())
                }) =>
            {
                let table = self.scope.tables.get(&c.name).cloned();
                Some((table.unwrap_or_else(|| inflect::tableize(&c.name)), false))
            }
            Node::Lvar(v) => self.relations.get(&v.name).map(|t| (t.clone(), true)),
            Node::Send(s)
                if matches!(s.method_name.as_str(), "unscoped" | "all" | "in_batches") =>
            {
                let (table, batched) = self.model(s.recv.as_deref()?)?;
                Some((table, batched || s.method_name == "in_batches"))
            }
            _ => None,
        }
    }

    fn call(&mut self, s: &Send) {
        let at = s.expression_l.begin;
        // `self.remove_column ...` is `remove_column ...`.
        let recv = match s.recv.as_deref() {
            Some(Node::Self_(_)) => None,
            other => other,
        };
        // SQL sent through the connection (`connection.execute`,
        // `ActiveRecord::Base.connection.execute`, `exec_query`, a
        // `raw_connection`'s `exec`), `DB.run`, or a `sql_methods` entry.
        if self.runs_sql(recv, &s.method_name) {
            return self.execute(s);
        }
        if matches!(s.method_name.as_str(), "truncate" | "truncate_tables")
            && recv.is_some_and(|r| self.is_sql_receiver(r))
        {
            for table in self.names(&s.args) {
                self.push(at, Op::Truncate { table: table_name(&table) });
            }
            return;
        }
        if let Some(recv) = recv {
            // `Model.delete_all` / `Model.unscoped.update_all`: every row.
            if let Some((table, batched)) = self.model(recv) {
                match s.method_name.as_str() {
                    "delete_all" | "destroy_all" => return self.push(at, Op::DeleteAll { table }),
                    "update_all" => {
                        let columns = update_columns(&s.args);
                        return self.push(at, Op::UpdateAll { table, columns, batched });
                    }
                    _ => {}
                }
            }
            self.unknown_receiver(at, recv, &s.method_name);
            return;
        }
        let args = &s.args;
        let opts = options(args);
        let n = self.names(args);
        let arg = |i: usize| n.get(i).cloned().unwrap_or_default();
        let table = table_name(&arg(0));
        if self.sql == Sql::MySql {
            // Active Record 8.2's `algorithm:` and `lock:` on MySQL.
            let copy = opt(&opts, "algorithm").and_then(name).as_deref() == Some("copy");
            let lock = opt(&opts, "lock").and_then(name);
            if copy || matches!(lock.as_deref(), Some("shared" | "exclusive")) {
                let what =
                    format!("{} :{table} with algorithm: :copy or a blocking lock:", s.method_name);
                self.push(at, Op::BlocksWrites { table: Some(table.clone()), what });
            }
        }
        match s.method_name.as_str() {
            "create_table" => {
                let force = truthy(opt(&opts, "force"));
                self.push(at, Op::CreateTable { table, force })
            }
            "drop_table" => self.push(at, Op::DropTable { table }),
            "drop_join_table" => {
                let table = format!("{}_{}", arg(0), arg(1));
                self.push(at, Op::DropTable { table })
            }
            "rename_table" => {
                self.push(at, Op::RenameTable { from: table, to: table_name(&arg(1)) })
            }
            "add_column" => self.add_column(at, &table, arg(1), &arg(2), &opts),
            "remove_column" => {
                self.push(at, Op::RemoveColumn { table, column: arg(1), what: "column" })
            }
            "remove_columns" => {
                self.remove_columns(at, &table, n.iter().skip(1).cloned(), "column")
            }
            "rename_column" => self.push(at, Op::RenameColumn { table, from: arg(1), to: arg(2) }),
            "change_column" => {
                let to = column_type(&arg(2), &opts);
                self.change_type(at, table, arg(1), to, &opts)
            }
            "change_column_null" if is_false(args.get(2)) => {
                self.push(at, Op::SetNotNull { table, column: arg(1) })
            }
            "change_column_default" => self.push(at, Op::ChangeDefault { table, column: arg(1) }),
            "add_index" => self.index(at, table, &opts),
            "remove_index" => self.drop_index(at, &opts),
            "add_reference" | "add_belongs_to" => self.reference(at, &table, &arg(1), &opts),
            "remove_reference" | "remove_belongs_to" => self.push(
                at,
                Op::RemoveColumn { table, column: format!("{}_id", arg(1)), what: "reference" },
            ),
            "add_timestamps" => self.timestamps(at, &table, &opts),
            "remove_timestamps" => {
                self.remove_columns(at, &table, ["created_at", "updated_at"], "timestamps")
            }
            "add_foreign_key" => {
                let validated = self.validated(&opts);
                self.push(at, Op::AddForeignKey { table, validated })
            }
            "add_check_constraint" => self.check_constraint(at, table, args.get(1), &opts),
            "add_unique_constraint" if !truthy(opt(&opts, "using_index")) => {
                self.push(at, Op::AddUnique { table })
            }
            "add_exclusion_constraint" => self.push(at, Op::AddExclusion { table }),
            // The scenic gem's views: a new (materialized) view has no
            // readers yet, so an index on it blocks no one.
            "create_view" => self.push(at, Op::CreateTable { table, force: false }),
            "drop_view" => {
                let kind =
                    if truthy(opt(&opts, "materialized")) { "materialized view" } else { "view" };
                self.push(at, Op::DropObject { kind, name: arg(0) })
            }
            "rename_enum_value" => self.push(at, Op::RenameEnumValue { ty: arg(0) }),
            "drop_enum" => self.push(at, Op::DropObject { kind: "type", name: arg(0) }),
            "rename_schema" => self.push(at, Op::RenameObject { kind: "schema", name: arg(0) }),
            "drop_schema" => self.push(at, Op::DropObject { kind: "schema", name: arg(0) }),
            "create_join_table" => {
                let mut t = [arg(0), arg(1)];
                t.sort();
                let table = opt(&opts, "table_name").and_then(name).unwrap_or(t.join("_"));
                self.push(at, Op::CreateTable { table: table_name(&table), force: false })
            }
            "validate_foreign_key" | "validate_check_constraint" | "validate_constraint" => {
                let name = match s.method_name.as_str() {
                    "validate_constraint" => n.get(1).cloned(),
                    "validate_check_constraint" => opt(&opts, "name").and_then(name),
                    _ => None,
                };
                self.push(at, Op::Validate { table, name })
            }
            "remove_check_constraint" => self.declare_check(at, &table, args.get(1), &opts),
            "revert" => {
                if let Some(Node::Const(c)) = args.first() {
                    self.push(at, Op::RevertOther { name: c.name.clone() });
                }
            }
            other => self.helper(other, at),
        }
    }

    /// A call on a receiver the reader has no meaning for: a method that
    /// looks like it runs SQL, or a class method of something other than a
    /// model or Ruby's own classes (a helper module in `lib/`), is reported
    /// as unchecked; anything else (a scoped relation, a value) changes no
    /// schema.
    fn unknown_receiver(&mut self, at: usize, recv: &Node, method: &str) {
        let written = path(recv).unwrap_or_else(|| "?".into());
        let root = written.split(['.', ':']).next().unwrap_or_default();
        let unknown = if SQL_LIKE.contains(&method) {
            Some(format!(
                "`{written}.{method}` may run SQL the guard cannot see (name it in the `sql_methods` setting to have its SQL read)"
            ))
        } else if let Node::Const(c) = recv
            && !STDLIB.contains(&root)
            && !MODEL_METHODS.contains(&method)
            && !self.scope.tables.contains_key(&c.name)
        {
            Some(format!(
                "`{written}.{method}` is not defined in this file, so what it does is not checked"
            ))
        } else {
            None
        };
        if let Some(why) = unknown {
            self.push(at, Op::Unparsed { why });
        }
    }

    /// A string the reader can read whole: a literal, a heredoc, a string
    /// whose interpolations are known values, a constant or local holding
    /// one, with whitespace methods on it (`<<~SQL.squish`, `.strip`).
    /// Returns the text and where it starts.
    fn literal(&self, node: &Node) -> Option<(String, usize)> {
        match node {
            Node::Str(st) => Some((st.value.to_string_lossy(), st.expression_l.begin)),
            Node::Heredoc(h) => self.text(&h.parts).map(|t| (t, h.heredoc_body_l.begin)),
            Node::Dstr(d) => self.text(&d.parts).map(|t| (t, d.expression_l.begin)),
            Node::Const(c) => {
                self.scope.strings.get(&c.name).map(|t| (t.clone(), c.expression_l.begin))
            }
            Node::Lvar(v) => self.locals.get(&v.name).map(|t| (t.clone(), v.expression_l.begin)),
            Node::Send(s)
                if s.args.is_empty() && eval::TEXT_METHODS.contains(&s.method_name.as_str()) =>
            {
                self.literal(s.recv.as_deref()?)
            }
            Node::Begin(b) if b.statements.len() == 1 => self.literal(&b.statements[0]),
            _ => None,
        }
    }

    /// `execute` with literal SQL goes through the SQL reader. SQL that
    /// interpolates values it cannot know is read with those values as
    /// unknown names: a statement whose shape does not depend on them (a
    /// `CREATE INDEX` with an interpolated name) is judged, any other is
    /// reported as dynamic, never assumed safe.
    fn execute(&mut self, s: &Send) {
        let at = s.expression_l.begin;
        let Some(arg) = s.args.first() else { return };
        let arg = eval::unwrapped(arg);
        let literal = self.literal(arg).or_else(|| match arg {
            Node::Heredoc(h) => Some((self.text_with_unknowns(&h.parts), h.heredoc_body_l.begin)),
            Node::Dstr(d) => Some((self.text_with_unknowns(&d.parts), d.expression_l.begin)),
            _ => None,
        });
        let Some((sql, offset)) = literal else {
            let why = "`execute` is given a value, not a SQL literal".to_string();
            self.push(at, Op::Dynamic { why });
            return;
        };
        let first_line = line_of(self.src, offset);
        for mut l in
            crate::sql::read(self.file, &sql, self.phase, Some(self.in_transaction), self.sql)
        {
            l.line += first_line - 1;
            l.allowed.extend(self.allowed.iter().cloned());
            if self.reverting {
                continue;
            }
            self.out.push(l);
        }
    }
}

/// The columns an `update_all` writes, when it is given a hash
/// (`update_all(locale: "en")`); `None` for SQL text.
fn update_columns(args: &[Node]) -> Option<Vec<String>> {
    let pairs = match args {
        [Node::Kwargs(k)] => &k.pairs,
        [Node::Hash(h)] => &h.pairs,
        _ => return None,
    };
    pairs
        .iter()
        .map(|p| match p {
            Node::Pair(p) => name(&p.key),
            _ => None,
        })
        .collect()
}
