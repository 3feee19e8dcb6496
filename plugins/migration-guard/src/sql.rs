//! SQL migrations, read with a real SQL parser (sqlparser, Postgres
//! dialect). Its tokenizer keeps comments, string literals and quoted
//! identifiers apart, so statements are split on real semicolons and
//! override comments are found (`overrides.rs`); each statement is
//! then parsed on its own, so one it cannot parse is reported (never
//! silently safe) and the rest are still checked. Explicit BEGIN/COMMIT
//! track the transaction the statements run in.

use crate::ops::{Default, Located, Op, Phase, table_name};
use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnOption, Expr, GeneratedExpressionMode,
    ObjectType, RenameTableNameKind, Statement, TableConstraint,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

/// Functions whose value differs per row: as a column default they force a
/// table rewrite.
const VOLATILE: &[&str] =
    &["random", "gen_random_uuid", "uuid_generate_v4", "clock_timestamp", "timeofday", "nextval"];

/// Reads `src`. `in_transaction`: whether the statements run inside a
/// transaction; `None` (a whole file) decides as the tools do: a file of one
/// statement runs alone, several run in one transaction (Flyway and sqlx
/// wrap each file; golang-migrate sends it as one multi-statement query,
/// which Postgres runs as one implicit transaction), and sqlx's
/// `-- no-transaction` comment at the top turns that off.
pub fn read(file: &str, src: &str, phase: Phase, in_transaction: Option<bool>) -> Vec<Located> {
    let dialect = PostgreSqlDialect {};
    let mut out = Vec::new();
    let push = |out: &mut Vec<Located>, op, line: u64, in_tx, allowed: &[(String, String)]| {
        out.push(Located {
            op,
            file: file.to_string(),
            line: line.max(1) as u32,
            phase,
            in_transaction: in_tx,
            allowed: allowed.to_vec(),
        })
    };
    let tokens = match Tokenizer::new(&dialect, src).tokenize_with_location() {
        Ok(t) => t,
        Err(e) => {
            let why = format!("SQL tokens: {e}");
            push(
                &mut out,
                Op::Unparsed { why },
                e.location.line,
                in_transaction.unwrap_or(true),
                &[],
            );
            return out;
        }
    };
    let statements = split(&tokens)
        .into_iter()
        .filter(|s| s.iter().any(|t| !matches!(t.token, Token::Whitespace(_))))
        .count();
    // sqlx: a `-- no-transaction` comment before the first statement.
    let no_transaction = tokens
        .iter()
        .take_while(|t| matches!(t.token, Token::Whitespace(_)))
        .any(|t| matches!(&t.token, Token::Whitespace(Whitespace::SingleLineComment { comment, .. }) if comment.trim() == "no-transaction"));
    let mut in_tx = in_transaction.unwrap_or(statements > 1 && !no_transaction);
    let mut overrides = crate::overrides::Overrides::for_file(&tokens);
    for stmt in split(&tokens) {
        let allowed = overrides.for_statement(stmt);
        let words: Vec<&TokenWithSpan> =
            stmt.iter().filter(|t| !matches!(t.token, Token::Whitespace(_))).collect();
        let Some(first) = words.first() else { continue };
        let line = first.span.start.line;
        if let Some(ops) = objects(&words) {
            for op in ops {
                push(&mut out, op, line, in_tx, &allowed);
            }
            continue;
        }
        let text: String = stmt.iter().map(|t| t.token.to_string()).collect();
        let parsed = Parser::parse_sql(&dialect, &text);
        let statement = match parsed {
            Ok(mut v) if v.len() == 1 => v.remove(0),
            Ok(_) => continue,
            Err(e) => {
                match fallback(&words) {
                    Some(ops) => {
                        for op in ops {
                            if in_tx && op == (Op::DropIndex { concurrently: true }) {
                                push(
                                    &mut out,
                                    Op::ConcurrentlyInTransaction,
                                    line,
                                    in_tx,
                                    &allowed,
                                );
                            }
                            push(&mut out, op, line, in_tx, &allowed);
                        }
                    }
                    None => {
                        let head: String =
                            text.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
                        push(
                            &mut out,
                            Op::Unparsed { why: format!("`{head} ...`: {e}") },
                            line,
                            in_tx,
                            &allowed,
                        )
                    }
                }
                continue;
            }
        };
        match &statement {
            Statement::StartTransaction { .. } => in_tx = true,
            Statement::Commit { .. } | Statement::Rollback { .. } => in_tx = false,
            _ => {}
        }
        for op in ops(&statement, &words) {
            if matches!(op, Op::AddIndex { concurrently: true, .. }) && in_tx {
                push(&mut out, Op::ConcurrentlyInTransaction, line, in_tx, &allowed);
            }
            push(&mut out, op, line, in_tx, &allowed);
        }
    }
    out
}

/// Statements: token runs between top-level semicolons (strings, quoted
/// identifiers and dollar-quoted bodies are single tokens).
fn split(tokens: &[TokenWithSpan]) -> Vec<&[TokenWithSpan]> {
    tokens.split(|t| t.token == Token::SemiColon).filter(|s| !s.is_empty()).collect()
}

fn upper(t: &TokenWithSpan) -> String {
    match &t.token {
        Token::Word(w) => w.value.to_ascii_uppercase(),
        other => other.to_string(),
    }
}

/// Statements on objects other than tables, columns and indexes, and
/// maintenance, read from their words (the parser knows only some of them).
fn objects(words: &[&TokenWithSpan]) -> Option<Vec<Op>> {
    let all: Vec<String> = words.iter().map(|t| upper(t)).collect();
    let w: Vec<&str> = all.iter().map(String::as_str).collect();
    // The object's name: the first word after `skip` words and IF EXISTS.
    let name_after = |skip: usize| {
        let rest = &words[skip.min(words.len())..];
        let rest =
            if w.get(skip..skip + 2) == Some(&["IF", "EXISTS"][..]) { &rest[2..] } else { rest };
        rest.first().map(|t| t.token.to_string()).unwrap_or_else(|| "?".into())
    };
    let drop = |kind: &'static str, skip: usize| {
        Some(vec![Op::DropObject { kind, name: name_after(skip) }])
    };
    let concurrently = w.contains(&"CONCURRENTLY");
    let head: Vec<String> = words.iter().take(6).map(|t| t.token.to_string()).collect();
    let maintenance =
        |lock: &'static str| Some(vec![Op::Maintenance { what: head.join(" "), lock }]);
    match w.as_slice() {
        ["DROP", "VIEW", ..] => drop("view", 2),
        ["DROP", "MATERIALIZED", "VIEW", ..] => drop("materialized view", 3),
        ["DROP", "SEQUENCE", ..] => drop("sequence", 2),
        ["DROP", "TYPE", ..] | ["DROP", "DOMAIN", ..] => drop("type", 2),
        ["DROP", "FUNCTION", ..] | ["DROP", "PROCEDURE", ..] => drop("function", 2),
        ["DROP", "TRIGGER", ..] => drop("trigger", 2),
        ["DROP", "SCHEMA", ..] => drop("schema", 2),
        ["ALTER", "TYPE", _, "RENAME", "VALUE", ..] => {
            Some(vec![Op::RenameEnumValue { ty: name_after(2) }])
        }
        ["VACUUM", "FULL", ..] | ["VACUUM", "(", "FULL", ..] => {
            maintenance("an ACCESS EXCLUSIVE lock (a full rewrite)")
        }
        ["CLUSTER", ..] => maintenance("an ACCESS EXCLUSIVE lock (a full rewrite)"),
        ["REINDEX", ..] if !concurrently => {
            maintenance("a lock that blocks writes (and reads using the index)")
        }
        ["REFRESH", "MATERIALIZED", "VIEW", ..] if !concurrently => {
            maintenance("an ACCESS EXCLUSIVE lock on the view")
        }
        // Plain VACUUM and ANALYZE, and the concurrent REINDEX, let reads and
        // writes go on: understood, nothing to report.
        ["VACUUM", ..] | ["ANALYZE", ..] | ["REINDEX", ..] => Some(Vec::new()),
        _ => None,
    }
}

/// Postgres statements the parser does not know but whose meaning is plain
/// from their words: `DROP INDEX CONCURRENTLY`, and the safe way to add a
/// unique constraint, `ADD CONSTRAINT ... UNIQUE USING INDEX` (no lock held
/// while an index builds: it exists already).
fn fallback(words: &[&TokenWithSpan]) -> Option<Vec<Op>> {
    let all: Vec<String> = words.iter().map(|t| upper(t)).collect();
    if all.starts_with(&["DROP".into(), "INDEX".into(), "CONCURRENTLY".into()]) {
        return Some(vec![Op::DropIndex { concurrently: true }]);
    }
    let using_index =
        all.windows(3).any(|w| w == ["UNIQUE", "USING", "INDEX"] || w == ["KEY", "USING", "INDEX"]);
    (all.starts_with(&["ALTER".into(), "TABLE".into()]) && using_index).then(Vec::new)
}

/// The table after `FROM` (for DELETE).
fn word_after(words: &[&TokenWithSpan], keyword: &str) -> String {
    words
        .iter()
        .position(|t| upper(t) == keyword)
        .and_then(|i| words.get(i + 1))
        .map(|t| t.token.to_string())
        .unwrap_or_default()
}

fn default_kind(expr: &Expr) -> Default {
    match expr {
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_lowercase();
            if VOLATILE.contains(&name.rsplit('.').next().unwrap_or(&name)) {
                Default::Volatile
            } else {
                Default::Constant
            }
        }
        _ => Default::Constant,
    }
}

fn ops(statement: &Statement, words: &[&TokenWithSpan]) -> Vec<Op> {
    let mut out = Vec::new();
    match statement {
        Statement::CreateTable(ct) => {
            out.push(Op::CreateTable { table: table_name(&ct.name.to_string()), force: false })
        }
        Statement::CreateIndex(ci) => out.push(Op::AddIndex {
            table: table_name(&ci.table_name.to_string()),
            concurrently: ci.concurrently,
            unique: ci.unique,
        }),
        Statement::Drop { object_type: ObjectType::Table, names, .. } => {
            for n in names {
                out.push(Op::DropTable { table: table_name(&n.to_string()) });
            }
        }
        Statement::Drop { object_type: ObjectType::Index, .. } => {
            out.push(Op::DropIndex { concurrently: false })
        }
        Statement::Truncate(t) => {
            for n in &t.table_names {
                out.push(Op::Truncate { table: table_name(&n.name.to_string()) });
            }
        }
        Statement::Delete(d) if d.selection.is_none() => {
            out.push(Op::DeleteAll { table: table_name(&word_after(words, "FROM")) })
        }
        Statement::Update(u) if u.selection.is_none() => {
            out.push(Op::UpdateAll { table: table_name(&u.table.relation.to_string()) })
        }
        Statement::AlterTable(at) => {
            let table = table_name(&at.name.to_string());
            for op in &at.operations {
                alter(&table, op, &mut out);
            }
        }
        _ => {}
    }
    out
}

fn alter(table: &str, op: &AlterTableOperation, out: &mut Vec<Op>) {
    let t = || table.to_string();
    match op {
        AlterTableOperation::AddColumn { column_def, .. } => {
            let mut not_null = false;
            let mut default = Default::None;
            let column = column_def.name.value.clone();
            let mut extra = Vec::new();
            for o in &column_def.options {
                match &o.option {
                    ColumnOption::NotNull => not_null = true,
                    ColumnOption::Default(e) => default = default_kind(e),
                    // An expression is stored unless it says VIRTUAL
                    // (Postgres before 18 knows only STORED); an identity
                    // fills every row from a sequence.
                    ColumnOption::Generated { generation_expr, generation_expr_mode, .. } => {
                        default = match (generation_expr, generation_expr_mode) {
                            (Some(_), Some(GeneratedExpressionMode::Virtual)) => default,
                            (Some(_), _) => Default::Stored,
                            (None, _) => Default::Volatile,
                        }
                    }
                    ColumnOption::ForeignKey(_) => {
                        extra.push(Op::AddForeignKey { table: t(), validated: true })
                    }
                    ColumnOption::Unique(_) | ColumnOption::PrimaryKey(_) => {
                        extra.push(Op::AddUnique { table: t() })
                    }
                    ColumnOption::Check(_) => {
                        extra.push(Op::AddCheck { table: t(), validated: true })
                    }
                    _ => {}
                }
            }
            out.push(Op::AddColumn { table: t(), column, not_null, default });
            out.extend(extra);
        }
        AlterTableOperation::DropColumn { column_names, .. } => {
            for c in column_names {
                out.push(Op::RemoveColumn { table: t(), column: c.value.clone(), what: "column" });
            }
        }
        AlterTableOperation::RenameColumn { old_column_name, new_column_name } => {
            out.push(Op::RenameColumn {
                table: t(),
                from: old_column_name.value.clone(),
                to: new_column_name.value.clone(),
            })
        }
        AlterTableOperation::RenameTable { table_name: to } => {
            let to = match to {
                RenameTableNameKind::As(n) | RenameTableNameKind::To(n) => n.to_string(),
            };
            out.push(Op::RenameTable { from: t(), to: table_name(&to) })
        }
        AlterTableOperation::AlterColumn { column_name, op } => {
            let column = column_name.value.clone();
            match op {
                AlterColumnOperation::SetNotNull => out.push(Op::SetNotNull { table: t(), column }),
                AlterColumnOperation::SetDefault { .. } => {
                    out.push(Op::ChangeDefault { table: t(), column })
                }
                AlterColumnOperation::SetDataType { .. } => {
                    out.push(Op::ChangeType { table: t(), column })
                }
                _ => {}
            }
        }
        AlterTableOperation::ChangeColumn { old_name, .. } => {
            out.push(Op::ChangeType { table: t(), column: old_name.value.clone() })
        }
        AlterTableOperation::ModifyColumn { col_name, .. } => {
            out.push(Op::ChangeType { table: t(), column: col_name.value.clone() })
        }
        AlterTableOperation::AddConstraint { constraint, not_valid } => match constraint {
            TableConstraint::ForeignKey(_) => {
                out.push(Op::AddForeignKey { table: t(), validated: !not_valid })
            }
            TableConstraint::Check(_) => {
                out.push(Op::AddCheck { table: t(), validated: !not_valid })
            }
            TableConstraint::Unique(_) | TableConstraint::PrimaryKey(_) => {
                out.push(Op::AddUnique { table: t() })
            }
            _ => {}
        },
        AlterTableOperation::ValidateConstraint { .. } => out.push(Op::Validate { table: t() }),
        _ => {}
    }
}
