//! The rehearsal's run (see `rehearse.rs`): the copy made and filled, the
//! release's migration run on it as a task on the new droplet while the
//! sampler watches `pg_locks`, the catalog compared, and what was seen
//! judged, combined with the static guard's findings, and reported.

use super::{Executor, TASK_TIMEOUT};
use crate::deploy::plan::Step;
use crate::deploy::rehearse::{catalog, combine, evidence, sampler, scratch, show, target};
use crate::plugin::Hook;
use crate::plugin::context::Severity;
use crate::units::human_duration as human;
use serde_json::json;
use std::time::{Duration, Instant};

/// How often the sampler looks at `pg_locks`.
const EVERY: Duration = Duration::from_millis(5);

/// How a rehearsal went, short of being interrupted.
pub(super) enum Outcome {
    CannotRun(String),
    Ran {
        findings: Vec<evidence::Finding>,
        /// The migration's failure on the copy, if it failed.
        failed: Option<String>,
    },
}

impl Executor {
    /// Makes and fills the copy, runs the migration on it under the
    /// sampler, and judges what was seen. The caller drops the copy.
    pub(super) async fn rehearse_on(
        &self,
        step: &Step,
        server: &target::Database,
        name: &str,
        app_env: &serde_json::Value,
    ) -> Outcome {
        let Step::Rehearse {
            color,
            command,
            sample_rows,
            max_exclusive,
            ..
        } = step
        else {
            unreachable!("a rehearse step")
        };
        let prepared = async {
            scratch::create(server, name).await?;
            let schema = scratch::restore_schema(server, name).await?;
            let sampled = scratch::copy_sample(server, name, *sample_rows).await?;
            let shared = scratch::connect(server, &server.name).await?;
            let sizes = catalog::sizes(&shared).await?;
            let watcher = scratch::connect(server, name).await?;
            let before = catalog::snapshot(&watcher).await?;
            anyhow::Ok((schema, sampled, sizes, watcher, before))
        };
        let (schema, sampled, sizes, watcher, before) = match prepared.await {
            Ok(p) => p,
            Err(e) => return Outcome::CannotRun(format!("{e:#}")),
        };
        for s in &sampled.skipped {
            self.report.say(&format!("  rehearsal sample: {s}"));
        }
        let pgoptions = self.file.migrate.as_ref().map(|m| m.pgoptions());
        let exports = target::task_exports(server, name, app_env);
        let task = super::migrate::task_command(
            &format!("{exports}{command}"),
            "expand",
            &pgoptions.unwrap_or_default(),
        );
        let app = self.site.app(*color).guid.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let t = Instant::now();
        let run = async {
            let r = self
                .site
                .client
                .run_task_on(&app, None, &task, TASK_TIMEOUT)
                .await;
            let _ = stop.send(());
            r
        };
        let (ran, watch) = tokio::join!(run, sampler::run(&watcher, EVERY, stopped));
        let took = t.elapsed();
        let watch = match watch {
            Ok(w) => w,
            Err(e) => return Outcome::CannotRun(format!("sampling pg_locks: {e}")),
        };
        let failed = match ran {
            Ok(_) => None,
            Err(crate::platform::PlatformError::Failed { detail, .. }) => Some(detail),
            Err(e) => return Outcome::CannotRun(format!("running the rehearsal task: {e}")),
        };
        settle(&watcher).await;
        let after = match catalog::snapshot(&watcher).await {
            Ok(a) => a,
            Err(e) => return Outcome::CannotRun(format!("reading the copy's catalog: {e}")),
        };
        if watch.sessions.is_empty() && before == after && failed.is_none() {
            return Outcome::CannotRun(format!(
                "the migration changed nothing in the scratch database and no session of it was \
                 seen there: nothing was pending, or `{command}` does not read DATABASE_URL or \
                 VCAP_SERVICES"
            ));
        }
        let findings = evidence::judge(&evidence::Inputs {
            before: &before,
            after: &after,
            watch: &watch,
            copied: &sampled.rows,
            sizes: &sizes,
            max_exclusive: *max_exclusive,
        });
        let tables: Vec<String> = before.values().map(|t| t.qualified()).collect();
        // Only where a static guard ran is its silence worth a line.
        let guarded = self
            .plugins
            .handling(Hook::MigrationSafetyCheck)
            .next()
            .is_some();
        let combined = match guarded {
            true => combine::combine(&self.static_findings, &findings, &tables),
            false => Vec::new(),
        };
        let statements = show::statements(&watch, 8);
        self.report.say(&format!(
            "  rehearsed on {name} ({}): schema restored in {}, {} rows copied from {} tables \
             in {}; the migration ran {}, watched by {} samples of pg_locks every {} (longest \
             gap {})",
            server.source,
            human(schema),
            show::count(sampled.rows.values().sum()),
            sampled.rows.len(),
            human(sampled.took),
            human(took),
            watch.samples,
            human(watch.interval()),
            human(Duration::from_secs_f64(watch.max_gap_ms / 1e3)),
        ));
        for f in &findings {
            let level = match f.severity {
                Severity::Error => "block",
                Severity::Warning => "warn",
                Severity::Info => "info",
            };
            self.report
                .say(&format!("    {level} {}: {}", f.rule, f.message));
        }
        for s in &statements {
            self.report.say(&format!("    statement {s}"));
        }
        for c in &combined {
            self.report.say(&format!("    {c}"));
        }
        self.report.event(json!({
            "event": "rehearsal", "status": "ran", "database": name,
            "schema_ms": schema.as_millis(), "sample_ms": sampled.took.as_millis(),
            "migration_ms": took.as_millis(), "samples": watch.samples,
            "interval_ms": watch.interval().as_secs_f64() * 1e3,
            "rows_copied": sampled.rows, "failed": failed,
            "findings": findings.iter().map(|f| json!({"severity": f.severity,
                "rule": f.rule, "table": f.table, "message": f.message})).collect::<Vec<_>>(),
            "statements": statements, "combined": combined,
        }));
        Outcome::Ran { findings, failed }
    }
}

/// Waits (up to 3 s) until the migration's sessions have left the copy:
/// a session's table statistics are written when it ends.
async fn settle(watcher: &tokio_postgres::Client) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let others = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .map(|r| r.get::<_, i64>(0));
        if !matches!(others, Ok(n) if n > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Statistics reach shared memory shortly after a backend exits.
    tokio::time::sleep(Duration::from_millis(50)).await;
}
