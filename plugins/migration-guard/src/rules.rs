//! The rules: which operations break the release still serving, or take a
//! lock that stops it, while a blue-green deploy runs. The pending batch is
//! judged as one unit: a table created earlier in the batch has no readers
//! yet, a column added earlier in the batch was never seen by old code, and
//! a check validated earlier makes `SET NOT NULL` a metadata change.
//!
//! Mapped to strong_migrations' checks and squawk's rules in the README;
//! kept what bites during a blue-green deploy (old code serving, one shared
//! database).

mod check;

use crate::ops::{Located, Phase};
use crate::schema::Schema;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Block,
    Warn,
    Info,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub level: Level,
    pub rule: &'static str,
    pub message: String,
    pub fix: Option<String>,
    pub file: String,
    pub line: u32,
}

/// What the guard knows beyond the migrations themselves.
#[derive(Default)]
pub struct Context {
    pub schema: Option<Schema>,
    /// MySQL 8 (InnoDB online DDL) instead of PostgreSQL.
    pub mysql: bool,
    /// The deploy's `migrate.lock_timeout`, as the host passes it.
    pub lock_timeout: Option<String>,
}

/// Rules whose harm is to the old code: allowed (and reported) in the
/// contract phase, when the old code no longer runs. Lock rules always apply.
const BREAKS_OLD_CODE: &[&str] = &[
    "drop-table",
    "rename-table",
    "remove-column",
    "rename-column",
    "change-column-type",
    "truncate",
    "delete-without-where",
    "update-without-where",
    "change-default",
    "drop-object",
    "rename-enum-value",
    "rename-object",
    "add-json-column",
];

/// Rules only about locks: MySQL told `ALGORITHM=INSTANT` or `LOCK=NONE`
/// refuses the statement instead.
const LOCK_ONLY: &[&str] = &[
    "add-index-non-concurrently",
    "drop-index-non-concurrently",
    "add-foreign-key-validated",
    "add-check-validated",
    "unique-constraint",
    "add-exclusion-constraint",
    "add-column-generated-stored",
    "add-column-volatile-default",
    "add-auto-increment-column",
    "mysql-blocks-writes",
];

struct Verdict {
    rule: &'static str,
    level: Level,
    why: String,
    fix: String,
}

#[derive(Default)]
struct Batch {
    created: HashSet<String>,
    added: HashSet<(String, String)>,
    /// Columns added in this batch to a table in use, with no default: the
    /// release serving does not write them.
    no_default: HashSet<(String, String)>,
    not_valid: HashSet<(String, String)>,
    /// (table, column) → whether a `col IS NOT NULL` check on it is validated.
    checks: HashMap<(String, String), bool>,
    /// Named checks the batch states (`DeclaresCheck`): name → (table,
    /// the columns it requires NOT NULL).
    declared: HashMap<String, (String, Vec<String>)>,
    /// Files that set `lock_timeout` themselves.
    timed: HashSet<String>,
    /// Brief ACCESS EXCLUSIVE locks on existing tables: safe only when a
    /// lock timeout stops them queueing the site's queries.
    short_locks: Vec<(String, u32, String)>,
}

impl Batch {
    fn new_table(&self, t: &str) -> bool {
        self.created.contains(t)
    }
    fn new_column(&self, t: &str, c: &str) -> bool {
        self.created.contains(t) || self.added.contains(&(t.to_string(), c.to_string()))
    }
}

pub fn judge(ops: &[Located], ctx: &Context) -> Vec<Finding> {
    // A check declared anywhere in the batch (a later migration's `down`
    // restating it) tells what an earlier validation by name proves.
    let declared = ops
        .iter()
        .filter_map(|l| match &l.op {
            crate::ops::Op::DeclaresCheck { table, name, not_null } => {
                Some((name.clone(), (table.clone(), not_null.clone())))
            }
            _ => None,
        })
        .collect();
    let mut batch = Batch {
        checks: ctx.schema.as_ref().map(|s| s.checks.clone()).unwrap_or_default(),
        declared,
        ..Batch::default()
    };
    let mut out = Vec::new();
    for l in ops {
        let Some(v) = check::check(&mut batch, l, ctx) else { continue };
        if l.online && LOCK_ONLY.contains(&v.rule) {
            continue;
        }
        let mut level = v.level;
        let mut message = v.why;
        let overridden = l.allowed.iter().find(|(r, _)| r == v.rule || r == "*");
        if level == Level::Info {
            // Already judged safe: nothing to override.
        } else if let Some((_, reason)) = overridden {
            level = Level::Info;
            message = format!("allowed by an override ({reason}): {message}");
        } else if l.phase == Phase::Contract && BREAKS_OLD_CODE.contains(&v.rule) {
            level = Level::Info;
            message = format!(
                "contract phase, allowed because the old release no longer runs: {message}"
            );
        }
        out.push(Finding {
            level,
            rule: v.rule,
            message,
            fix: (level != Level::Info).then_some(v.fix),
            file: l.file.clone(),
            line: l.line,
        });
    }
    out.extend(lock_timeout(&batch, ctx));
    out
}

/// squawk's `require-timeout-settings`, tied to the deploy: brief exclusive
/// locks are safe only with a lock timeout, which bluegreen sets from
/// `migrate.lock_timeout` (or the migration sets itself).
fn lock_timeout(b: &Batch, ctx: &Context) -> Option<Finding> {
    if ctx.mysql {
        return None;
    }
    let locks: Vec<&(String, u32, String)> =
        b.short_locks.iter().filter(|(f, _, _)| !b.timed.contains(f)).collect();
    let (file, line, _) = locks.first()?;
    let list: Vec<String> = locks.iter().map(|(_, l, what)| format!("{what} (line {l})")).collect();
    let (level, message, fix) = match &ctx.lock_timeout {
        Some(t) => (
            Level::Info,
            format!(
                "migrate.lock_timeout ({t}) makes these brief ACCESS EXCLUSIVE locks safe: they give up after {t} instead of queueing the site's queries behind a long one: {}",
                list.join(", ")
            ),
            None,
        ),
        None => (
            Level::Warn,
            format!(
                "no lock timeout: if a long query holds the table, these wait for it and every query behind them waits too: {}",
                list.join(", ")
            ),
            Some("set `migrate.lock_timeout` in the deploy file, or `SET lock_timeout = '5s'` at the top of the migration".into()),
        ),
    };
    Some(Finding { level, rule: "lock-timeout", message, fix, file: file.clone(), line: *line })
}
