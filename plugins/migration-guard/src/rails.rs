//! Rails migrations, read with a real Ruby parser (lib-ruby-parser). Only
//! what runs on deploy counts: `change` and `up` (and `dir.up` inside
//! `reversible`), never `down`. Comments and strings that merely mention an
//! operation are not calls, so they never match. SQL run through `execute`,
//! `exec_query` and the like (also on `connection` or
//! `ActiveRecord::Base.connection`) goes through the SQL reader;
//! `safety_assured { }` marks what it wraps as overridden.

use crate::ops::{Located, Op, Phase, line_of, table_name};
use crate::sql::Sql;
use lib_ruby_parser::nodes::{Block, Send};
use lib_ruby_parser::{Node, Parser, ParserOptions};

mod eval;
mod options;
pub mod schema;
mod tables;

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
}

pub fn read(file: &str, src: &str, phase: Phase, sql: Sql) -> Vec<Located> {
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
    };
    if let Some(d) = result.diagnostics.iter().find(|d| d.is_error()) {
        r.push(d.loc.begin, Op::Unparsed { why: format!("Ruby syntax: {}", d.render_message()) });
        return r.out;
    }
    let Some(ast) = result.ast else { return r.out };
    let mut classes = Vec::new();
    collect_classes(&ast, &mut classes);
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
        }
    }
    r.out
}

/// `connection` or `Anything.connection`: the migration's database
/// connection.
fn is_connection(node: &Node) -> bool {
    matches!(node, Node::Send(c) if c.method_name == "connection" && c.args.is_empty())
}

/// `Model`, `Model.unscoped`, `Model.all`: the whole table.
fn model(node: &Node) -> Option<&str> {
    match node {
        Node::Const(c) => Some(&c.name),
        Node::Send(s) if matches!(s.method_name.as_str(), "unscoped" | "all" | "in_batches") => {
            s.recv.as_deref().and_then(model)
        }
        _ => None,
    }
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

    fn call(&mut self, s: &Send) {
        let at = s.expression_l.begin;
        let runs_sql = matches!(
            s.method_name.as_str(),
            "execute" | "exec_query" | "exec_update" | "exec_delete" | "exec_insert"
        );
        // SQL sent through the connection: `connection.execute`,
        // `ActiveRecord::Base.connection.execute`, `exec_query`.
        if runs_sql && s.recv.as_deref().is_none_or(is_connection) {
            return self.execute(s);
        }
        if matches!(s.method_name.as_str(), "truncate" | "truncate_tables")
            && s.recv.as_deref().is_some_and(is_connection)
        {
            for table in self.names(&s.args) {
                self.push(at, Op::Truncate { table: table_name(&table) });
            }
            return;
        }
        if let Some(recv) = s.recv.as_deref() {
            // `Model.delete_all` / `Model.unscoped.update_all`: every row.
            if let Some(c) = model(recv) {
                let table = table_name(c);
                match s.method_name.as_str() {
                    "delete_all" | "destroy_all" => self.push(at, Op::DeleteAll { table }),
                    "update_all" => self.push(at, Op::UpdateAll { table }),
                    _ => {}
                }
            }
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
                self.push(at, Op::Validate { table })
            }
            "revert" => {
                if let Some(Node::Const(c)) = args.first() {
                    self.push(at, Op::RevertOther { name: c.name.clone() });
                }
            }
            other => self.helper(other, at),
        }
    }

    /// `execute` with literal SQL goes through the SQL reader; anything built
    /// at run time is reported, never assumed safe.
    fn execute(&mut self, s: &Send) {
        let at = s.expression_l.begin;
        let Some(arg) = s.args.first() else { return };
        let literal = match arg {
            Node::Str(st) => Some((st.value.to_string_lossy(), st.expression_l.begin)),
            Node::Heredoc(h) => self.text(&h.parts).map(|t| (t, h.heredoc_body_l.begin)),
            Node::Dstr(d) => self.text(&d.parts).map(|t| (t, d.expression_l.begin)),
            Node::Const(c) => self.scope.strings.get(&c.name).map(|t| (t.clone(), at)),
            _ => None,
        };
        let Some((sql, offset)) = literal else {
            let why = match arg {
                Node::Heredoc(_) | Node::Dstr(_) => {
                    "the SQL string interpolates Ruby values".to_string()
                }
                _ => "`execute` is given a value, not a SQL literal".to_string(),
            };
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
