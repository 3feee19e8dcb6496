//! What the scratch database's catalog says before and after the migration,
//! and how big the shared database's tables really are.
//!
//! Comparing the two snapshots by OID is what no reading of a migration can
//! do: a table whose `relfilenode` changed was rewritten; a table or column
//! whose OID or number is gone was dropped, one whose name changed was
//! renamed, whatever helper or dynamic SQL did it. The table statistics
//! (`pg_stat_user_tables`) add full scans and rows touched.

use std::collections::BTreeMap;
use tokio_postgres::Client;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Column {
    pub name: String,
    pub type_name: String,
    pub dropped: bool,
}

/// One table (or materialized view) of the scratch database.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub relfilenode: i64,
    /// By `attnum`.
    pub columns: BTreeMap<i32, Column>,
    pub seq_scan: i64,
    pub seq_tup_read: i64,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    /// Its main fork's bytes on disk.
    pub bytes: i64,
}

impl Table {
    pub fn qualified(&self) -> String {
        if self.schema == "public" {
            self.name.clone()
        } else {
            format!("{}.{}", self.schema, self.name)
        }
    }
}

/// The scratch database's user tables by OID.
pub type Snapshot = BTreeMap<i64, Table>;

const TABLES: &str = "
SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relfilenode::int8,
       coalesce(s.seq_scan, 0)::int8, coalesce(s.seq_tup_read, 0)::int8,
       coalesce(s.n_tup_ins, 0)::int8, coalesce(s.n_tup_upd, 0)::int8,
       coalesce(s.n_tup_del, 0)::int8, pg_relation_size(c.oid)::int8
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

const COLUMNS: &str = "
SELECT a.attrelid::int8, a.attnum::int4, a.attname::text,
       format_type(a.atttypid, a.atttypmod), a.attisdropped
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.attnum > 0 AND c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

/// The user tables now, with their columns and statistics.
pub async fn snapshot(client: &Client) -> Result<Snapshot, tokio_postgres::Error> {
    // Statistics are read once per transaction otherwise.
    client
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await?;
    let mut tables = Snapshot::new();
    for r in client.query(TABLES, &[]).await? {
        tables.insert(
            r.get(0),
            Table {
                schema: r.get(1),
                name: r.get(2),
                relfilenode: r.get(3),
                columns: BTreeMap::new(),
                seq_scan: r.get(4),
                seq_tup_read: r.get(5),
                inserted: r.get(6),
                updated: r.get(7),
                deleted: r.get(8),
                bytes: r.get(9),
            },
        );
    }
    for r in client.query(COLUMNS, &[]).await? {
        let oid: i64 = r.get(0);
        if let Some(t) = tables.get_mut(&oid) {
            t.columns.insert(
                r.get(1),
                Column {
                    name: r.get(2),
                    type_name: r.get(3),
                    dropped: r.get(4),
                },
            );
        }
    }
    Ok(tables)
}

/// A table's size in the shared database: the planner's row estimate
/// (`reltuples`, -1 before its first ANALYZE) and its bytes on disk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Size {
    pub reltuples: f64,
    pub bytes: i64,
}

/// The shared database's table sizes by qualified name (cheap: catalog
/// reads only, never a count).
pub async fn sizes(shared: &Client) -> Result<BTreeMap<String, Size>, tokio_postgres::Error> {
    let rows = shared
        .query(
            "SELECT n.nspname::text, c.relname::text, c.reltuples::float8,
                    pg_relation_size(c.oid)::int8
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'm')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%'",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let t = Table {
                schema: r.get(0),
                name: r.get(1),
                ..Table::default()
            };
            (
                t.qualified(),
                Size {
                    reltuples: r.get(2),
                    bytes: r.get(3),
                },
            )
        })
        .collect())
}
