//! Calls that change an existing table: `change_table` blocks (`t.remove`,
//! `t.rename`, `t.change`, ...), indexes, references and timestamps.

use super::Reader;
use super::options::*;
use crate::ops::{Default, Op};
use crate::schema::not_null_columns_of;
use lib_ruby_parser::Node;
use lib_ruby_parser::nodes::Send;

impl Reader<'_> {
    /// `add_column` and its `change_table` forms: NOT NULL and the default
    /// come from the options.
    pub(super) fn add_column(
        &mut self,
        at: usize,
        table: &str,
        column: String,
        ty: &str,
        opts: &[(String, &Node)],
    ) {
        let not_null = is_false(opt(opts, "null"));
        let mut default = default_of(opts);
        // `:virtual` (Rails 7): a generated column, written to every row
        // when stored.
        if ty == "virtual" && truthy(opt(opts, "stored")) {
            default = Default::Stored;
        }
        let ty = column_type(ty, opts);
        self.push(at, Op::AddColumn { table: table.to_string(), column, not_null, default, ty });
        match opt(opts, "index") {
            None | Some(Node::False(_) | Node::Nil(_)) => {}
            Some(i) => {
                let inner = match i {
                    Node::Hash(h) => pairs(&h.pairs),
                    _ => Vec::new(),
                };
                self.index(at, table.to_string(), &inner);
            }
        }
    }

    /// `validate: false` leaves a constraint unchecked, except on MySQL,
    /// which has no NOT VALID (Rails ignores the option there).
    pub(super) fn validated(&self, opts: &[(String, &Node)]) -> bool {
        self.sql == crate::sql::Sql::MySql || !is_false(opt(opts, "validate"))
    }

    /// `change_column` / `t.change`: the type, and NOT NULL when it says
    /// `null: false`.
    pub(super) fn change_type(
        &mut self,
        at: usize,
        table: String,
        column: String,
        to: String,
        opts: &[(String, &Node)],
    ) {
        self.push(at, Op::ChangeType { table: table.clone(), column: column.clone(), to });
        if is_false(opt(opts, "null")) {
            self.push(at, Op::SetNotNull { table, column });
        }
    }

    /// `add_check_constraint` / `t.check_constraint`: a `col IS NOT NULL`
    /// check, once validated, lets `SET NOT NULL` skip its scan.
    pub(super) fn check_constraint(
        &mut self,
        at: usize,
        table: String,
        expr: Option<&Node>,
        opts: &[(String, &Node)],
    ) {
        let validated = self.validated(opts);
        let not_null = expr.and_then(name).map(|e| not_null_columns_of(&e)).unwrap_or_default();
        self.push(at, Op::AddCheck { table, validated, not_null })
    }

    /// A call on the block variable of `change_table :t do |t| ... end`.
    pub(super) fn table_call(&mut self, table: &str, s: &Send) {
        let at = s.expression_l.begin;
        let opts = options(&s.args);
        let n = self.names(&s.args);
        let table = table.to_string();
        let arg = |i: usize| n.get(i).cloned().unwrap_or_default();
        match s.method_name.as_str() {
            "remove" => self.remove_columns(at, &table, n.iter().cloned(), "column"),
            "rename" => self.push(at, Op::RenameColumn { table, from: arg(0), to: arg(1) }),
            "change" => {
                let to = column_type(&arg(1), &opts);
                self.change_type(at, table, arg(0), to, &opts)
            }
            "check_constraint" => self.check_constraint(at, table, s.args.first(), &opts),
            "foreign_key" => {
                let validated = self.validated(&opts);
                self.push(at, Op::AddForeignKey { table, validated })
            }
            "unique_constraint" if !truthy(opt(&opts, "using_index")) => {
                self.push(at, Op::AddUnique { table })
            }
            "exclusion_constraint" => self.push(at, Op::AddExclusion { table }),
            "change_default" => self.push(at, Op::ChangeDefault { table, column: arg(0) }),
            "change_null" if is_false(s.args.get(1)) => {
                self.push(at, Op::SetNotNull { table, column: arg(0) })
            }
            "references" | "belongs_to" => {
                for r in &n {
                    self.reference(at, &table, r, &opts);
                }
            }
            "remove_references" | "remove_belongs_to" => {
                for r in &n {
                    self.push(
                        at,
                        Op::RemoveColumn {
                            table: table.clone(),
                            column: format!("{r}_id"),
                            what: "reference",
                        },
                    );
                }
            }
            "index" => self.index(at, table, &opts),
            "remove_index" => self.drop_index(at, &opts),
            "timestamps" => self.timestamps(at, &table, &opts),
            "remove_timestamps" => {
                self.remove_columns(at, &table, ["created_at", "updated_at"], "timestamps")
            }
            "column" => self.add_column(at, &table, arg(0), &arg(1), &opts),
            // t.string :name, t.integer :count, ...: a column of that type.
            ty @ ("string" | "text" | "integer" | "bigint" | "smallint" | "boolean"
            | "datetime" | "date" | "decimal" | "numeric" | "float" | "real" | "json"
            | "jsonb" | "uuid" | "binary" | "blob" | "time" | "timestamp" | "timestamptz"
            | "citext" | "inet" | "cidr" | "macaddr" | "hstore" | "interval" | "xml"
            | "money" | "point" | "enum" | "serial" | "bigserial" | "tsvector" | "ltree"
            | "daterange" | "tsrange" | "tstzrange" | "int4range" | "int8range"
            | "virtual" | "primary_key") => {
                for c in &n {
                    self.add_column(at, &table, c.clone(), ty, &opts);
                }
            }
            _ => {}
        }
    }

    pub(super) fn remove_columns<S: Into<String>>(
        &mut self,
        at: usize,
        table: &str,
        columns: impl IntoIterator<Item = S>,
        what: &'static str,
    ) {
        for column in columns {
            self.push(
                at,
                Op::RemoveColumn { table: table.to_string(), column: column.into(), what },
            );
        }
    }

    pub(super) fn index(&mut self, at: usize, table: String, opts: &[(String, &Node)]) {
        let concurrently = concurrently(opts);
        if concurrently && self.in_transaction {
            self.push(at, Op::ConcurrentlyInTransaction);
        }
        self.push(at, Op::AddIndex { table, concurrently, unique: truthy(opt(opts, "unique")) });
    }

    pub(super) fn drop_index(&mut self, at: usize, opts: &[(String, &Node)]) {
        let concurrently = concurrently(opts);
        if concurrently && self.in_transaction {
            self.push(at, Op::ConcurrentlyInTransaction);
        }
        self.push(at, Op::DropIndex { concurrently });
    }

    pub(super) fn reference(
        &mut self,
        at: usize,
        table: &str,
        reference: &str,
        opts: &[(String, &Node)],
    ) {
        let table = table.to_string();
        self.push(
            at,
            Op::AddColumn {
                table: table.clone(),
                column: format!("{reference}_id"),
                not_null: is_false(opt(opts, "null")),
                default: Default::None,
                ty: if truthy(opt(opts, "polymorphic")) { String::new() } else { "bigint".into() },
            },
        );
        match opt(opts, "index") {
            Some(Node::False(_)) => {}
            Some(Node::Hash(h)) => {
                let inner = pairs(&h.pairs);
                let c = concurrently(&inner);
                if c && self.in_transaction {
                    self.push(at, Op::ConcurrentlyInTransaction);
                }
                self.push(
                    at,
                    Op::AddIndex {
                        table: table.clone(),
                        concurrently: c,
                        unique: truthy(opt(&inner, "unique")),
                    },
                );
            }
            _ => self.push(
                at,
                Op::AddIndex { table: table.clone(), concurrently: false, unique: false },
            ),
        }
        match opt(opts, "foreign_key") {
            None | Some(Node::False(_)) | Some(Node::Nil(_)) => {}
            Some(Node::Hash(h)) => {
                let inner = pairs(&h.pairs);
                let validated = self.validated(&inner);
                self.push(at, Op::AddForeignKey { table, validated });
            }
            Some(_) => self.push(at, Op::AddForeignKey { table, validated: true }),
        }
    }

    pub(super) fn timestamps(&mut self, at: usize, table: &str, opts: &[(String, &Node)]) {
        // Rails 5+ makes timestamps NOT NULL unless told otherwise.
        let not_null = !matches!(opt(opts, "null"), Some(Node::True(_)));
        for column in ["created_at", "updated_at"] {
            self.push(
                at,
                Op::AddColumn {
                    table: table.to_string(),
                    column: column.into(),
                    not_null,
                    default: default_of(opts),
                    ty: "timestamp".into(),
                },
            );
        }
    }
}
