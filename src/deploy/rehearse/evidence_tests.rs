use super::*;
use crate::deploy::rehearse::catalog::Column;
use crate::deploy::rehearse::sampler::Seen;
use crate::deploy::rehearse::scale::real_rows;
use crate::deploy::rehearse::show::{count, short};

fn table(name: &str, relfilenode: i64, cols: &[(i32, &str)]) -> Table {
    Table {
        schema: "public".into(),
        name: name.into(),
        relfilenode,
        columns: cols
            .iter()
            .map(|(n, c)| {
                (
                    *n,
                    Column {
                        name: c.to_string(),
                        type_name: "integer".into(),
                        dropped: false,
                    },
                )
            })
            .collect(),
        bytes: 8192 * 10,
        ..Table::default()
    }
}

/// `pid` 7 holds `mode` on relation 1 from `from` to `to` ms, sampled every 5 ms.
fn watch(mode: &str, from: f64, to: f64, sql: &str) -> Watch {
    let mut w = Watch::default();
    let mut t = from;
    while t <= to {
        w.see(
            t,
            &[Seen {
                pid: 7,
                now_ms: t,
                state: Some("active".into()),
                query: Some(sql.into()),
                query_start_ms: Some(from),
                state_change_ms: Some(from),
                xact_start_ms: Some(from),
                lock: Some((mode.into(), true, 1)),
            }],
        );
        t += 5.0;
    }
    w
}

struct Case {
    before: Snapshot,
    after: Snapshot,
    watch: Watch,
    copied: BTreeMap<String, u64>,
    sizes: BTreeMap<String, Size>,
}

impl Case {
    fn new(before: Table, after: Option<Table>, watch: Watch) -> Case {
        Case {
            before: [(1, before)].into(),
            after: after.into_iter().map(|t| (1, t)).collect(),
            watch,
            copied: [("products".to_string(), 1000)].into(),
            sizes: [(
                "products".to_string(),
                Size {
                    reltuples: 200_000.0,
                    bytes: 8192 * 2000,
                },
            )]
            .into(),
        }
    }

    fn judge(&self) -> Vec<Finding> {
        judge(&Inputs {
            before: &self.before,
            after: &self.after,
            watch: &self.watch,
            copied: &self.copied,
            sizes: &self.sizes,
            max_exclusive: Duration::from_millis(100),
        })
    }
}

fn rules(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.rule).collect()
}

#[test]
fn a_brief_exclusive_lock_without_a_rewrite_is_evidence_not_a_block() {
    let t = table("products", 100, &[(1, "id")]);
    let mut after = t.clone();
    after.columns.insert(
        2,
        Column {
            name: "note".into(),
            type_name: "text".into(),
            dropped: false,
        },
    );
    let w = watch(
        "AccessExclusiveLock",
        0.0,
        5.0,
        "ALTER TABLE products ADD note text",
    );
    let f = Case::new(t, Some(after), w).judge();
    assert_eq!(rules(&f), ["rehearsal-lock"]);
    assert_eq!(f[0].severity, Severity::Info);
    assert_eq!(
        f[0].message,
        "ALTER TABLE products ADD note text: ACCESS EXCLUSIVE on products held 5ms, no rewrite"
    );
}

#[test]
fn a_rewrite_blocks_and_is_extrapolated_to_the_real_rows() {
    let t = table("products", 100, &[(1, "id")]);
    let mut after = t.clone();
    after.relfilenode = 200;
    let w = watch(
        "AccessExclusiveLock",
        0.0,
        20.0,
        "ALTER TABLE products ADD r float DEFAULT random()",
    );
    let f = Case::new(t, Some(after), w).judge();
    assert_eq!(rules(&f), ["rehearsal-rewrite"]);
    assert!(
        f[0].message.contains("table products was rewritten (new relfilenode), ACCESS EXCLUSIVE held 20ms on 1,000 copied rows; at ~200,000 rows (pg_class.reltuples) ~4s"),
        "{}",
        f[0].message
    );
}

#[test]
fn a_write_lock_that_scales_past_the_limit_blocks_and_a_concurrent_one_does_not() {
    let t = table("products", 100, &[(1, "id")]);
    let mut after = t.clone();
    after.seq_scan = 1;
    after.seq_tup_read = 1000;
    let plain = watch("ShareLock", 0.0, 10.0, "CREATE INDEX i ON products (id)");
    let f = Case::new(t.clone(), Some(after.clone()), plain).judge();
    assert_eq!(rules(&f), ["rehearsal-write-lock", "rehearsal-scan"]);
    assert!(
        f[0].message
            .contains("at ~200,000 rows (pg_class.reltuples) ~2s"),
        "{}",
        f[0].message
    );
    let concurrent = watch(
        "ShareUpdateExclusiveLock",
        0.0,
        10.0,
        "CREATE INDEX CONCURRENTLY i ON products (id)",
    );
    let f = Case::new(t, Some(after), concurrent).judge();
    assert_eq!(rules(&f), ["rehearsal-lock", "rehearsal-scan"]);
    assert!(
        f[0].message.ends_with(
            "SHARE UPDATE EXCLUSIVE on products held 10ms, which blocks neither reads nor writes"
        ),
        "{}",
        f[0].message
    );
}

#[test]
fn drops_and_renames_of_tables_and_columns_block_whatever_ran_them() {
    let t = table("products", 100, &[(1, "id"), (2, "legacy"), (3, "name")]);
    let mut after = t.clone();
    after.columns.get_mut(&2).unwrap().dropped = true;
    after.columns.get_mut(&3).unwrap().name = "title".into();
    let f = Case::new(t.clone(), Some(after), Watch::default()).judge();
    assert_eq!(
        rules(&f),
        ["rehearsal-dropped-column", "rehearsal-renamed-column"]
    );
    assert_eq!(
        f[0].message,
        "column products.legacy was dropped; the old release still reads it"
    );
    let mut renamed = t.clone();
    renamed.name = "items".into();
    assert_eq!(
        rules(&Case::new(t.clone(), Some(renamed), Watch::default()).judge()),
        ["rehearsal-renamed-table"]
    );
    assert_eq!(
        rules(&Case::new(t, None, Watch::default()).judge()),
        ["rehearsal-dropped-table"]
    );
    // A migration tool's own table is not the old release's.
    let book = table("schema_migrations", 5, &[(1, "version")]);
    assert!(Case::new(book, None, Watch::default()).judge().is_empty());
}

#[test]
fn an_empty_copy_says_it_cannot_extrapolate() {
    let t = table("products", 100, &[(1, "id")]);
    let mut after = t.clone();
    after.relfilenode = 200;
    let mut case = Case::new(t, Some(after), Watch::default());
    case.copied.clear();
    let f = case.judge();
    assert!(
        f[0].message.contains("too brief to sample"),
        "{}",
        f[0].message
    );
    assert!(f[0].message.ends_with("measured on an empty copy of products; it has ~200,000 rows (pg_class.reltuples), so the real time is not known"), "{}", f[0].message);
    // Before its first ANALYZE the size on disk stands in for reltuples.
    assert_eq!(
        real_rows(
            Some(&Size {
                reltuples: -1.0,
                bytes: 8192 * 40
            }),
            1000,
            8192 * 10
        ),
        Some((4000.0, "its size on disk"))
    );
    assert_eq!(count(1234567), "1,234,567");
    assert_eq!(
        short(&format!("SELECT\n  {}", "x".repeat(100)))
            .chars()
            .count(),
        81
    );
}

/// Rails runs catalog queries inside the migration's transaction: the lock
/// is named after the statement of that transaction that names the table.
#[test]
fn a_lock_is_named_after_the_statement_that_names_its_table() {
    let t = table("products", 100, &[(1, "id")]);
    let mut w = Watch::default();
    let seen = |now: f64, q: &str, start: f64, lock: bool| Seen {
        pid: 7,
        now_ms: now,
        state: Some("active".into()),
        query: Some(q.into()),
        query_start_ms: Some(start),
        state_change_ms: Some(start),
        xact_start_ms: Some(10.0),
        lock: lock.then(|| ("AccessExclusiveLock".to_string(), true, 1)),
    };
    w.see(
        12.0,
        &[seen(
            12.0,
            "ALTER TABLE \"products\" ADD \"d\" text",
            11.0,
            false,
        )],
    );
    w.see(
        17.0,
        &[seen(17.0, "SELECT c.relname FROM pg_class c", 16.0, true)],
    );
    w.see(
        22.0,
        &[seen(22.0, "SELECT c.relname FROM pg_class c", 16.0, true)],
    );
    let f = Case::new(t.clone(), Some(t), w).judge();
    assert_eq!(
        f[0].message,
        "ALTER TABLE \"products\" ADD \"d\" text: ACCESS EXCLUSIVE on products held 5ms, no rewrite"
    );
}
