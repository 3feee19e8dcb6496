//! The migration guard over a labelled corpus (`tests/fixtures/migrations`):
//! every case goes through the real component in the real host, and any
//! wrong verdict fails the test. Each file's first line says what it expects
//! (`block RULE`, `warn RULE` or `safe`); a directory is one batch of files
//! judged together, with its label in `expect` (files named `post_*` are in
//! the contract phase) and, optionally, the guard's settings in `settings`
//! (`key: value` lines, as the deploy file's `plugins.config.<name>.settings`
//! writes them). Down and undo files are passed to the guard too: the host
//! leaves them out, and the guard must not judge them either.

use crate::util::*;
use bluegreen::plugin::context::{Migration, Severity};
use bluegreen::plugin::{Hook, HookContext, Verdict};
use std::path::Path;

fn label(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches(['#', '-', ' '])
        .trim_start_matches("expect:")
        .trim()
        .to_string()
}

fn migration(path: &Path) -> Migration {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    Migration {
        phase: if name.starts_with("post_") {
            "contract"
        } else {
            "expand"
        }
        .into(),
        path: format!("db/migrate/{name}"),
        // The leading digits (Rails timestamps, golang-migrate numbers,
        // Flyway `V3`), as the host reads them.
        version: name
            .trim_start_matches("post_")
            .trim_start_matches('V')
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>(),
        contents: std::fs::read_to_string(path).unwrap(),
    }
}

/// Files in a batch directory that describe it rather than run: its label,
/// and the current schema the guard is granted.
const NOT_PENDING: &[&str] = &["expect", "settings", "schema.rb", "structure.sql"];

/// One labelled case: its name, label, pending files, and the directory
/// holding its schema file, if any.
struct Case {
    name: String,
    expect: String,
    pending: Vec<Migration>,
    schema: Option<(std::path::PathBuf, &'static str)>,
    settings: Vec<(String, String)>,
}

/// A batch's `settings` file: `key: value` lines.
fn case_settings(dir: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(dir.join("settings")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    for path in sorted_entries(dir) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let expect = std::fs::read_to_string(path.join("expect"))
                .unwrap()
                .trim()
                .to_string();
            let files: Vec<_> = sorted_entries(&path)
                .into_iter()
                .filter(|p| !NOT_PENDING.contains(&p.file_name().unwrap().to_str().unwrap()))
                .collect();
            let schema = ["schema.rb", "structure.sql"]
                .into_iter()
                .find(|f| path.join(f).exists())
                .map(|f| (path.clone(), f));
            let pending = files.iter().map(|f| migration(f)).collect();
            cases.push(Case {
                name,
                expect,
                pending,
                schema,
                settings: case_settings(&path),
            });
        } else if name.ends_with(".rb") || name.ends_with(".sql") {
            let m = migration(&path);
            let expect = label(&m.contents);
            if bluegreen::deploy::release::is_down_migration(&name) {
                // The host never passes these; the guard skips them too.
                assert_eq!(expect, "safe", "{name}: a down file is labelled safe");
            }
            cases.push(Case {
                name,
                expect,
                pending: vec![m],
                schema: None,
                settings: Vec::new(),
            });
        }
    }
    cases
}

/// Per rule: cases labelled `block RULE` it blocked with RULE (tp), blocked
/// with RULE though the case should not block (fp), and missed (fn).
#[derive(Default)]
struct Score {
    tp: u32,
    fp: u32,
    fneg: u32,
}

/// Runs every case of `dir` through the real guard with `extra` settings
/// (as a deploy passes them: the lock timeout is always set when the deploy
/// migrates) and fails on any wrong verdict, after printing the scores.
async fn judge_corpus(dir: &str, extra: &[(&str, &str)], at_least: usize) {
    let host = host();
    let guard = load(&host, "migration-guard").await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let cases = cases(&dir);
    let files: usize = cases.iter().map(|c| c.pending.len()).sum();
    let (mut tp, mut fp, mut fneg, mut wrong) = (0, 0, 0, Vec::new());
    let mut per_rule: std::collections::BTreeMap<String, Score> = Default::default();
    for case in &cases {
        let ctx = HookContext {
            pending: case.pending.clone(),
            ..ctx()
        };
        let mut pairs = vec![("bluegreen.lock-timeout", "5s")];
        pairs.extend_from_slice(extra);
        pairs.extend(case.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let schema_path;
        let mut config = settings(&pairs);
        if let Some((dir, file)) = &case.schema {
            schema_path = format!("/db/{file}");
            config.settings.push(("schema".into(), schema_path.clone()));
            config.sandbox.dirs.push(
                bluegreen::plugin::DirGrant::parse(&format!("{}:/db", dir.display())).unwrap(),
            );
        }
        let name = &case.name;
        let report = host
            .call(&guard, Hook::MigrationSafetyCheck, &ctx, &config)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let blocked = matches!(report.outcome.verdict, Verdict::Block(_));
        let rules = |sev: Severity| -> Vec<&str> {
            report
                .outcome
                .findings
                .iter()
                .filter(|f| f.severity == sev)
                .map(|f| f.rule.as_str())
                .collect()
        };
        let (errors, warnings) = (rules(Severity::Error), rules(Severity::Warning));
        let expect = &case.expect;
        let (kind, rule) = expect.split_once(' ').unwrap_or((expect.as_str(), ""));
        let right = match kind {
            "block" => blocked && errors.contains(&rule),
            "warn" => !blocked && errors.is_empty() && warnings.contains(&rule),
            "safe" => !blocked && errors.is_empty() && warnings.is_empty(),
            other => panic!("{name}: unknown label `{other}`"),
        };
        match (kind == "block", blocked) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fneg += 1,
            _ => {}
        }
        if kind == "block" {
            let s = per_rule.entry(rule.to_string()).or_default();
            if errors.contains(&rule) {
                s.tp += 1
            } else {
                s.fneg += 1
            }
        } else {
            for e in &errors {
                per_rule.entry(e.to_string()).or_default().fp += 1;
            }
        }
        if !right {
            wrong.push(format!("{name}: expected {expect}, got blocked={blocked} errors={errors:?} warnings={warnings:?}"));
        }
    }
    let ratio = |a: u32, b: u32| {
        if a + b == 0 {
            1.0
        } else {
            a as f64 / (a + b) as f64
        }
    };
    let precision = ratio(tp, fp);
    let recall = ratio(tp, fneg);
    println!(
        "migration guard corpus {}: {} cases ({files} files), block precision {precision:.3}, recall {recall:.3}, {} wrong",
        dir.file_name().unwrap().to_string_lossy(),
        cases.len(),
        wrong.len()
    );
    println!(
        "  {:<32} {:>5} {:>5} {:>5} {:>9} {:>7}",
        "rule", "tp", "fp", "fn", "precision", "recall"
    );
    for (rule, s) in &per_rule {
        println!(
            "  {rule:<32} {:>5} {:>5} {:>5} {:>9.3} {:>7.3}",
            s.tp,
            s.fp,
            s.fneg,
            ratio(s.tp, s.fp),
            ratio(s.tp, s.fneg)
        );
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
    assert!(
        files >= at_least,
        "only {files} migrations in {}",
        dir.display()
    );
}

#[tokio::test]
async fn the_guard_judges_the_labelled_corpus_without_a_wrong_verdict() {
    judge_corpus("tests/fixtures/migrations", &[], 400).await;
}

#[tokio::test]
async fn the_guard_judges_the_mysql_corpus_without_a_wrong_verdict() {
    judge_corpus(
        "tests/fixtures/migrations-mysql",
        &[("dialect", "mysql")],
        45,
    )
    .await;
}

/// Other tools' annotations («8 · Migration guard», item 5) count only
/// while `inline-overrides` is `allow`: a policy that sets `ignore` turns
/// every one of them off, as it does `bluegreen:allow`.
#[tokio::test]
async fn inline_overrides_ignore_turns_off_every_tools_annotation() {
    let host = host();
    let guard = load(&host, "migration-guard").await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrations");
    for name in [
        "s108_allow_comment.up.sql",
        "s201_squawk_ignore_drop_column.up.sql",
        "s204_squawk_ignore_file.up.sql",
        "s205_atlas_nolint_code.up.sql",
        "s207_atlas_nolint_bare.up.sql",
        "s208_safety_assured_region.up.sql",
    ] {
        let ctx = HookContext {
            pending: vec![migration(&dir.join(name))],
            ..ctx()
        };
        for (setting, blocked) in [("allow", false), ("ignore", true)] {
            let report = host
                .call(
                    &guard,
                    Hook::MigrationSafetyCheck,
                    &ctx,
                    &settings(&[("inline-overrides", setting)]),
                )
                .await
                .unwrap();
            assert_eq!(
                matches!(report.outcome.verdict, Verdict::Block(_)),
                blocked,
                "{name} with inline-overrides {setting}: {:?}",
                report.outcome
            );
        }
    }
}

/// «8 · Migration guard», item 6: the deploy's `migrate.lock_timeout`
/// (which the host passes as `bluegreen.lock-timeout`) decides the brief
/// exclusive locks. Without one they warn, with the list of statements;
/// with one they are named as safe because of it; a migration that sets
/// `lock_timeout` itself needs no deploy setting.
#[tokio::test]
async fn lock_timeout_decides_the_short_lock_findings() {
    let host = host();
    let guard = load(&host, "migration-guard").await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrations");
    let file = |name: &str| migration(&dir.join(name));
    let inline = Migration {
        path: "db/migrate/20240101_timed.sql".into(),
        version: "1".into(),
        phase: "expand".into(),
        contents: "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN nickname text;\n".into(),
    };
    type Case<'a> = (Vec<Migration>, Option<&'a str>, &'a [(&'a str, Severity)]);
    let cases: [Case; 4] = [
        (
            vec![file("sa057_drop_orders_status_index.sql")],
            None,
            &[
                ("drop-index-non-concurrently", Severity::Warning),
                ("lock-timeout", Severity::Warning),
            ],
        ),
        (
            vec![file("sa057_drop_orders_status_index.sql")],
            Some("5s"),
            &[
                ("drop-index-non-concurrently", Severity::Info),
                ("lock-timeout", Severity::Info),
            ],
        ),
        (
            vec![
                file("r001_remove_column.rb"),
                file("s001_drop_table.up.sql"),
            ],
            None,
            &[
                ("remove-column", Severity::Error),
                ("drop-table", Severity::Error),
            ],
        ),
        (vec![inline], None, &[]),
    ];
    for (pending, timeout, expected) in cases {
        let ctx = HookContext {
            pending: pending.clone(),
            ..ctx()
        };
        let pairs: Vec<(&str, &str)> = timeout
            .map(|t| ("bluegreen.lock-timeout", t))
            .into_iter()
            .collect();
        let report = host
            .call(&guard, Hook::MigrationSafetyCheck, &ctx, &settings(&pairs))
            .await
            .unwrap();
        let names: Vec<&str> = pending.iter().map(|m| m.path.as_str()).collect();
        let found: Vec<(&str, Severity)> = report
            .outcome
            .findings
            .iter()
            .map(|f| (f.rule.as_str(), f.severity))
            .collect();
        for want in expected {
            assert!(
                found.contains(want),
                "{names:?} with timeout {timeout:?}: {found:?}"
            );
        }
        if expected.is_empty() {
            assert!(found.is_empty(), "{names:?}: {found:?}");
        }
        if let Some(t) = timeout {
            let note = report
                .outcome
                .findings
                .iter()
                .find(|f| f.rule == "lock-timeout")
                .unwrap();
            assert!(
                note.message
                    .contains(&format!("migrate.lock_timeout ({t})")),
                "{}",
                note.message
            );
        }
    }
}

/// A verdict that depends on the schema says so when none is granted, and
/// the schema, once granted, decides it (item 4).
#[tokio::test]
async fn a_type_change_is_judged_from_the_schema_or_says_it_cannot_be() {
    let host = host();
    let guard = load(&host, "migration-guard").await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrations");
    let batch = dir.join("batch_sa_widen_varchar");
    let pending: Vec<Migration> = sorted_entries(&batch)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sql") && !p.ends_with("structure.sql"))
        .map(|p| migration(&p))
        .collect();
    let ctx = HookContext { pending, ..ctx() };
    let blind = host
        .call(
            &guard,
            Hook::MigrationSafetyCheck,
            &ctx,
            &settings(&[("bluegreen.lock-timeout", "5s")]),
        )
        .await
        .unwrap();
    assert!(
        matches!(blind.outcome.verdict, Verdict::Block(_)),
        "{:?}",
        blind.outcome
    );
    let why = &blind.outcome.findings[0].message;
    assert!(
        why.contains("current type is unknown") && why.contains("db/structure.sql"),
        "{why}"
    );

    let mut config = settings(&[
        ("bluegreen.lock-timeout", "5s"),
        ("schema", "/db/structure.sql"),
    ]);
    config
        .sandbox
        .dirs
        .push(bluegreen::plugin::DirGrant::parse(&format!("{}:/db", batch.display())).unwrap());
    let seen = host
        .call(&guard, Hook::MigrationSafetyCheck, &ctx, &config)
        .await
        .unwrap();
    assert_eq!(seen.outcome.verdict, Verdict::Proceed, "{:?}", seen.outcome);

    // A schema named but not granted is a plugin error that says what to grant.
    let missing = host
        .call(
            &guard,
            Hook::MigrationSafetyCheck,
            &ctx,
            &settings(&[("schema", "/db/structure.sql")]),
        )
        .await;
    let err = format!("{:?}", missing.map(|r| r.outcome));
    assert!(err.contains("grant its directory"), "{err}");
}

/// An app names its own SQL entry points where it configures the guard:
/// `plugins.config.migration-guard.settings` (or the policy's
/// `required_plugins`, where the app cannot change them). Settings are
/// strings: a list is written comma-separated, or as a YAML list, which
/// reaches the guard joined with commas.
#[tokio::test]
async fn sql_methods_from_the_deploy_file_reach_the_guard() {
    let yaml = "app: shop\nplugins:\n  config:\n    migration-guard:\n      settings:\n        sql_methods: DB.exec, Warehouse.exec_sql\n";
    let file = bluegreen::config::DeployFile::parse(Path::new("bluegreen.yaml"), yaml).unwrap();
    let pairs: Vec<(&str, &str)> = file.plugins.config["migration-guard"]
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let host = host();
    let guard = load(&host, "migration-guard").await;
    let ctx = HookContext {
        pending: vec![Migration {
            path: "db/migrate/20240601090000_purge_pallets.rb".into(),
            version: "20240601090000".into(),
            phase: "expand".into(),
            contents: "class PurgePallets < ActiveRecord::Migration[7.1]\n  def up\n    Warehouse.exec_sql(\"DROP TABLE pallets\")\n  end\nend\n".into(),
        }],
        ..ctx()
    };
    let named = host
        .call(&guard, Hook::MigrationSafetyCheck, &ctx, &settings(&pairs))
        .await
        .unwrap();
    assert!(
        matches!(named.outcome.verdict, Verdict::Block(_))
            && named
                .outcome
                .findings
                .iter()
                .any(|f| f.rule == "drop-table"),
        "{:?}",
        named.outcome
    );
    // Unnamed, the call is reported as unchecked: never a silent pass.
    let unnamed = host
        .call(&guard, Hook::MigrationSafetyCheck, &ctx, &settings(&[]))
        .await
        .unwrap();
    assert!(
        unnamed
            .outcome
            .findings
            .iter()
            .any(|f| f.rule == "unparsed" && f.severity == Severity::Warning),
        "{:?}",
        unnamed.outcome
    );
    // A YAML list reaches the guard as the same comma-separated setting.
    let list = yaml.replace(
        "DB.exec, Warehouse.exec_sql",
        "[DB.exec, Warehouse.exec_sql]",
    );
    let file = bluegreen::config::DeployFile::parse(Path::new("bluegreen.yaml"), &list).unwrap();
    assert_eq!(
        file.plugins.config["migration-guard"].settings["sql_methods"],
        "DB.exec,Warehouse.exec_sql"
    );
}
