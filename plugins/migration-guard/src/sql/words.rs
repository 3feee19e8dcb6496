//! Statements read from their words: objects other than tables, columns
//! and indexes, maintenance, session settings, and what the parser does not
//! know but whose meaning is plain.

use super::Sql;
use crate::ops::{Op, table_name};
use sqlparser::tokenizer::{Token, TokenWithSpan};

pub(super) fn upper(t: &TokenWithSpan) -> String {
    match &t.token {
        Token::Word(w) => w.value.to_ascii_uppercase(),
        other => other.to_string(),
    }
}

/// Statements on objects other than tables, columns and indexes,
/// maintenance and settings (the parser knows only some of them).
pub(super) fn objects(words: &[&TokenWithSpan], sql: Sql, fk_checks: &mut bool) -> Option<Vec<Op>> {
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
    let maintenance = |lock: &'static str, table: Option<String>| {
        Some(vec![Op::Maintenance { what: head.join(" "), lock, table }])
    };
    let mysql = sql == Sql::MySql;
    // `SET [SESSION|LOCAL] name ...`: the setting's name.
    let setting = match w.as_slice() {
        ["SET", "SESSION" | "LOCAL" | "@@SESSION", ".", name, ..] => Some(*name),
        ["SET", "SESSION" | "LOCAL", name, ..] | ["SET", name, ..] => Some(*name),
        _ => None,
    };
    match setting.map(|n| n.trim_start_matches("@@")) {
        Some("LOCK_TIMEOUT") => return Some(vec![Op::LockTimeout]),
        // A MySQL user variable: no effect on the schema by itself.
        Some(n) if n.starts_with('@') => return Some(Vec::new()),
        Some("FOREIGN_KEY_CHECKS") => {
            *fk_checks = !matches!(w.last(), Some(&"0" | &"OFF" | &"FALSE"));
            return Some(Vec::new());
        }
        _ => {}
    }
    match w.as_slice() {
        ["DROP", "VIEW", ..] => drop("view", 2),
        ["DROP", "MATERIALIZED", "VIEW", ..] => drop("materialized view", 3),
        ["DROP", "SEQUENCE", ..] => drop("sequence", 2),
        ["DROP", "TYPE", ..] | ["DROP", "DOMAIN", ..] => drop("type", 2),
        ["DROP", "FUNCTION", ..] | ["DROP", "PROCEDURE", ..] => drop("function", 2),
        ["DROP", "TRIGGER", ..] => drop("trigger", 2),
        ["DROP", "SCHEMA", ..] | ["DROP", "DATABASE", ..] => drop("schema", 2),
        ["DROP", "EVENT", ..] => drop("event", 2),
        [
            "ALTER",
            kind @ ("SCHEMA" | "VIEW" | "SEQUENCE" | "FUNCTION" | "PROCEDURE" | "TYPE" | "DOMAIN"),
            ..,
        ] if w.contains(&"RENAME") && !w.contains(&"VALUE") => {
            let kind = match *kind {
                "SCHEMA" => "schema",
                "VIEW" => "view",
                "SEQUENCE" => "sequence",
                "FUNCTION" | "PROCEDURE" => "function",
                _ => "type",
            };
            Some(vec![Op::RenameObject { kind, name: name_after(2) }])
        }
        ["ALTER", "MATERIALIZED", "VIEW", ..] if w.contains(&"RENAME") => {
            Some(vec![Op::RenameObject { kind: "materialized view", name: name_after(3) }])
        }
        // A detached partition's rows leave the table the old release reads.
        ["ALTER", "TABLE", ..] if w.windows(2).any(|p| p == ["DETACH", "PARTITION"]) => {
            let at = w.iter().position(|x| *x == "PARTITION").unwrap_or(0);
            Some(vec![Op::DropObject { kind: "partition (detached)", name: name_after(at + 1) }])
        }
        // A domain's new constraint is checked against every column using it.
        ["ALTER", "DOMAIN", _, "ADD", ..] => {
            let validated = !w.windows(2).any(|p| p == ["NOT", "VALID"]);
            Some(vec![Op::AddCheck { table: name_after(2), validated, not_null: Vec::new() }])
        }
        // PL/pgSQL runs what it builds with EXECUTE; the rest of its body is
        // not SQL this reader checks.
        ["DO", ..] => {
            let body = words.iter().skip(1).map(|t| t.token.to_string().to_ascii_uppercase());
            let dynamic = body.clone().any(|b| {
                b.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').any(|x| x == "EXECUTE")
            });
            Some(vec![if dynamic {
                Op::Dynamic { why: "a DO block runs SQL it builds with EXECUTE".into() }
            } else {
                Op::Unparsed {
                    why: "a DO block runs PL/pgSQL, which the guard does not read".into(),
                }
            }])
        }
        // Creating a view reads its tables; renaming an index is metadata.
        // A new materialized view has no readers yet: an index on it or its
        // first refresh blocks no one (unless it may exist already).
        ["CREATE", "MATERIALIZED", "VIEW", "IF", "NOT", "EXISTS", ..] => Some(Vec::new()),
        ["CREATE", "MATERIALIZED", "VIEW", ..] => {
            Some(vec![Op::CreateTable { table: table_name(&name_after(3)), force: false }])
        }
        ["ALTER", "INDEX", ..] if w.contains(&"RENAME") => Some(Vec::new()),
        ["ALTER", "TYPE", _, "RENAME", "VALUE", ..] => {
            Some(vec![Op::RenameEnumValue { ty: name_after(2) }])
        }
        // MySQL: a first FULLTEXT or SPATIAL index rebuilds the table with
        // writes stopped.
        ["CREATE", "FULLTEXT" | "SPATIAL", ..] if mysql => {
            let table = word_after(words, "ON");
            Some(vec![Op::BlocksWrites { table: Some(table_name(&table)), what: head.join(" ") }])
        }
        // MySQL builds SQL at run time with PREPARE ... FROM @var.
        ["PREPARE", ..] => {
            Some(vec![Op::Dynamic { why: "`PREPARE` runs SQL built in a variable".into() }])
        }
        ["EXECUTE", ..] | ["DEALLOCATE", ..] if mysql => Some(Vec::new()),
        // A trigger, procedure or function body runs later, on the old
        // release's writes too, but changes no schema now.
        ["CREATE", ..]
            if w.iter()
                .take_while(|x| !matches!(**x, "BEGIN" | "AS" | "ON" | "("))
                .any(|x| matches!(*x, "TRIGGER" | "PROCEDURE" | "FUNCTION" | "EVENT"))
                && mysql =>
        {
            Some(Vec::new())
        }
        // MySQL: an index built or dropped with an explicit COPY or blocking
        // LOCK copies the table or stops its writes.
        ["CREATE" | "DROP", ..] if mysql && w.iter().take(4).any(|x| *x == "INDEX") => {
            let what = mysql_blocking(&w)?;
            let table = word_after(words, "ON");
            Some(vec![Op::BlocksWrites {
                table: Some(table_name(&table)),
                what: format!("{} ... {what}", head.join(" ")),
            }])
        }
        ["VACUUM", "FULL", ..] | ["VACUUM", "(", "FULL", ..] => {
            maintenance("an ACCESS EXCLUSIVE lock (a full rewrite)", None)
        }
        ["CLUSTER", ..] => maintenance("an ACCESS EXCLUSIVE lock (a full rewrite)", None),
        ["REINDEX", ..] if !concurrently => {
            maintenance("a lock that blocks writes (and reads using the index)", None)
        }
        ["REFRESH", "MATERIALIZED", "VIEW", ..] if !concurrently => {
            maintenance("an ACCESS EXCLUSIVE lock on the view", Some(table_name(&name_after(3))))
        }
        // Plain VACUUM and ANALYZE, the concurrent REINDEX, and MySQL's
        // online OPTIMIZE/ANALYZE TABLE let reads and writes go on:
        // understood, nothing to report.
        ["VACUUM", ..] | ["ANALYZE", ..] | ["REINDEX", ..] | ["OPTIMIZE", "TABLE", ..] => {
            Some(Vec::new())
        }
        _ => None,
    }
}

/// MySQL's explicit `ALGORITHM=COPY`, `LOCK=SHARED` or `LOCK=EXCLUSIVE`
/// (with or without spaces around `=`, or `ALGORITHM COPY`), as written.
pub(super) fn mysql_blocking(w: &[&str]) -> Option<String> {
    w.iter().enumerate().find_map(|(i, x)| {
        let value = match w.get(i + 1) {
            Some(&"=") => w.get(i + 2),
            other => other,
        };
        match (*x, value.copied()) {
            ("ALGORITHM", Some("COPY")) => Some("ALGORITHM=COPY".to_string()),
            ("LOCK", Some(l @ ("SHARED" | "EXCLUSIVE"))) => Some(format!("LOCK={l}")),
            _ => None,
        }
    })
}

/// Statements the parser does not know but whose meaning is plain from
/// their words: `DROP INDEX CONCURRENTLY`; the safe way to add a unique
/// constraint, `ADD CONSTRAINT ... UNIQUE USING INDEX` (no lock held while
/// an index builds: it exists already); MySQL's character set conversion.
pub(super) fn fallback(words: &[&TokenWithSpan], sql: Sql) -> Option<Vec<Op>> {
    let all: Vec<String> = words.iter().map(|t| upper(t)).collect();
    if all.starts_with(&["DROP".into(), "INDEX".into(), "CONCURRENTLY".into()]) {
        return Some(vec![Op::DropIndex { concurrently: true }]);
    }
    let alter = all.starts_with(&["ALTER".into(), "TABLE".into()]);
    let w: Vec<&str> = all.iter().map(String::as_str).collect();
    // MySQL: whatever else it does, an explicit COPY or blocking LOCK copies
    // the table or stops its writes.
    if sql == Sql::MySql
        && alter
        && let Some(what) = mysql_blocking(&w)
    {
        let table = words.get(2).map(|t| table_name(&t.token.to_string()));
        let name = table.clone().unwrap_or_default();
        return Some(vec![Op::BlocksWrites {
            table,
            what: format!("ALTER TABLE {name} ... {what}"),
        }]);
    }
    if sql == Sql::MySql && alter && all.windows(2).any(|w| w == ["CONVERT", "TO"]) {
        let head: Vec<String> = words.iter().take(8).map(|t| t.token.to_string()).collect();
        let table = words.get(2).map(|t| table_name(&t.token.to_string()));
        return Some(vec![Op::BlocksWrites { table, what: head.join(" ") }]);
    }
    // Storage parameters (`SET (fillfactor = 70)`) and a column's
    // statistics target or storage: locks that let reads and writes go on.
    let column_setting = all.windows(2).any(|w| {
        w[0] == "SET" && matches!(w[1].as_str(), "STATISTICS" | "STORAGE" | "COMPRESSION")
    });
    if alter && ((all.len() > 4 && all[3] == "SET" && all[4] == "(") || column_setting) {
        return Some(Vec::new());
    }
    // `RENAME INDEX a TO b` (MySQL): metadata only.
    if alter && all.len() > 4 && all[3] == "RENAME" && matches!(all[4].as_str(), "INDEX" | "KEY") {
        return Some(Vec::new());
    }
    let using_index =
        all.windows(3).any(|w| w == ["UNIQUE", "USING", "INDEX"] || w == ["KEY", "USING", "INDEX"]);
    (alter && using_index).then(Vec::new)
}

/// The table after `FROM` (for DELETE).
pub(super) fn word_after(words: &[&TokenWithSpan], keyword: &str) -> String {
    words
        .iter()
        .position(|t| upper(t) == keyword)
        .and_then(|i| words.get(i + 1))
        .map(|t| t.token.to_string())
        .unwrap_or_default()
}
