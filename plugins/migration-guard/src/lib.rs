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
//! read when granted). The host passes `migrate.lock_timeout` as
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

fn read(m: &Migration, dialect: Sql) -> Vec<Located> {
    let phase = if m.phase == "contract" { Phase::Contract } else { Phase::Expand };
    if m.path.ends_with(".rb") {
        rails::read(&m.path, &m.contents, phase, dialect)
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

impl Guest for Guard {
    fn handle(d: Deploy, pending: Vec<Migration>) -> Result<Outcome, String> {
        let block_mode = match setting(&d, "mode").unwrap_or("block") {
            "block" => true,
            "warn" => false,
            other => return Err(format!("setting `mode`: `{other}` is not `block` or `warn`")),
        };
        let inline = match setting(&d, "inline-overrides").unwrap_or("allow") {
            "allow" => true,
            "ignore" => false,
            other => {
                return Err(format!(
                    "setting `inline-overrides`: `{other}` is not `allow` or `ignore`"
                ));
            }
        };
        let dialect = match setting(&d, "dialect").unwrap_or("postgres") {
            "postgres" | "postgresql" => Sql::Postgres,
            "mysql" => Sql::MySql,
            other => {
                return Err(format!("setting `dialect`: `{other}` is not `postgres` or `mysql`"));
            }
        };
        let mysql = dialect == Sql::MySql;
        // A dump that already includes a pending migration (Rails commits
        // db/schema.rb after running it) shows the schema after it: it
        // cannot tell what the migration changes, so it is set aside.
        let mut schema = schema(&d, mysql)?;
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
        let ctx = rules::Context {
            schema,
            mysql,
            lock_timeout: setting(&d, "bluegreen.lock-timeout").map(String::from),
        };
        // The host passes only migrations that run on deploy (down and undo
        // files never do: `deploy::release::is_down_migration`).
        let mut ops: Vec<Located> = pending.iter().flat_map(|m| read(m, dialect)).collect();
        if !inline {
            ops.iter_mut().for_each(|o| o.allowed.clear());
        }
        let mut found = rules::judge(&ops, &ctx);
        found.extend(stale);
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

bluegreen_plugin::migration_safety_check::export!(Guard);
