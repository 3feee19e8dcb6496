//! One operation against the batch so far and what the guard knows (schema,
//! dialect): the verdict, its reason and the fix.

use super::{Batch, Context, Level, Verdict};
use crate::ops::{Default, Located, Op, Phase};
use crate::types::{self, normalize};

fn block(rule: &'static str, why: String, fix: String) -> Option<Verdict> {
    Some(Verdict { rule, level: Level::Block, why, fix })
}

fn warn(rule: &'static str, why: String, fix: String) -> Option<Verdict> {
    Some(Verdict { rule, level: Level::Warn, why, fix })
}

fn info(rule: &'static str, why: String) -> Option<Verdict> {
    Some(Verdict { rule, level: Level::Info, why, fix: String::new() })
}

const NO_SCHEMA: &str = "grant db/schema.rb or db/structure.sql to the guard (see its `schema` setting) to let it decide";

pub(super) fn check(b: &mut Batch, l: &Located, ctx: &Context) -> Option<Verdict> {
    let mysql = ctx.mysql;
    let key = |t: &str, c: &str| (t.to_string(), c.to_string());
    let short = |b: &mut Batch, what: String| b.short_locks.push((l.file.clone(), l.line, what));
    match &l.op {
        Op::LockTimeout => {
            b.timed.insert(l.file.clone());
            None
        }
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
        Op::AddColumn { table, column, not_null, default, ty } => {
            b.added.insert(key(table, column));
            if b.new_table(table) {
                return None;
            }
            if *default == Default::None {
                b.no_default.insert(key(table, column));
            }
            let ty = normalize(ty);
            if *not_null && *default == Default::None && !types::is_auto_increment(&ty) {
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
                    "add a plain nullable column, backfill it in batches and keep it current from the application (or a trigger); or use a VIRTUAL generated column (MySQL, Postgres 18+)".into(),
                );
            }
            if *default == Default::AutoIncrement || types::is_auto_increment(&ty) {
                return block(
                    "add-auto-increment-column",
                    format!("an auto-incrementing column `{table}.{column}` gets a value in every existing row: a full table rewrite under an exclusive lock"),
                    "create a new table with the column and copy the rows over in batches, or add a nullable column and backfill it from a sequence in batches".into(),
                );
            }
            if *default == Default::Volatile {
                return block(
                    "add-column-volatile-default",
                    format!("a volatile default on `{table}.{column}` is evaluated for every existing row: a full table rewrite under an exclusive lock"),
                    "add the column without a default, set the default in a second statement, then backfill in batches".into(),
                );
            }
            if ty.base == "json" && !mysql {
                return block(
                    "add-json-column",
                    format!("`{table}.{column}` is `json`, which has no equality operator: the release serving fails on any `SELECT DISTINCT` over `{table}`"),
                    "use `jsonb`".into(),
                );
            }
            short(b, format!("add column {table}.{column}"));
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
        Op::ChangeType { table, column, to } if !b.new_column(table, column) => {
            let schema = ctx.schema.as_ref();
            let old = schema.and_then(|s| s.columns.get(&key(table, column)));
            let fix = format!("add a new column with the new type, write to both, backfill, switch reads, then drop `{column}` later");
            let Some(old) = old else {
                let why = match schema {
                    Some(s) => format!("`{table}.{column}` is not in {}", s.source),
                    None => NO_SCHEMA.to_string(),
                };
                return block(
                    "change-column-type",
                    format!("changing the type of `{table}.{column}` rewrites the table under an exclusive lock unless it only widens it, and its current type is unknown: {why}"),
                    fix,
                );
            };
            let Some(safe) = types::widening(&normalize(old), &normalize(to), mysql) else {
                return block(
                    "change-column-type",
                    format!("changing `{table}.{column}` from {old} to {to} rewrites the table under an exclusive lock, and the release serving reads and writes the old type"),
                    fix,
                );
            };
            info("change-column-type", format!("`{table}.{column}` {old} → {to}: {safe}"))
        }
        Op::SetNotNull { table, column } if !b.new_column(table, column) => {
            set_not_null(b, l, ctx, table, column)
        }
        // A column this batch added to a table in use, with no default: the
        // release still serving never writes it, so once it is NOT NULL
        // every insert of the old release fails.
        Op::SetNotNull { table, column }
            if l.phase == Phase::Expand && b.no_default.contains(&key(table, column)) =>
        {
            block(
                "add-column-not-null-no-default",
                format!("`{table}.{column}` was added earlier in this batch without a default and is now set NOT NULL: the release still serving does not write it, so its inserts into `{table}` fail"),
                format!("give `{column}` a default before setting NOT NULL (`change_column_default` / `SET DEFAULT`), or set NOT NULL in a later release, once every release writes it"),
            )
        }
        Op::ChangeDefault { table, column } if b.new_column(table, column) => {
            b.no_default.remove(&key(table, column));
            None
        }
        Op::ChangeDefault { table, column } if !b.new_column(table, column) => {
            short(b, format!("change default of {table}.{column}"));
            warn(
                "change-default",
                format!("changing the default of `{table}.{column}` changes what the old release's inserts store"),
                "make sure the old release sets the column itself, or change the default after it is gone".into(),
            )
        }
        Op::AddIndex { .. } | Op::DropIndex { .. } | Op::AddUnique { .. } if mysql => None,
        Op::AddIndex { table, concurrently: false, unique } if !b.new_table(table) => block(
            "add-index-non-concurrently",
            format!("building {}index on `{table}` without CONCURRENTLY blocks writes to it until the build ends", if *unique { "a unique " } else { "an " }),
            "Rails: `add_index ..., algorithm: :concurrently` with `disable_ddl_transaction!`; SQL: `CREATE INDEX CONCURRENTLY` outside a transaction".into(),
        ),
        Op::DropIndex { concurrently: false } => {
            short(b, "drop index".into());
            drop_index(ctx)
        }
        Op::AddForeignKey { table, validated } if !b.new_table(table) => {
            if *validated {
                let fix = if mysql {
                    "MySQL copies the table to add a checked foreign key: add it with `SET foreign_key_checks = 0` (in place), after checking the rows yourself"
                } else {
                    "add it with `validate: false` (SQL: NOT VALID), then validate it in a separate migration"
                };
                return block(
                    "add-foreign-key-validated",
                    format!("adding a validated foreign key on `{table}` locks both tables while every row is checked"),
                    fix.into(),
                );
            }
            b.not_valid.insert((l.file.clone(), table.clone()));
            short(b, format!("add foreign key on {table}"));
            None
        }
        Op::AddCheck { table, validated, not_null } if !b.new_table(table) => {
            for c in not_null {
                b.checks.insert(key(table, c), *validated);
            }
            if *validated {
                let fix = if mysql {
                    "MySQL copies the table to add an enforced check: add it NOT ENFORCED, or enforce it in the application"
                } else {
                    "add it with `validate: false` (SQL: NOT VALID), then validate it in a separate migration"
                };
                return block(
                    "add-check-validated",
                    format!("adding a validated check constraint on `{table}` blocks writes while every row is checked"),
                    fix.into(),
                );
            }
            b.not_valid.insert((l.file.clone(), table.clone()));
            short(b, format!("add check on {table}"));
            None
        }
        Op::AddUnique { table } if !b.new_table(table) => block(
            "unique-constraint",
            format!("adding a unique constraint to existing table `{table}` builds its index under a lock that blocks writes"),
            "create a unique index CONCURRENTLY first, then `ADD CONSTRAINT ... UNIQUE USING INDEX`".into(),
        ),
        Op::AddExclusion { table } if !b.new_table(table) => block(
            "add-exclusion-constraint",
            format!("adding an exclusion constraint to existing table `{table}` builds its index and checks every row while blocking writes; it cannot be added NOT VALID"),
            "create the table with the constraint, or add it in a maintenance window".into(),
        ),
        Op::Validate { table, name } => {
            for ((t, _), validated) in b.checks.iter_mut() {
                if t == table {
                    *validated = true;
                }
            }
            // A check added before this batch, validated by name: its
            // columns are known when the batch states the check.
            if let Some((t, columns)) = name.as_ref().and_then(|n| b.declared.get(n))
                && t == table
            {
                for c in columns.clone() {
                    b.checks.insert(key(table, &c), true);
                }
            }
            (l.in_transaction && b.not_valid.contains(&(l.file.clone(), table.clone()))).then(|| Verdict {
                rule: "validate-in-same-transaction",
                level: Level::Block,
                why: format!("validating the constraint on `{table}` in the transaction that added it holds the add's lock for the whole validation"),
                fix: "validate it in a separate migration (its own transaction)".into(),
            })
        }
        Op::Truncate { table } if !b.new_table(table) => block(
            "truncate",
            format!("truncating `{table}` deletes every row the release still serving relies on"),
            "delete the rows in a data migration the old code tolerates, or after it is gone".into(),
        ),
        Op::DeleteAll { table } if !b.new_table(table) => block(
            "delete-without-where",
            format!("deleting every row of `{table}` (no WHERE, or one true for every row) removes data the release still serving uses"),
            "add a WHERE clause, or delete in batches in a later release".into(),
        ),
        Op::UpdateAll { table, columns: Some(columns), batched: true }
            if !b.new_table(table) && !columns.is_empty() && columns.iter().all(|c| b.new_column(table, c)) =>
        {
            info(
                "update-without-where",
                format!("a batched backfill of `{table}` writes only columns added in this batch ({}): the release serving never reads them, and each batch locks only its own rows", columns.join(", ")),
            )
        }
        Op::UpdateAll { table, .. } if !b.new_table(table) => block(
            "update-without-where",
            format!("updating every row of `{table}` (no WHERE, or one true for every row) locks all of them and rewrites data the old release reads"),
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
        Op::RenameObject { kind, name } => block(
            "rename-object",
            format!("renaming {kind} `{name}` breaks the release still serving, which uses the old name"),
            format!("create the new {kind} next to `{name}` (a view can stand in for the old name), move the code over, then drop `{name}` in a later release"),
        ),
        Op::Maintenance { what, lock, table } if !table.as_ref().is_some_and(|t| b.new_table(t)) => block(
            "heavy-lock-maintenance",
            format!("`{what}` holds {lock} for its whole run: the release serving waits on every query it makes there"),
            "use the CONCURRENTLY form where there is one (REINDEX, REFRESH MATERIALIZED VIEW); run VACUUM FULL or CLUSTER (or pg_repack) in a maintenance window, not in a deploy".into(),
        ),
        Op::RenameEnumValue { ty } => block(
            "rename-enum-value",
            format!("renaming a value of type `{ty}` breaks the release still serving, which reads and writes the old value"),
            "add the new value, write it from the new release, migrate rows, then drop the old value's use in a later release".into(),
        ),
        Op::BlocksWrites { table, what } if !table.as_ref().is_some_and(|t| b.new_table(t)) => block(
            "mysql-blocks-writes",
            format!("MySQL runs `{what}` by copying the table or under a lock that stops writes: the release serving cannot write to it until it ends"),
            "write `ALGORITHM=INPLACE, LOCK=NONE` (or `ALGORITHM=INSTANT`) so MySQL refuses rather than blocks, and use an online schema change tool (gh-ost, pt-online-schema-change) for what needs a copy".into(),
        ),
        _ => None,
    }
}

/// `SET NOT NULL`: a metadata change once a validated `CHECK (col IS NOT
/// NULL)` exists (Postgres 12+), otherwise a full scan under an exclusive
/// lock, and the old release may still write NULLs.
fn set_not_null(
    b: &mut Batch,
    l: &Located,
    ctx: &Context,
    table: &str,
    column: &str,
) -> Option<Verdict> {
    let k = (table.to_string(), column.to_string());
    // Checks name their columns lower-cased.
    let lower = (table.to_string(), column.to_ascii_lowercase());
    if ctx.schema.as_ref().is_some_and(|s| s.not_null.contains(&k)) {
        return info("set-not-null", format!("`{table}.{column}` is already NOT NULL"));
    }
    if !ctx.mysql && (b.checks.get(&k) == Some(&true) || b.checks.get(&lower) == Some(&true)) {
        b.short_locks.push((l.file.clone(), l.line, format!("set not null on {table}.{column}")));
        return info(
            "set-not-null",
            format!(
                "a validated `CHECK ({column} IS NOT NULL)` lets Postgres 12+ set `{table}.{column}` NOT NULL without scanning it, and the old release already cannot write NULLs"
            ),
        );
    }
    let unknown = if ctx.mysql || ctx.schema.is_some() {
        String::new()
    } else {
        format!(" (no validated check on it in this batch; {NO_SCHEMA})")
    };
    block(
        "set-not-null",
        format!(
            "setting `{table}.{column}` NOT NULL scans the whole table under an exclusive lock, and the old release may still write NULLs{unknown}"
        ),
        format!(
            "add `CHECK ({column} IS NOT NULL) NOT VALID`, validate it in a later migration, then set NOT NULL (Postgres 12+ uses the check)"
        ),
    )
}

/// `DROP INDEX` without CONCURRENTLY: a brief exclusive lock, safe once a
/// lock timeout keeps it from queueing.
fn drop_index(ctx: &Context) -> Option<Verdict> {
    match &ctx.lock_timeout {
        Some(t) => info(
            "drop-index-non-concurrently",
            format!(
                "dropping an index without CONCURRENTLY takes a brief exclusive lock on its table; migrate.lock_timeout ({t}) stops it queueing the site's queries"
            ),
        ),
        None => warn(
            "drop-index-non-concurrently",
            "dropping an index without CONCURRENTLY takes an exclusive lock on its table".into(),
            "Rails: `remove_index ..., algorithm: :concurrently`; SQL: `DROP INDEX CONCURRENTLY`"
                .into(),
        ),
    }
}
