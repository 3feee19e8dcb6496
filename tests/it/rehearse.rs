//! The migration rehearsal (`migrate.rehearse`) on the local platform's real
//! PostgreSQL: the release's own migration run against a scratch copy of the
//! bound database's schema while bluegreen samples `pg_locks`, with what it
//! saw as the verdict. A plain app whose migration is `psql` over SQL files
//! shows the locks; the Rails example shows a helper from `lib/` that no
//! reading of the migration file resolves.

use crate::deploy::{Fixture, text};
use crate::rails::{database_url, overlay, psql};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

/// Applies `migrations/*.up.sql` not yet in `schema_migrations`, each in one
/// transaction unless its first line says `-- no-transaction`.
const MIGRATE: &str = r#"set -e
run() { psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }
run -c "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY)"
for f in migrations/*.up.sql; do
  v=$(basename "$f" .up.sql)
  [ -n "$(run -At -c "SELECT 1 FROM schema_migrations WHERE version = '$v'")" ] && continue
  if head -1 "$f" | grep -q no-transaction; then run -f "$f"; else run -1 -f "$f"; fi
  run -c "INSERT INTO schema_migrations VALUES ('$v')"
done
"#;

/// The test app with `migrate.sh` over SQL files, bound to service
/// `shop-db` (created), `rehearse` as given; v1 creates `products`.
fn sql_app(rehearse: &str) -> (Fixture, String) {
    sql_app_on(false, rehearse)
}

/// As `sql_app`; with `cf`, deployed as `platform: cf` (the local platform
/// serving as Cloud Foundry).
fn sql_app_on(cf: bool, rehearse: &str) -> (Fixture, String) {
    let f = if cf {
        Fixture::new_cf("")
    } else {
        Fixture::new("")
    };
    let app = f.root.path().join("app");
    std::fs::write(app.join("migrate.sh"), MIGRATE).unwrap();
    std::fs::remove_file(app.join("migrations/0001_create_items.up.sql")).unwrap();
    std::fs::write(
        app.join("migrations/0001_products.up.sql"),
        "CREATE TABLE products (id bigint PRIMARY KEY, name text NOT NULL);\n",
    )
    .unwrap();
    std::fs::write(
        &f.file,
        format!(
            "{}app: shop\npath: app\nhealth: {{ path: /health, interval: 50ms, timeout: 10s }}\n\
             drain: {}\nservices: [shop-db]\n\
             migrate: {{ command: sh migrate.sh, kind: sql, dirs: [migrations], rehearse: {rehearse} }}\n",
            f.platform_line(),
            f.drain()
        ),
    )
    .unwrap();
    let out = f.run(&[
        "platform", "service", "create", "shop-db", "--type", "postgres",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let url = database_url(&f, "shop-db");
    (f, url)
}

fn migration(f: &Fixture, name: &str, sql: &str) {
    let path = f.root.path().join("app/migrations").join(name);
    std::fs::write(path, sql).unwrap();
}

/// `n` rows in `products`, analyzed (so `reltuples` is the real count).
fn fill(url: &str, n: u32) {
    psql(
        url,
        &format!(
            "INSERT INTO products SELECT g, 'product ' || g FROM generate_series(1, {n}) g; \
             ANALYZE products"
        ),
    );
}

fn scratch_databases(url: &str) -> String {
    psql(
        url,
        "SELECT coalesce(string_agg(datname, ','), '') FROM pg_database \
         WHERE datname LIKE 'bluegreen_rehearsal_%'",
    )
}

/// A deploy with `--json`: its exit code, the rehearsal event, the
/// rehearse step's time, and everything it printed.
fn deploy(f: &Fixture, release: &str, extra: &[&str]) -> (Option<i32>, Value, f64, String) {
    let mut args = vec!["deploy", "--release", release, "--json"];
    args.extend(extra);
    let out = f.run(&args);
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let rehearsal = events
        .iter()
        .find(|e| e["event"] == "rehearsal")
        .cloned()
        .unwrap_or(Value::Null);
    let took = events
        .iter()
        .find(|e| e["event"] == "step" && e["step"] == "rehearse" && e["status"] != "started")
        .and_then(|e| e["duration_ms"].as_f64())
        .unwrap_or(-1.0);
    (out.status.code(), rehearsal, took, text(&out))
}

fn findings<'a>(rehearsal: &'a Value, rule: &str) -> Vec<&'a Value> {
    rehearsal["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["rule"] == rule)
        .collect()
}

#[test]
fn rehearse_sees_a_volatile_default_rewrite_the_table_and_blocks() {
    let (f, url) = sql_app("{ sample_rows: 20000 }");
    let (code, _, took, out) = deploy(&f, "v1", &[]);
    assert_eq!(code, Some(0), "{out}");
    eprintln!("rehearsal of v1 (creates products, empty database): {took:.0} ms");
    fill(&url, 200_000);
    migration(
        &f,
        "0002_token.up.sql",
        "ALTER TABLE products ADD COLUMN token float8 DEFAULT random();\n",
    );
    let t = Instant::now();
    let (code, rehearsal, took, out) = deploy(&f, "v2", &[]);
    eprintln!(
        "rehearsal of a rewrite on 20,000 of 200,000 rows: {took:.0} ms (deploy {} ms)",
        t.elapsed().as_millis()
    );
    assert_eq!(code, Some(3), "{out}");
    let rewrite = findings(&rehearsal, "rehearsal-rewrite");
    assert_eq!(rewrite.len(), 1, "{rehearsal:#}");
    let message = rewrite[0]["message"].as_str().unwrap();
    eprintln!("  {message}");
    eprintln!(
        "  schema {} ms, sample {} ms ({}), migration {} ms, {} samples every {:.1} ms",
        rehearsal["schema_ms"],
        rehearsal["sample_ms"],
        rehearsal["rows_copied"],
        rehearsal["migration_ms"],
        rehearsal["samples"],
        rehearsal["interval_ms"].as_f64().unwrap_or(0.0)
    );
    assert!(
        message.starts_with("ALTER TABLE products ADD COLUMN token float8 DEFAULT random()")
            && message
                .contains("table products was rewritten (new relfilenode), ACCESS EXCLUSIVE held")
            && message.contains("on 20,000 copied rows")
            && message.contains("at ~200,000 rows (pg_class.reltuples) ~"),
        "{message}"
    );
    assert!(
        out.contains("the migration rehearsal blocked: ALTER TABLE products"),
        "{out}"
    );
    // As people read it.
    let out = f.deploy("v2");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    for l in shown.lines().filter(|l| l.starts_with("  ")) {
        eprintln!("  | {l}");
    }
    assert!(
        shown.contains("    block rehearsal-rewrite: ALTER TABLE products ADD COLUMN token")
            && shown.contains("  dropped the scratch database bluegreen_rehearsal_"),
        "{shown}"
    );
    // The real table never saw it, and the copy is gone.
    let columns = psql(
        &url,
        "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'products'::regclass AND attnum > 0",
    );
    assert_eq!(columns, "id,name");
    assert_eq!(scratch_databases(&url), "");
    f.assert_serving("v1");
    // What the extrapolation stood for: the same ALTER on the real table.
    let t = Instant::now();
    psql(
        &url,
        "ALTER TABLE products ADD COLUMN token float8 DEFAULT random()",
    );
    eprintln!(
        "  the same ALTER on the real 200,000 rows: {} ms (with psql's connect)",
        t.elapsed().as_millis()
    );
}

#[test]
fn rehearse_sees_a_concurrent_index_hold_no_blocking_lock() {
    let (f, url) = sql_app("{ sample_rows: 50000 }");
    assert_eq!(deploy(&f, "v1", &[]).0, Some(0));
    fill(&url, 50_000);
    migration(
        &f,
        "0002_index.up.sql",
        "-- no-transaction\nCREATE INDEX CONCURRENTLY products_name ON products (name);\n",
    );
    let (code, rehearsal, took, out) = deploy(&f, "v2", &[]);
    eprintln!("rehearsal of CREATE INDEX CONCURRENTLY on 50,000 rows: {took:.0} ms");
    assert_eq!(code, Some(0), "{out}");
    let locks = findings(&rehearsal, "rehearsal-lock");
    assert!(
        locks.iter().any(|l| l["table"] == "products"
            && l["message"].as_str().unwrap().contains(
                "CREATE INDEX CONCURRENTLY products_name ON products (name): SHARE UPDATE EXCLUSIVE on products held"
            )
            && l["message"].as_str().unwrap().ends_with("which blocks neither reads nor writes")),
        "{rehearsal:#}"
    );
    for f in rehearsal["findings"].as_array().unwrap() {
        eprintln!("  {}: {}", f["rule"], f["message"]);
        assert_ne!(f["severity"], "error", "{f}");
    }
    assert_eq!(scratch_databases(&url), "");
    f.assert_serving("v2");
    assert_eq!(
        psql(
            &url,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'products_name'"
        ),
        "1"
    );
}

#[test]
fn rehearse_killed_midway_leaves_no_scratch_database_after_recover() {
    let (f, url) = sql_app("true");
    assert_eq!(deploy(&f, "v1", &[]).0, Some(0));
    migration(
        &f,
        "0002_slow.up.sql",
        "SELECT pg_sleep(60);\nALTER TABLE products ADD COLUMN slow int;\n",
    );
    let mut child = f.spawn(&["deploy", "--release", "v2", "--json"]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let e: Value = serde_json::from_str(&line.unwrap()).unwrap_or(Value::Null);
        if e["event"] == "step" && e["step"] == "rehearse" {
            break;
        }
    }
    // Kill it once its migration sleeps on the copy.
    let deadline = Instant::now() + Duration::from_secs(60);
    let sleeping = "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'bluegreen_rehearsal_%' AND query LIKE 'SELECT pg_sleep%'";
    while psql(&url, sleeping) != "1" {
        assert!(
            Instant::now() < deadline,
            "the rehearsal never reached its pg_sleep"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = scratch_databases(&url);
    assert!(left.starts_with("bluegreen_rehearsal_"), "{left}");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(scratch_databases(&url), left, "a kill leaves it to recover");

    let out = f.run(&["recover"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "Dropped the scratch database {left} the interrupted rehearsal left"
        )),
        "{}",
        text(&out)
    );
    assert_eq!(scratch_databases(&url), "");
    f.assert_serving("v1");
    assert_eq!(
        psql(&url, "SELECT count(*) FROM schema_migrations"),
        "1",
        "nothing ran for real"
    );
}

#[test]
fn rehearse_required_by_policy_refuses_when_it_cannot_run() {
    let (f, _url) = sql_app("false");
    // No binding: the file's own DATABASE_URL names a server nobody runs.
    let yaml = std::fs::read_to_string(&f.file).unwrap().replace(
        "services: [shop-db]\n",
        "env: { DATABASE_URL: 'postgres://u:p@127.0.0.1:9/none' }\n",
    );
    std::fs::write(&f.file, yaml).unwrap();
    let policy = f.root.path().join("policy.yaml");
    std::fs::write(&policy, "migrate: { require_rehearsal: true }\n").unwrap();
    let out = f.run(&[
        "deploy",
        "--release",
        "v1",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("the policy requires a migration rehearsal, and it cannot run: connecting to none on 127.0.0.1:9"),
        "{}",
        text(&out)
    );
    // Not required: skipped, said why, and the deploy goes on to the real
    // migration (which fails here for the same reason).
    std::fs::write(
        &f.file,
        std::fs::read_to_string(&f.file)
            .unwrap()
            .replace("rehearse: false", "rehearse: true"),
    )
    .unwrap();
    let out = f.run(&["deploy", "--release", "v1"]);
    assert!(
        text(&out).contains("rehearsal skipped: connecting to none on 127.0.0.1:9"),
        "{}",
        text(&out)
    );
}

/// The Rails example with a migration that calls a helper from `lib/`,
/// which renames a column the old release reads: the guard cannot resolve
/// it; the rehearsal sees the rename and blocks.
#[test]
fn rehearse_blocks_a_rename_hidden_in_a_rails_helper_from_another_file() {
    let f = crate::rails::rails(|y| {
        y.replace("settings: { mode: block }", "settings: { mode: warn }")
            .replace(
                "  lock_timeout: 5s\n",
                "  lock_timeout: 5s\n  rehearse: true\n",
            )
    });
    let (code, _, _, out) = deploy(&f, "v1", &[]);
    assert_eq!(code, Some(0), "{out}");
    let url = database_url(&f, "rails-db");
    psql(
        &url,
        "INSERT INTO products (name, legacy_code, created_at, updated_at) \
         SELECT 'p' || g, 'L' || g, now(), now() FROM generate_series(1, 5000) g; ANALYZE products",
    );
    overlay(&f, "v2");
    std::fs::create_dir_all(f.root.path().join("lib")).unwrap();
    std::fs::write(
        f.root.path().join("lib/migration_helpers.rb"),
        "module MigrationHelpers\n  # Moves a column out of the way of the new code.\n  \
         def self.retire(migration, table, column)\n    \
         migration.rename_column table, column, \"#{column}_retired\"\n  end\nend\n",
    )
    .unwrap();
    std::fs::write(
        f.root
            .path()
            .join("db/migrate/20260202000000_retire_legacy_code.rb"),
        "require Rails.root.join(\"lib/migration_helpers\").to_s\n\n\
         class RetireLegacyCode < ActiveRecord::Migration[6.1]\n  def up\n    \
         MigrationHelpers.retire(self, :products, :legacy_code)\n  end\nend\n",
    )
    .unwrap();
    let t = Instant::now();
    let (code, rehearsal, took, out) = deploy(&f, "v2", &[]);
    eprintln!(
        "rehearsal of the Rails example (2 migrations, 1,000 of 5,000 rows): {took:.0} ms (deploy {} ms)",
        t.elapsed().as_millis()
    );
    assert_eq!(code, Some(3), "{out}");
    let renamed = findings(&rehearsal, "rehearsal-renamed-column");
    assert_eq!(renamed.len(), 1, "{rehearsal:#}");
    assert_eq!(
        renamed[0]["message"],
        "column products.legacy_code was renamed to legacy_code_retired; the old release still reads legacy_code"
    );
    for f in rehearsal["findings"].as_array().unwrap() {
        eprintln!("  {}: {}", f["rule"], f["message"]);
    }
    for c in rehearsal["combined"].as_array().unwrap() {
        eprintln!("  {c}");
    }
    let combined = rehearsal["combined"].to_string();
    assert!(combined.contains("legacy_code was renamed"), "{combined}");
    let columns = psql(
        &url,
        "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'products'",
    );
    assert!(
        columns.contains("legacy_code")
            && !columns.contains("retired")
            && !columns.contains("description"),
        "{columns}"
    );
    assert_eq!(scratch_databases(&url), "");
}

/// On Cloud Foundry (the local platform serving as CF) the rehearsal runs
/// as a task like the migration, against the bound service's server; where
/// the credentials may not create a database it is skipped, and says why.
#[test]
fn rehearse_as_cf_runs_on_the_bound_service_or_says_why_it_was_skipped() {
    let (f, url) = sql_app_on(true, "true");
    assert_eq!(deploy(&f, "v1", &[]).0, Some(0));
    fill(&url, 2000);
    migration(
        &f,
        "0002_drop.up.sql",
        "ALTER TABLE products DROP COLUMN name;\n",
    );
    let (code, rehearsal, took, out) = deploy(&f, "v2", &[]);
    eprintln!("rehearsal as cf: {took:.0} ms");
    assert_eq!(code, Some(3), "{out}");
    let dropped = findings(&rehearsal, "rehearsal-dropped-column");
    assert_eq!(
        dropped[0]["message"], "column products.name was dropped; the old release still reads it",
        "{rehearsal:#}"
    );
    assert_eq!(scratch_databases(&url), "");

    // An app user without CREATEDB, as many brokers hand out.
    psql(&url, "CREATE ROLE app LOGIN PASSWORD 'pw'");
    let port = url.rsplit(':').next().unwrap().split('/').next().unwrap();
    let yaml = std::fs::read_to_string(&f.file).unwrap().replace(
        "services: [shop-db]\n",
        &format!("services: [shop-db]\nenv: {{ DATABASE_URL: 'postgres://app:pw@127.0.0.1:{port}/shop_db' }}\n"),
    );
    std::fs::write(&f.file, yaml).unwrap();
    let (_, rehearsal, _, out) = deploy(&f, "v2", &[]);
    assert_eq!(rehearsal["status"], "skipped", "{out}");
    let why = rehearsal["why"].as_str().unwrap();
    assert!(
        why.starts_with("the credentials of the deploy file's DATABASE_URL may not create a database")
            && why.ends_with("(on Cloud Foundry the rehearsal needs the bound database reachable from this machine and credentials that may create a database)"),
        "{why}"
    );
    // The real migration ran as `app`, which may not drop the column.
    assert!(
        psql(
            &url,
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'products'::regclass AND attname = 'name'"
        ) == "1"
    );
}

/// A schema of 200 tables (1,000 rows and an index each) rehearses and
/// deploys a harmless `ADD COLUMN`; its timings are the README's numbers
/// (`cargo test --test it rehearse_timing -- --nocapture` prints them).
#[test]
fn rehearse_timing_of_200_tables() {
    let (f, url) = sql_app("false");
    assert_eq!(deploy(&f, "v1", &[]).0, Some(0));
    psql(
        &url,
        "DO $$ BEGIN FOR i IN 1..200 LOOP \
           EXECUTE format('CREATE TABLE t%s (id bigint PRIMARY KEY, name text, at timestamptz DEFAULT now())', i); \
           EXECUTE format('INSERT INTO t%s (id, name) SELECT g, md5(g::text) FROM generate_series(1, 1000) g', i); \
           EXECUTE format('CREATE INDEX ON t%s (name)', i); \
         END LOOP; END $$; ANALYZE",
    );
    migration(&f, "0002_a.up.sql", "ALTER TABLE t1 ADD COLUMN a int;\n");
    let t = Instant::now();
    assert_eq!(deploy(&f, "v2", &[]).0, Some(0));
    let without = t.elapsed();
    let yaml = std::fs::read_to_string(&f.file)
        .unwrap()
        .replace("rehearse: false", "rehearse: true");
    std::fs::write(&f.file, yaml).unwrap();
    migration(&f, "0003_b.up.sql", "ALTER TABLE t2 ADD COLUMN b int;\n");
    let t = Instant::now();
    let (code, rehearsal, took, out) = deploy(&f, "v3", &[]);
    let with = t.elapsed();
    assert_eq!(code, Some(0), "{out}");
    eprintln!(
        "200 tables: deploy without rehearsal {} ms, with {} ms; rehearse step {took:.0} ms \
         (schema {} ms, sample {} ms, migration {} ms, {} samples)",
        without.as_millis(),
        with.as_millis(),
        rehearsal["schema_ms"],
        rehearsal["sample_ms"],
        rehearsal["migration_ms"],
        rehearsal["samples"]
    );
}
