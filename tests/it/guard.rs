//! The migration guard over a labelled corpus (`tests/fixtures/migrations`):
//! every case goes through the real component in the real host, and any
//! wrong verdict fails the test. Each file's first line says what it expects
//! (`block RULE`, `warn RULE` or `safe`); a directory is one batch of files
//! judged together, with its label in `expect` (files named `post_*` are in
//! the contract phase).

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
        version: "1".into(),
        contents: std::fs::read_to_string(path).unwrap(),
    }
}

#[tokio::test]
async fn the_guard_judges_the_labelled_corpus_without_a_wrong_verdict() {
    let host = host();
    let guard = load(&host, "migration-guard").await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrations");
    let mut cases: Vec<(String, String, Vec<Migration>)> = Vec::new();
    let entries = crate::util::sorted_entries(&dir);
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let expect = std::fs::read_to_string(path.join("expect"))
                .unwrap()
                .trim()
                .to_string();
            let files: Vec<_> = sorted_entries(&path)
                .into_iter()
                .filter(|p| p.file_name().unwrap() != "expect")
                .collect();
            cases.push((name, expect, files.iter().map(|f| migration(f)).collect()));
        } else if name.ends_with(".rb") || name.ends_with(".sql") {
            let m = migration(&path);
            cases.push((name, label(&m.contents), vec![m]));
        }
    }
    let files: usize = cases.iter().map(|c| c.2.len()).sum();
    assert!(files >= 100, "only {files} migrations in the corpus");
    let (mut tp, mut fp, mut fneg, mut wrong) = (0, 0, 0, Vec::new());
    for (name, expect, pending) in &cases {
        let ctx = HookContext {
            pending: pending.clone(),
            ..ctx()
        };
        let report = host
            .call(&guard, Hook::MigrationSafetyCheck, &ctx, &settings(&[]))
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
        if !right {
            wrong.push(format!("{name}: expected {expect}, got blocked={blocked} errors={errors:?} warnings={warnings:?}"));
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fneg).max(1) as f64;
    println!(
        "migration guard corpus: {} cases ({files} files), block precision {precision:.3}, recall {recall:.3}, {} wrong",
        cases.len(),
        wrong.len()
    );
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
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
