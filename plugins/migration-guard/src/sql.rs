//! SQL migrations, read with a real SQL parser (sqlparser, in the
//! PostgreSQL or the MySQL dialect). Its tokenizer keeps comments, string
//! literals and quoted identifiers apart, so statements are split on real
//! semicolons and override comments are found (`overrides.rs`); each
//! statement is then parsed on its own, so one it cannot parse is reported
//! (never silently safe) and the rest are still checked. Explicit
//! BEGIN/COMMIT track the transaction the statements run in.

mod alter;
mod words;

use crate::ops::{Located, Op, Phase};
use sqlparser::ast::Statement;
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

/// Which database the SQL is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sql {
    Postgres,
    MySql,
}

impl Sql {
    fn dialect(self) -> Box<dyn Dialect> {
        match self {
            Sql::Postgres => Box::new(PostgreSqlDialect {}),
            Sql::MySql => Box::new(MySqlDialect {}),
        }
    }
}

/// What one statement does, and how it runs.
struct Statements<'a> {
    file: &'a str,
    phase: Phase,
    out: Vec<Located>,
}

impl Statements<'_> {
    fn push(&mut self, op: Op, line: u64, in_tx: bool, allowed: &[(String, String)], online: bool) {
        self.out.push(Located {
            op,
            file: self.file.to_string(),
            line: line.max(1) as u32,
            phase: self.phase,
            in_transaction: in_tx,
            allowed: allowed.to_vec(),
            online,
        })
    }
}

/// Reads `src`. `in_transaction`: whether the statements run inside a
/// transaction; `None` (a whole file) decides as the tools do: a file of one
/// statement runs alone, several run in one transaction (Flyway and sqlx
/// wrap each file; golang-migrate sends it as one multi-statement query,
/// which Postgres runs as one implicit transaction), and sqlx's
/// `-- no-transaction` comment at the top turns that off.
pub fn read(
    file: &str,
    src: &str,
    phase: Phase,
    in_transaction: Option<bool>,
    sql: Sql,
) -> Vec<Located> {
    let dialect = sql.dialect();
    let mut st = Statements { file, phase, out: Vec::new() };
    let tokens = match Tokenizer::new(&*dialect, src).tokenize_with_location() {
        Ok(t) => t,
        Err(e) => {
            let why = format!("SQL tokens: {e}");
            st.push(
                Op::Unparsed { why },
                e.location.line,
                in_transaction.unwrap_or(true),
                &[],
                false,
            );
            return st.out;
        }
    };
    // goose's, dbmate's and sql-migrate's down section: not run on deploy.
    let tokens = match tokens.iter().position(|t| comment(t).is_some_and(down_marker)) {
        Some(end) => &tokens[..end],
        None => &tokens[..],
    };
    let statements = split(tokens, sql)
        .into_iter()
        .filter(|s| s.iter().any(|t| !matches!(t.token, Token::Whitespace(_))))
        .count();
    // sqlx: a `-- no-transaction` comment before the first statement;
    // goose: `-- +goose NO TRANSACTION`; dbmate: `-- migrate:up transaction:false`.
    let no_transaction = tokens
        .iter()
        .take_while(|t| matches!(t.token, Token::Whitespace(_)))
        .any(|t| comment(t) == Some("no-transaction"))
        || tokens.iter().filter_map(comment).any(|c| {
            c.eq_ignore_ascii_case("+goose NO TRANSACTION")
                || (c.starts_with("migrate:up") && c.contains("transaction:false"))
        });
    let mut in_tx = in_transaction.unwrap_or(statements > 1 && !no_transaction);
    let mut overrides = crate::overrides::Overrides::for_file(tokens);
    // MySQL: `SET foreign_key_checks = 0` lets InnoDB add foreign keys in
    // place, without checking (or copying) the rows.
    let mut fk_checks = true;
    for stmt in split(tokens, sql) {
        let allowed = overrides.for_statement(stmt);
        let words: Vec<&TokenWithSpan> =
            stmt.iter().filter(|t| !matches!(t.token, Token::Whitespace(_))).collect();
        let Some(first) = words.first() else { continue };
        let line = first.span.start.line;
        let text: String = stmt.iter().map(|t| t.token.to_string()).collect();
        let (ops, online) = match statement_ops(&words, &text, sql, &mut fk_checks, &*dialect) {
            Read::Ops(ops, online) => (ops, online),
            Read::Transaction(open) => {
                in_tx = open;
                continue;
            }
            Read::Unparsed(why) => (vec![Op::Unparsed { why }], false),
        };
        // SQL built from Ruby values the reader could not know: judged only
        // when its shape does not depend on them (an index, a drop, a
        // rename with an unknown name), else reported as dynamic.
        let known_shape = !ops.is_empty() && ops.iter().all(name_only);
        let ops = if text.contains(crate::rails::UNKNOWN) && !known_shape {
            let why = "the SQL string interpolates Ruby values".to_string();
            vec![Op::Dynamic { why }]
        } else {
            ops
        };
        for op in ops {
            let concurrent = matches!(
                op,
                Op::AddIndex { concurrently: true, .. } | Op::DropIndex { concurrently: true }
            );
            if concurrent && in_tx {
                st.push(Op::ConcurrentlyInTransaction, line, in_tx, &allowed, online);
            }
            st.push(op, line, in_tx, &allowed, online);
        }
    }
    st.out
}

/// What one statement is.
enum Read {
    Ops(Vec<Op>, bool),
    /// `BEGIN` (true) or `COMMIT`/`ROLLBACK` (false).
    Transaction(bool),
    Unparsed(String),
}

/// One statement's operations, and whether MySQL was told to refuse rather
/// than block; first from its words (objects the parser does not know),
/// then from the parser, then from the words again for what it cannot
/// parse.
fn statement_ops(
    words: &[&TokenWithSpan],
    text: &str,
    sql: Sql,
    fk_checks: &mut bool,
    dialect: &dyn Dialect,
) -> Read {
    if let Some(ops) = words::objects(words, sql, fk_checks) {
        return Read::Ops(ops, false);
    }
    let statement = match Parser::parse_sql(dialect, text) {
        Ok(mut v) if v.len() == 1 => v.remove(0),
        Ok(_) => return Read::Ops(Vec::new(), false),
        Err(e) => {
            return match words::fallback(words, sql) {
                Some(ops) => Read::Ops(ops, false),
                None => {
                    let head: String =
                        text.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
                    Read::Unparsed(format!("`{head} ...`: {e}"))
                }
            };
        }
    };
    match &statement {
        Statement::StartTransaction { .. } => return Read::Transaction(true),
        Statement::Commit { .. } | Statement::Rollback { .. } => {
            return Read::Transaction(false);
        }
        _ => {}
    }
    let (ops, online) = alter::ops(&statement, words, sql, *fk_checks);
    Read::Ops(ops, online)
}

/// Operations whose meaning does not depend on the names in them: with an
/// interpolated name they are still judged.
fn name_only(op: &Op) -> bool {
    matches!(
        op,
        Op::AddIndex { .. }
            | Op::DropIndex { .. }
            | Op::DropTable { .. }
            | Op::Truncate { .. }
            | Op::RenameTable { .. }
            | Op::RenameColumn { .. }
            | Op::RemoveColumn { .. }
            | Op::DropObject { .. }
    )
}

/// The comment that starts a file's down section: goose's `-- +goose Down`,
/// dbmate's `-- migrate:down`, sql-migrate's `-- +migrate Down`.
fn down_marker(c: &str) -> bool {
    let c: String = c.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase();
    c == "+goose down"
        || c.starts_with("+goose down ")
        || c.starts_with("migrate:down")
        || c == "+migrate down"
        || c.starts_with("+migrate down ")
}

/// Statements: token runs between top-level semicolons (strings, quoted
/// identifiers and dollar-quoted bodies are single tokens). MySQL writes a
/// trigger's or routine's body as `BEGIN ... END` with semicolons inside:
/// the body stays with its CREATE.
fn split(tokens: &[TokenWithSpan], sql: Sql) -> Vec<&[TokenWithSpan]> {
    let mut out: Vec<&[TokenWithSpan]> = Vec::new();
    let (mut start, mut depth) = (0, 0i32);
    let mut compound = false;
    for (i, t) in tokens.iter().enumerate() {
        if let Token::Word(w) = &t.token {
            let word = w.value.to_ascii_uppercase();
            let first = tokens[start..i].iter().all(|t| matches!(t.token, Token::Whitespace(_)));
            if first {
                compound = sql == Sql::MySql && word == "CREATE";
            }
            if compound && word == "BEGIN" {
                depth += 1;
            }
            // `END IF`, `END LOOP`, ... close inner blocks, not the body.
            let next = tokens[i + 1..].iter().find(|t| !matches!(t.token, Token::Whitespace(_)));
            let inner = matches!(next.map(|t| &t.token), Some(Token::Word(n)) if matches!(n.value.to_ascii_uppercase().as_str(), "IF" | "LOOP" | "WHILE" | "REPEAT" | "CASE"));
            if compound && word == "END" && !inner {
                depth -= 1;
            }
        }
        if t.token == Token::SemiColon && depth <= 0 {
            if i > start {
                out.push(&tokens[start..i]);
            }
            start = i + 1;
            depth = 0;
        }
    }
    if start < tokens.len() {
        out.push(&tokens[start..]);
    }
    out
}

/// A comment's text, trimmed.
fn comment(t: &TokenWithSpan) -> Option<&str> {
    match &t.token {
        Token::Whitespace(Whitespace::SingleLineComment { comment, .. }) => Some(comment.trim()),
        _ => None,
    }
}
