//! The rules: which operations break the release still serving, or take a
//! lock that stops it, while a blue-green deploy runs. The pending batch is
//! judged as one unit: a table created earlier in the batch has no readers
//! yet, and a column added earlier in the batch was never seen by old code.
//!
//! Compared with strong_migrations' checks and squawk's rules; kept what
//! bites during a blue-green deploy (old code serving, one shared database).

use crate::ops::{Default, Located, Op, Phase};
use std::collections::HashSet;

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
];

struct Verdict {
    rule: &'static str,
    level: Level,
    why: String,
    fix: String,
}

fn block(rule: &'static str, why: String, fix: String) -> Option<Verdict> {
    Some(Verdict { rule, level: Level::Block, why, fix })
}

fn warn(rule: &'static str, why: String, fix: String) -> Option<Verdict> {
    Some(Verdict { rule, level: Level::Warn, why, fix })
}

#[derive(Default)]
struct Batch {
    created: HashSet<String>,
    added: HashSet<(String, String)>,
    not_valid: HashSet<(String, String)>,
}

impl Batch {
    fn new_table(&self, t: &str) -> bool {
        self.created.contains(t)
    }
    fn new_column(&self, t: &str, c: &str) -> bool {
        self.created.contains(t) || self.added.contains(&(t.to_string(), c.to_string()))
    }
}

pub fn judge(ops: &[Located]) -> Vec<Finding> {
    let mut batch = Batch::default();
    let mut out = Vec::new();
    for l in ops {
        let Some(v) = check(&mut batch, l) else { continue };
        let mut level = v.level;
        let mut message = v.why;
        if let Some((_, reason)) = l.allowed.iter().find(|(r, _)| r == v.rule || r == "*") {
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
    out
}

fn check(b: &mut Batch, l: &Located) -> Option<Verdict> {
    match &l.op {
        Op::CreateTable { table, force } => {
            b.created.insert(table.clone());
            force.then(|| Verdict {
                rule: "create-table-force",
                level: Level::Block,
                why: format!("`create_table :{table}, force: true` drops the table if it exists, with its data"),
                fix: "remove `force:`; create the table only if it does not exist".into(),
            })
        }
        Op::DropTable { table } if !b.new_table(table) => block(
            "drop-table",
            format!("dropping table `{table}` breaks the release still serving, which reads and writes it"),
            format!("deploy code that no longer uses `{table}` first; drop it in a later release (or in db/post_migrate)"),
        ),
        Op::RenameTable { from, to } => {
            if b.new_table(from) {
                b.created.insert(to.clone());
                return None;
            }
            block(
                "rename-table",
                format!("renaming table `{from}` to `{to}` breaks the release still serving, which uses the old name"),
                format!("create `{to}`, write to both, backfill, move reads to `{to}`, then drop `{from}` in a later release"),
            )
        }
        Op::AddColumn { table, column, not_null, default } => {
            b.added.insert((table.clone(), column.clone()));
            if b.new_table(table) {
                return None;
            }
            if *not_null && *default == Default::None {
                return block(
                    "add-column-not-null-no-default",
                    format!("adding NOT NULL column `{table}.{column}` without a default fails on existing rows, and the old release's inserts do not set it"),
                    "add it nullable (or with a default), backfill, then add a NOT NULL check constraint NOT VALID and validate it in a later migration".into(),
                );
            }
            if *default == Default::Stored {
                return block(
                    "add-column-generated-stored",
                    format!("a stored generated column `{table}.{column}` is computed and written for every existing row: a full table rewrite under an exclusive lock"),
                    "add a plain nullable column, backfill it in batches and keep it current from the application (or a trigger); or, on Postgres 18+, use a VIRTUAL generated column".into(),
                );
            }
            if *default == Default::Volatile {
                return warn(
                    "add-column-volatile-default",
                    format!("a volatile default on `{table}.{column}` rewrites the whole table under an exclusive lock"),
                    "add the column without a default, set the default, then backfill in batches".into(),
                );
            }
            None
        }
        Op::RemoveColumn { table, column, what } if !b.new_column(table, column) => block(
            "remove-column",
            format!("removing {what} `{table}.{column}` breaks the release still serving: it still selects and writes it"),
            format!("deploy code that ignores `{column}` first (Rails: `self.ignored_columns += [\"{column}\"]`), then remove it in a later release or in db/post_migrate"),
        ),
        Op::RenameColumn { table, from, to } if !b.new_column(table, from) => block(
            "rename-column",
            format!("renaming `{table}.{from}` to `{to}` breaks the release still serving, which uses `{from}`"),
            format!("add `{to}`, write to both, backfill, move reads to `{to}`, then remove `{from}` in a later release"),
        ),
        Op::ChangeType { table, column } if !b.new_column(table, column) => block(
            "change-column-type",
            format!("changing the type of `{table}.{column}` rewrites the table under an exclusive lock and can break the old release's reads and writes"),
            format!("add a new column with the new type, write to both, backfill, switch reads, then drop `{column}` later"),
        ),
        Op::SetNotNull { table, column } if !b.new_column(table, column) => block(
            "set-not-null",
            format!("setting `{table}.{column}` NOT NULL scans the whole table under an exclusive lock, and the old release may still write NULLs"),
            format!("add `CHECK ({column} IS NOT NULL) NOT VALID`, validate it in a later migration, then set NOT NULL (Postgres 12+ uses the check)"),
        ),
        Op::ChangeDefault { table, column } if !b.new_column(table, column) => warn(
            "change-default",
            format!("changing the default of `{table}.{column}` changes what the old release's inserts store"),
            "make sure the old release sets the column itself, or change the default after it is gone".into(),
        ),
        Op::AddIndex { table, concurrently: false, unique } if !b.new_table(table) => block(
            "add-index-non-concurrently",
            format!("building {}index on `{table}` without CONCURRENTLY blocks writes to it until the build ends", if *unique { "a unique " } else { "an " }),
            "Rails: `add_index ..., algorithm: :concurrently` with `disable_ddl_transaction!`; SQL: `CREATE INDEX CONCURRENTLY` outside a transaction".into(),
        ),
        Op::DropIndex { concurrently: false } => warn(
            "drop-index-non-concurrently",
            "dropping an index without CONCURRENTLY takes an exclusive lock on its table".into(),
            "Rails: `remove_index ..., algorithm: :concurrently`; SQL: `DROP INDEX CONCURRENTLY`".into(),
        ),
        Op::AddForeignKey { table, validated } if !b.new_table(table) => {
            if *validated {
                return block(
                    "add-foreign-key-validated",
                    format!("adding a validated foreign key on `{table}` locks both tables while every row is checked"),
                    "add it with `validate: false` (SQL: NOT VALID), then validate it in a separate migration".into(),
                );
            }
            b.not_valid.insert((l.file.clone(), table.clone()));
            None
        }
        Op::AddCheck { table, validated } if !b.new_table(table) => {
            if *validated {
                return block(
                    "add-check-validated",
                    format!("adding a validated check constraint on `{table}` blocks writes while every row is checked"),
                    "add it with `validate: false` (SQL: NOT VALID), then validate it in a separate migration".into(),
                );
            }
            b.not_valid.insert((l.file.clone(), table.clone()));
            None
        }
        Op::AddUnique { table } if !b.new_table(table) => block(
            "unique-constraint",
            format!("adding a unique constraint to existing table `{table}` builds its index under a lock that blocks writes"),
            "create a unique index CONCURRENTLY first, then `ADD CONSTRAINT ... UNIQUE USING INDEX`".into(),
        ),
        Op::Validate { table }
            if l.in_transaction && b.not_valid.contains(&(l.file.clone(), table.clone())) =>
        {
            block(
                "validate-in-same-transaction",
                format!("validating the constraint on `{table}` in the transaction that added it holds the add's lock for the whole validation"),
                "validate it in a separate migration (its own transaction)".into(),
            )
        }
        Op::Truncate { table } if !b.new_table(table) => block(
            "truncate",
            format!("truncating `{table}` deletes every row the release still serving relies on"),
            "delete the rows in a data migration the old code tolerates, or after it is gone".into(),
        ),
        Op::DeleteAll { table } if !b.new_table(table) => block(
            "delete-without-where",
            format!("deleting every row of `{table}` (no WHERE) removes data the release still serving uses"),
            "add a WHERE clause, or delete in batches in a later release".into(),
        ),
        Op::UpdateAll { table } if !b.new_table(table) => block(
            "update-without-where",
            format!("updating every row of `{table}` (no WHERE) locks all of them and rewrites data the old release reads"),
            "backfill in batches with a WHERE clause, outside the schema migration".into(),
        ),
        Op::ConcurrentlyInTransaction => block(
            "concurrently-in-transaction",
            "CONCURRENTLY cannot run inside a transaction block: the migration fails halfway".into(),
            "Rails: add `disable_ddl_transaction!`; SQL: run it in its own migration without BEGIN (or the tool's no-transaction mode)".into(),
        ),
        Op::Dynamic { why } => warn(
            "dynamic-sql",
            format!("SQL built at run time cannot be checked: {why}"),
            "write the SQL as a literal, or review it by hand and add an override".into(),
        ),
        Op::Unparsed { why } => warn(
            "unparsed",
            format!("not understood, so not checked: {why}"),
            "review this statement by hand; an override records that you did".into(),
        ),
        Op::RevertOther { name } => warn(
            "revert-migration",
            format!("`revert {name}` undoes another migration, which this check cannot see"),
            "review what it drops by hand".into(),
        ),
        Op::DropObject { kind, name } => block(
            "drop-object",
            format!("dropping {kind} `{name}` breaks the release still serving if it uses it"),
            format!("deploy code that no longer uses `{name}` first; drop it in a later release (or in db/post_migrate)"),
        ),
        Op::Maintenance { what, lock } => block(
            "heavy-lock-maintenance",
            format!("`{what}` holds {lock} for its whole run: the release serving waits on every query it makes there"),
            "use the CONCURRENTLY form where there is one (REINDEX, REFRESH MATERIALIZED VIEW); run VACUUM FULL or CLUSTER (or pg_repack) in a maintenance window, not in a deploy".into(),
        ),
        Op::RenameEnumValue { ty } => block(
            "rename-enum-value",
            format!("renaming a value of type `{ty}` breaks the release still serving, which reads and writes the old value"),
            "add the new value, write it from the new release, migrate rows, then drop the old value's use in a later release".into(),
        ),
        _ => None,
    }
}
