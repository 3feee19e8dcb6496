//! The scratch database: made on the shared database's own server (same
//! version, same extensions, same settings), from its schema
//! (`pg_dump --schema-only` piped into `psql`), with a bounded sample of
//! rows per table, and dropped again whatever happens.
//!
//! The migration tools' bookkeeping tables (`schema_migrations` and the
//! like) are copied whole: without their rows the tool would think nothing
//! ran yet and replay every migration from the first. Sampled rows go in
//! with `session_replication_role = replica`, so foreign keys to rows not in
//! the sample do not refuse them.

use super::target::Database;
use futures_util::{SinkExt, TryStreamExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

/// Tables migration tools keep their state in, copied whole.
pub const BOOKKEEPING: &[&str] = &[
    "schema_migrations",
    "ar_internal_metadata",
    "flyway_schema_history",
    "goose_db_version",
    "knex_migrations",
    "knex_migrations_lock",
    "_sqlx_migrations",
    "alembic_version",
    "django_migrations",
    "gorp_migrations",
    "__diesel_schema_migrations",
    "schema_version",
];

/// Connects to `db` on the server; the connection runs on its own task.
pub async fn connect(server: &Database, db: &str) -> anyhow::Result<Client> {
    let (client, conn) = server.config(db).connect(NoTls).await.map_err(|e| {
        anyhow::anyhow!("connecting to {db} on {}:{}: {e}", server.host, server.port)
    })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Creates `scratch` (dropping a leftover of the same name first).
pub async fn create(server: &Database, scratch: &str) -> anyhow::Result<()> {
    let admin = connect(server, &server.name).await?;
    drop_with(&admin, scratch).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {}", ident(scratch)))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "the credentials of {} may not create a database ({e}); the rehearsal needs \
                 CREATEDB on that server",
                server.source
            )
        })
}

/// Drops `scratch` if it exists, ending any session still on it (the
/// rehearsal's task, when the deploy was stopped under it).
pub async fn drop(server: &Database, scratch: &str) -> anyhow::Result<()> {
    let admin = connect(server, &server.name).await?;
    drop_with(&admin, scratch).await
}

async fn drop_with(admin: &Client, scratch: &str) -> anyhow::Result<()> {
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            ident(scratch)
        ))
        .await
        .map_err(|e| anyhow::anyhow!("dropping the scratch database {scratch}: {e}"))
}

/// A PostgreSQL client program: the newest installed server version's
/// (a dump needs a `pg_dump` at least as new as the server), else `PATH`'s.
fn program(name: &str) -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let p = e.path().join("bin").join(name);
            p.is_file().then_some((v, p))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p).unwrap_or_else(|| name.into())
}

/// `pg_dump --schema-only` of the shared database into `scratch`; how long
/// it took.
pub async fn restore_schema(server: &Database, scratch: &str) -> anyhow::Result<Duration> {
    let server = server.clone();
    let scratch = scratch.to_string();
    tokio::task::spawn_blocking(move || pipe_schema(&server, &scratch)).await?
}

fn pipe_schema(server: &Database, scratch: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let (dump_bin, psql_bin) = (program("pg_dump"), program("psql"));
    let mut dump = Command::new(&dump_bin);
    dump.args(["--schema-only", "--no-owner", "--no-privileges"])
        .env_clear()
        .envs(server.pg_env(&server.name))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut dump = dump
        .spawn()
        .map_err(|e| anyhow::anyhow!("{}: {e}", dump_bin.display()))?;
    let schema = dump.stdout.take().expect("piped");
    let restore = Command::new(&psql_bin)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .env_clear()
        .envs(server.pg_env(scratch))
        .stdin(Stdio::from(schema))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| anyhow::anyhow!("{}: {e}", psql_bin.display()));
    let dumped = dump.wait_with_output()?;
    if !dumped.status.success() {
        anyhow::bail!(
            "pg_dump --schema-only of {} exited with {}: {}",
            server.name,
            dumped.status,
            String::from_utf8_lossy(&dumped.stderr).trim()
        );
    }
    let restore = restore?;
    if !restore.status.success() {
        anyhow::bail!(
            "restoring the schema of {} into {scratch} with psql exited with {}: {}",
            server.name,
            restore.status,
            String::from_utf8_lossy(&restore.stderr).trim()
        );
    }
    Ok(t.elapsed())
}

/// Rows copied into the scratch database, by qualified table name.
#[derive(Debug, Default)]
pub struct Sampled {
    pub rows: std::collections::BTreeMap<String, u64>,
    /// Tables whose sample could not be copied, and why.
    pub skipped: Vec<String>,
    pub took: Duration,
}

/// Copies up to `limit` rows of every table (all rows of the bookkeeping
/// tables) from the shared database into `scratch`.
pub async fn copy_sample(server: &Database, scratch: &str, limit: u32) -> anyhow::Result<Sampled> {
    let t = Instant::now();
    let from = connect(server, &server.name).await?;
    let to = connect(server, scratch).await?;
    let mut sampled = Sampled::default();
    // Foreign keys to rows outside the sample, and triggers, stay quiet.
    if let Err(e) = to
        .batch_execute("SET session_replication_role = replica")
        .await
    {
        sampled
            .skipped
            .push(format!("foreign keys stay checked ({e})"));
    }
    let tables = from
        .query(
            "SELECT n.nspname::text, c.relname::text,
                    (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                     FROM pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                       AND a.attgenerated = '')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r'
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d
                               WHERE d.objid = c.oid AND d.deptype = 'e')
             ORDER BY 1, 2",
            &[],
        )
        .await?;
    for row in tables {
        let (schema, name): (String, String) = (row.get(0), row.get(1));
        let Some(cols) = row.get::<_, Option<String>>(2) else {
            continue;
        };
        let table = format!("{}.{}", ident(&schema), ident(&name));
        let whole = BOOKKEEPING.contains(&name.as_str());
        let select = match whole {
            true => format!("SELECT {cols} FROM ONLY {table}"),
            false => format!("SELECT {cols} FROM ONLY {table} LIMIT {limit}"),
        };
        if !whole && limit == 0 {
            continue;
        }
        let shown = if schema == "public" {
            name.clone()
        } else {
            format!("{schema}.{name}")
        };
        match copy_table(&from, &to, &select, &format!("{table} ({cols})")).await {
            Ok(n) => {
                sampled.rows.insert(shown, n);
            }
            Err(e) => sampled.skipped.push(format!("{shown}: {e}")),
        }
    }
    sampled.took = t.elapsed();
    Ok(sampled)
}

async fn copy_table(from: &Client, to: &Client, select: &str, into: &str) -> anyhow::Result<u64> {
    let out = from.copy_out(&format!("COPY ({select}) TO STDOUT")).await?;
    let chunks: Vec<bytes::Bytes> = out.try_collect().await?;
    let sink = to.copy_in(&format!("COPY {into} FROM STDIN")).await?;
    futures_util::pin_mut!(sink);
    for c in chunks {
        sink.send(c).await?;
    }
    Ok(sink.finish().await?)
}
