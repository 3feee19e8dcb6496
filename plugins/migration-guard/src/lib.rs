//! `migration-guard`: blocks a deploy whose pending migrations would break
//! the release still serving (blue-green: old code and new schema overlap)
//! or lock its tables. Rails migrations are read with a Ruby parser, SQL
//! migrations with a SQL parser; the rules judge the whole batch.
//!
//! Settings: `mode` = `block` (default: unsafe operations block the deploy)
//! or `warn` (report only); `inline-overrides` = `allow` (default) or
//! `ignore` (`safety_assured` and `-- bluegreen:allow` count for nothing; an
//! org policy can lock this); `dialect` = `postgres` (default) or `mysql`;
//! `schema` = the path, inside a granted directory, of `db/schema.rb` or
//! `db/structure.sql` (default: `/db/schema.rb`, then `/db/structure.sql`,
//! read when granted); `sql_methods` = the application's own SQL entry
//! points, comma-separated (`DB.exec, SqlHelpers.run`), read like
//! `execute`. The host passes `migrate.lock_timeout` as
//! `bluegreen.lock-timeout`.

mod ops;
mod overrides;
mod rails;
mod rules;
mod schema;
mod sql;
mod types;

use bluegreen_plugin::migration_safety_check::{Deploy, Finding, Outcome, Severity, Verdict};
use bluegreen_plugin::migration_safety_check::{Guest, Migration};
use ops::{Located, Op, Phase};
use schema::Schema;
use sql::Sql;

struct Guard;

fn setting<'a>(d: &'a Deploy, key: &str) -> Option<&'a str> {
    d.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Whether a file is a down or undo migration by its tool's convention
/// (golang-migrate's `*.down.sql`, Flyway's `U<version>__*.sql`): it never
/// runs on a forward deploy. The host leaves them out already; the guard
/// does not count on it.
pub(crate) fn is_down_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let flyway_undo = name.strip_prefix('U').is_some_and(|rest| {
        rest.starts_with(|c: char| c.is_ascii_digit())
            && rest
                .split_once("__")
                .is_some_and(|(v, _)| v.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '_'))
    });
    name.ends_with(".down.sql") || (flyway_undo && name.ends_with(".sql"))
}

fn read(m: &Migration, dialect: Sql, entries: &[rails::Entry]) -> Vec<Located> {
    let phase = if m.phase == "contract" { Phase::Contract } else { Phase::Expand };
    if m.path.ends_with(".rb") {
        rails::read(&m.path, &m.contents, phase, dialect, entries)
    } else if m.path.ends_with(".sql") {
        sql::read(&m.path, &m.contents, phase, None, dialect)
    } else {
        vec![Located {
            op: Op::Unparsed { why: "neither a Rails (.rb) nor a SQL (.sql) migration".into() },
            file: m.path.clone(),
            line: 1,
            phase,
            in_transaction: true,
            allowed: Vec::new(),
            online: false,
        }]
    }
}

/// The schema file named by the `schema` setting (an error when it cannot
/// be read), else the first of the usual places that is granted.
fn schema(d: &Deploy, mysql: bool) -> Result<Option<Schema>, String> {
    let (paths, named) = match setting(d, "schema") {
        Some(p) => (vec![p], true),
        None => (vec!["/db/schema.rb", "/db/structure.sql"], false),
    };
    for path in paths {
        match std::fs::read_to_string(path) {
            Ok(src) if path.ends_with(".rb") => return Ok(Some(rails::schema::read(path, &src))),
            Ok(src) => return Ok(Some(Schema::from_sql(path, &src, mysql))),
            Err(e) if named => {
                return Err(format!(
                    "setting `schema`: cannot read `{path}`: {e} (grant its directory with `grant_dirs`, e.g. `db:/db`)"
                ));
            }
            Err(_) => {}
        }
    }
    Ok(None)
}

/// The settings that shape how migrations are read and judged.
struct Options {
    inline: bool,
    dialect: Sql,
    /// The application's own SQL entry points (`sql_methods`), besides the
    /// common ones the Rails reader knows.
    entries: Vec<rails::Entry>,
    lock_timeout: Option<String>,
}

impl Options {
    fn from(d: &Deploy) -> Result<Options, String> {
        let inline = match setting(d, "inline-overrides").unwrap_or("allow") {
            "allow" => true,
            "ignore" => false,
            other => {
                return Err(format!(
                    "setting `inline-overrides`: `{other}` is not `allow` or `ignore`"
                ));
            }
        };
        let dialect = match setting(d, "dialect").unwrap_or("postgres") {
            "postgres" | "postgresql" => Sql::Postgres,
            "mysql" => Sql::MySql,
            other => {
                return Err(format!("setting `dialect`: `{other}` is not `postgres` or `mysql`"));
            }
        };
        let entries = match setting(d, "sql_methods").or(setting(d, "sql-methods")) {
            Some(list) => {
                rails::Entry::parse_list(list).map_err(|e| format!("setting `sql_methods`: {e}"))?
            }
            None => Vec::new(),
        };
        let lock_timeout = setting(d, "bluegreen.lock-timeout").map(String::from);
        Ok(Options { inline, dialect, entries, lock_timeout })
    }
}

/// The findings for a batch of pending migrations, given the schema before
/// them (if any).
fn judge(pending: &[Migration], o: &Options, schema: Option<Schema>) -> Vec<rules::Finding> {
    let mysql = o.dialect == Sql::MySql;
    // A dump that already includes a pending migration (Rails commits
    // db/schema.rb after running it) shows the schema after it: it cannot
    // tell what the migration changes, so it is set aside.
    let mut schema = schema;
    let mut stale = None;
    if let Some(s) = &schema
        && let Some(m) = pending.iter().find(|m| s.includes(&m.version))
    {
        stale = Some(rules::Finding {
            level: rules::Level::Warn,
            rule: "schema-after-migrations",
            message: format!(
                "{} already includes pending migration {} ({}): it shows the schema after the migrations, so it is not used",
                s.source, m.version, m.path
            ),
            fix: Some("grant the schema of the release now serving (e.g. `git show <its commit>:db/schema.rb`)".into()),
            file: s.source.clone(),
            line: 1,
        });
        schema = None;
    }
    let ctx = rules::Context { schema, mysql, lock_timeout: o.lock_timeout.clone() };
    // The host passes only migrations that run on deploy (down and undo
    // files never do: `deploy::release::is_down_migration`); one that comes
    // anyway is noted and not read.
    let mut skipped = Vec::new();
    let mut ops: Vec<Located> = Vec::new();
    for m in pending {
        if is_down_file(&m.path) {
            skipped.push(rules::Finding {
                level: rules::Level::Info,
                rule: "down-migration",
                message: format!(
                    "`{}` is a down/undo migration by its tool's convention: it does not run on a forward deploy, so it is not judged",
                    m.path
                ),
                fix: None,
                file: m.path.clone(),
                line: 1,
            });
            continue;
        }
        ops.extend(read(m, o.dialect, &o.entries));
    }
    if !o.inline {
        ops.iter_mut().for_each(|o| o.allowed.clear());
    }
    let mut found = rules::judge(&ops, &ctx);
    found.extend(stale);
    found.extend(skipped);
    found
}

impl Guest for Guard {
    fn handle(d: Deploy, pending: Vec<Migration>) -> Result<Outcome, String> {
        let block_mode = match setting(&d, "mode").unwrap_or("block") {
            "block" => true,
            "warn" => false,
            other => return Err(format!("setting `mode`: `{other}` is not `block` or `warn`")),
        };
        let options = Options::from(&d)?;
        let schema = schema(&d, options.dialect == Sql::MySql)?;
        let found = judge(&pending, &options, schema);
        let blocking: Vec<String> = found
            .iter()
            .filter(|f| f.level == rules::Level::Block)
            .map(|f| format!("{} ({}:{})", f.rule, f.file, f.line))
            .collect();
        let findings = found
            .into_iter()
            .map(|f| Finding {
                severity: match (f.level, block_mode) {
                    (rules::Level::Block, true) => Severity::Error,
                    (rules::Level::Block | rules::Level::Warn, _) => Severity::Warning,
                    (rules::Level::Info, _) => Severity::Info,
                },
                rule: f.rule.into(),
                message: f.message,
                file: Some(f.file),
                line: Some(f.line),
                fix: f.fix,
            })
            .collect();
        let verdict = if block_mode && !blocking.is_empty() {
            Verdict::Block(format!(
                "{} migration operation(s) would break the release still serving or lock its tables: {}",
                blocking.len(),
                blocking.join(", ")
            ))
        } else {
            Verdict::Proceed
        };
        Ok(Outcome { verdict, findings })
    }
}

#[cfg(test)]
mod tests;

bluegreen_plugin::migration_safety_check::export!(Guard);
