//! Naming a release and finding the migrations it brings.
//!
//! A release is the git commit of the app directory when the tree is clean,
//! else a hash of the uploaded bits, so the same files always get the same
//! name and a local edit never passes for a commit.

use crate::config::{Migrate, MigrationKind};
use crate::plugin::context::Migration;
use std::path::Path;
use std::process::Command;

/// The release id for `dir`, whose bits zip to a file with this sha256.
pub fn release_id(dir: &Path, zip_sha256: &str) -> String {
    git_commit(dir)
        .unwrap_or_else(|| format!("content-{}", zip_sha256.get(..12).unwrap_or(zip_sha256)))
}

/// The short commit, if `dir` is in a git work tree with nothing uncommitted
/// under it.
fn git_commit(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=normal",
        "--",
        ".",
    ])?;
    dirty.is_empty().then_some(commit)
}

/// The version a migration file carries: its leading digits (Rails
/// `20240101120000_x.rb`, golang-migrate `0003_x.up.sql`) or Flyway's
/// `V3__x.sql` / `V1_2__x.sql`.
pub fn version_of(file_name: &str) -> Option<String> {
    let rest = file_name.strip_prefix('V').unwrap_or(file_name);
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || (*c == '_' && file_name.starts_with('V')))
        .collect();
    let digits = digits.trim_end_matches('_').replace('_', ".");
    (!digits.is_empty()).then_some(digits)
}

/// Down and undo migrations (`*.down.sql`, Flyway's `U<version>__*.sql`)
/// never run on deploy. The one rule: the guard sees only what passes it.
pub fn is_down_migration(name: &str) -> bool {
    name.ends_with(".down.sql") || (name.starts_with('U') && name.contains("__"))
}

/// Whether a file is a migration that runs on deploy.
fn is_up_migration(name: &str, kind: MigrationKind) -> bool {
    match kind {
        MigrationKind::Rails => name.ends_with(".rb"),
        MigrationKind::Sql => name.ends_with(".sql") && !is_down_migration(name),
    }
}

/// Orders versions numerically part by part (`1.10` after `1.9`).
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<u128> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(a).cmp(&parts(b))
}

fn default_dir(kind: MigrationKind) -> &'static str {
    match kind {
        MigrationKind::Rails => "db/migrate",
        MigrationKind::Sql => "migrations",
    }
}

/// The migration versions a successful deploy has applied: the set the
/// history recorded, or, for a history from before sets were recorded, every
/// version up to the newest one it recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    pub versions: std::collections::BTreeSet<String>,
    pub legacy_max: Option<String>,
}

impl Applied {
    pub fn from_history(last_done: Option<&crate::deploy::journal::HistoryEntry>) -> Applied {
        match last_done {
            Some(h) if !h.applied.is_empty() => Applied {
                versions: h.applied.iter().cloned().collect(),
                legacy_max: None,
            },
            Some(h) => Applied {
                versions: Default::default(),
                legacy_max: h.migration_version.clone(),
            },
            None => Applied::default(),
        }
    }

    /// A set, not a maximum: a migration with an old timestamp that arrives
    /// late (a long-lived branch) still runs under `db:migrate`, so it must
    /// still be checked.
    pub fn contains(&self, version: &str) -> bool {
        self.versions.contains(version)
            || self
                .legacy_max
                .as_deref()
                .is_some_and(|max| compare_versions(version, max).is_le())
    }
}

/// The migrations of `all` not yet `applied`.
pub fn pending(all: Vec<Migration>, applied: &Applied) -> Vec<Migration> {
    all.into_iter()
        .filter(|mig| !applied.contains(&mig.version))
        .collect()
}

/// Every up migration in `app_dir`, in version order: the expand-phase
/// ones from `dirs`, and the contract-phase ones (`post_dirs`) marked as
/// such.
pub fn all(app_dir: &Path, m: &Migrate) -> anyhow::Result<Vec<Migration>> {
    let dirs = if m.dirs.is_empty() {
        vec![default_dir(m.kind).into()]
    } else {
        m.dirs.clone()
    };
    let mut out = Vec::new();
    for (phase, list) in [("expand", &dirs), ("contract", &m.post_dirs)] {
        for d in list {
            let dir = app_dir.join(d);
            if !dir.is_dir() {
                continue;
            }
            for entry in fs_err::read_dir(&dir)? {
                let path = entry?.path();
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                let Some(version) = version_of(&name) else {
                    continue;
                };
                if !is_up_migration(&name, m.kind) {
                    continue;
                }
                out.push(Migration {
                    path: path
                        .strip_prefix(app_dir)
                        .unwrap_or(&path)
                        .to_string_lossy()
                        .into(),
                    version,
                    phase: phase.into(),
                    contents: fs_err::read_to_string(&path)?,
                });
            }
        }
    }
    out.sort_by(|a, b| compare_versions(&a.version, &b.version).then(a.path.cmp(&b.path)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_rails_flyway_and_golang_migrate_names() {
        assert_eq!(
            version_of("20240101120000_add_email.rb").as_deref(),
            Some("20240101120000")
        );
        assert_eq!(version_of("V3__add.sql").as_deref(), Some("3"));
        assert_eq!(version_of("V1_2__add.sql").as_deref(), Some("1.2"));
        assert_eq!(version_of("0003_add.up.sql").as_deref(), Some("0003"));
        assert_eq!(version_of("README.md"), None);
        assert!(compare_versions("1.10", "1.9").is_gt());
        assert!(compare_versions("0003", "3").is_eq());
    }

    #[test]
    fn pending_is_what_was_not_applied_and_skips_down_files() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("migrations");
        std::fs::create_dir_all(&m).unwrap();
        for f in [
            "0001_a.up.sql",
            "0001_a.down.sql",
            "0002_b.up.sql",
            "0003_c.up.sql",
            "notes.txt",
        ] {
            std::fs::write(m.join(f), "select 1;").unwrap();
        }
        let cfg = Migrate {
            command: "migrate".into(),
            dirs: vec![],
            post_dirs: vec![],
            kind: MigrationKind::Sql,
            lock_timeout: std::time::Duration::from_secs(5),
            statement_timeout: None,
            retries: 3,
            rehearse: Default::default(),
        };
        let names = |applied: Applied| -> Vec<String> {
            pending(all(dir.path(), &cfg).unwrap(), &applied)
                .into_iter()
                .map(|m| m.path)
                .collect()
        };
        // A history from before sets were recorded: newer than its maximum.
        let legacy = Applied {
            legacy_max: Some("1".into()),
            ..Applied::default()
        };
        assert_eq!(
            names(legacy),
            ["migrations/0002_b.up.sql", "migrations/0003_c.up.sql"]
        );
        // Defect 4 of «7 · Hardening»: 0002 arrived after 0003 was applied
        // (an old timestamp from a long-lived branch). It is still pending.
        let applied = Applied {
            versions: ["0001", "0003"].map(String::from).into(),
            legacy_max: None,
        };
        assert_eq!(names(applied), ["migrations/0002_b.up.sql"]);

        // Real size: 400 migrations, all applied but one old one.
        for i in 10..410 {
            std::fs::write(m.join(format!("{i:04}_m.up.sql")), "select 1;").unwrap();
        }
        let mut versions: std::collections::BTreeSet<String> =
            (10..410).map(|i| format!("{i:04}")).collect();
        versions.extend(["0001", "0003"].map(String::from));
        versions.remove("0100");
        let applied = Applied {
            versions,
            legacy_max: None,
        };
        assert_eq!(
            names(applied),
            ["migrations/0002_b.up.sql", "migrations/0100_m.up.sql"]
        );
    }
}
