//! The database's current schema, when the deploy grants `db/schema.rb` or
//! `db/structure.sql`: column types (is a type change a safe widening?),
//! nullability and validated `IS NOT NULL` checks (is `SET NOT NULL` a
//! metadata change?), and which tables exist. Without it, a rule that needs
//! one of these says so instead of guessing.

use crate::ops::table_name;
use sqlparser::ast::{ColumnOption, Expr, Statement, TableConstraint};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug, Default)]
pub struct Schema {
    /// (table, column) → the declared type.
    pub columns: HashMap<(String, String), String>,
    pub not_null: HashSet<(String, String)>,
    /// (table, column) → whether its `col IS NOT NULL` check is validated.
    pub checks: HashMap<(String, String), bool>,
    pub tables: HashSet<String>,
    /// Where it was read from, for messages.
    pub source: String,
    /// Migration versions the dump says were applied: schema.rb's
    /// `define(version:)` (everything up to it) or structure.sql's
    /// `schema_migrations` rows.
    pub version: Option<u128>,
    pub applied: HashSet<u128>,
}

/// A migration version as a number: `2024_05_01_000000`, `20240501000000`,
/// Flyway's `V3`.
pub fn version_number(v: &str) -> Option<u128> {
    let digits: String = v.trim_start_matches(['V', 'v']).chars().filter(|c| *c != '_').collect();
    digits.parse().ok()
}

impl Schema {
    /// Whether the dump already includes `pending`: then it shows the
    /// schema after the migration, not before, and cannot judge it.
    pub fn includes(&self, pending: &str) -> bool {
        let Some(v) = version_number(pending) else { return false };
        self.version.is_some_and(|s| v <= s) || self.applied.contains(&v)
    }

    pub fn column(&mut self, table: &str, column: &str, ty: String, not_null: bool) {
        let key = (table.to_string(), column.to_string());
        self.tables.insert(table.to_string());
        if not_null {
            self.not_null.insert(key.clone());
        }
        self.columns.insert(key, ty);
    }

    /// `structure.sql` (pg_dump) or a MySQL dump: CREATE TABLE and ALTER
    /// TABLE ... ADD CONSTRAINT. Statements it cannot parse (functions,
    /// `SET`, `COPY`) are skipped: the schema only ever adds knowledge.
    pub fn from_sql(source: &str, src: &str, mysql: bool) -> Schema {
        let mut s = Schema { source: source.to_string(), ..Schema::default() };
        let dialect: Box<dyn Dialect> =
            if mysql { Box::new(MySqlDialect {}) } else { Box::new(PostgreSqlDialect {}) };
        for text in src.split(";\n") {
            // Rails' structure.sql ends with the versions it includes.
            if text.contains("schema_migrations") && text.trim_start().starts_with("INSERT INTO") {
                s.applied.extend(text.split('\'').skip(1).step_by(2).filter_map(version_number));
                continue;
            }
            let head = text.trim_start().to_ascii_uppercase();
            let head = head
                .lines()
                .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
                .unwrap_or_default();
            if !(head.starts_with("CREATE TABLE") || head.starts_with("ALTER TABLE")) {
                continue;
            }
            let Ok(parsed) = sqlparser::parser::Parser::parse_sql(&*dialect, text) else {
                continue;
            };
            for st in parsed {
                s.statement(&st);
            }
        }
        s
    }

    fn statement(&mut self, st: &Statement) {
        match st {
            Statement::CreateTable(ct) => {
                let table = table_name(&ct.name.to_string());
                self.tables.insert(table.clone());
                for c in &ct.columns {
                    let not_null = c.options.iter().any(|o| {
                        matches!(o.option, ColumnOption::NotNull | ColumnOption::PrimaryKey(_))
                    });
                    self.column(&table, &c.name.value, c.data_type.to_string(), not_null);
                }
                for con in &ct.constraints {
                    self.constraint(&table, con, true);
                }
            }
            Statement::AlterTable(at) => {
                let table = table_name(&at.name.to_string());
                for op in &at.operations {
                    if let sqlparser::ast::AlterTableOperation::AddConstraint {
                        constraint,
                        not_valid,
                    } = op
                    {
                        self.constraint(&table, constraint, !not_valid);
                    }
                }
            }
            _ => {}
        }
    }

    fn constraint(&mut self, table: &str, con: &TableConstraint, validated: bool) {
        if let TableConstraint::Check(c) = con {
            for col in not_null_columns(&c.expr) {
                self.checks.insert((table.to_string(), col), validated);
            }
        }
    }
}

/// The columns a check requires NOT NULL: `col IS NOT NULL`, or several
/// joined by AND (pg_dump doubles the parentheses). Empty when the check
/// says anything else (then it proves nothing about NULLs).
pub fn not_null_columns(e: &Expr) -> Vec<String> {
    fn each(e: &Expr, out: &mut Vec<String>) -> bool {
        match e {
            Expr::Nested(inner) => each(inner, out),
            Expr::BinaryOp { left, op: sqlparser::ast::BinaryOperator::And, right } => {
                each(left, out) && each(right, out)
            }
            Expr::IsNotNull(inner) => {
                let mut inner = &**inner;
                while let Expr::Nested(n) = inner {
                    inner = n;
                }
                let col = match inner {
                    Expr::Identifier(i) => i.value.to_ascii_lowercase(),
                    Expr::CompoundIdentifier(v) => match v.last() {
                        Some(i) => i.value.to_ascii_lowercase(),
                        None => return false,
                    },
                    _ => return false,
                };
                out.push(col);
                true
            }
            _ => false,
        }
    }
    let mut out = Vec::new();
    if each(e, &mut out) { out } else { Vec::new() }
}

/// The same, from the text of a check (Rails' `add_check_constraint`).
pub fn not_null_columns_of(text: &str) -> Vec<String> {
    let Ok(mut p) = sqlparser::parser::Parser::new(&PostgreSqlDialect {}).try_with_sql(text) else {
        return Vec::new();
    };
    p.parse_expr().map(|e| not_null_columns(&e)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_dump_structure_gives_types_nullability_and_checks() {
        let src = "SET statement_timeout = 0;\n\
            CREATE TABLE public.users (\n    id bigint NOT NULL,\n    email character varying(50),\n    \
            CONSTRAINT email_present CHECK ((email IS NOT NULL))\n);\n\
            ALTER TABLE public.users\n    ADD CONSTRAINT name_present CHECK ((name IS NOT NULL)) NOT VALID;\n";
        let s = Schema::from_sql("db/structure.sql", src, false);
        let k = |c: &str| ("users".to_string(), c.to_string());
        assert_eq!(s.columns.get(&k("email")).map(String::as_str), Some("CHARACTER VARYING(50)"));
        assert!(s.not_null.contains(&k("id")));
        assert_eq!(s.checks.get(&k("email")), Some(&true));
        assert_eq!(s.checks.get(&k("name")), Some(&false));
    }

    #[test]
    fn check_text_names_its_column() {
        assert_eq!(not_null_columns_of("email IS NOT NULL"), ["email"]);
        assert_eq!(not_null_columns_of("(\"users\".\"email\" IS NOT NULL)"), ["email"]);
        assert_eq!(
            not_null_columns_of("issued_on IS NOT NULL AND (due_on IS NOT NULL)"),
            ["issued_on", "due_on"]
        );
        assert!(not_null_columns_of("price > 0").is_empty());
        assert!(not_null_columns_of("a IS NOT NULL OR b IS NOT NULL").is_empty());
        assert!(not_null_columns_of("a IS NOT NULL AND price > 0").is_empty());
    }
}
