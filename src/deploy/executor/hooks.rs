//! Calling plugins at a hook: the context each gets, verdicts, health
//! checks polled within the color's health deadline, `--allow` overrides
//! recorded with who and why, and the best-effort on-failure hooks.

use super::{Executor, Stop};
use crate::deploy::journal::{Entry, OverrideRecord};
use crate::plugin::Hook;
use crate::plugin::context::{Color, DeployInfo, FailureInfo, HookContext, Target, Verdict};
use std::time::{Duration, Instant};

impl Executor {
    pub(super) fn context(
        &self,
        hook: Hook,
        color: Option<Color>,
        attempt: Option<u32>,
    ) -> HookContext {
        let r = &self.record;
        let target = color.unwrap_or(r.order[0]);
        HookContext {
            deploy: DeployInfo {
                id: r.id.clone(),
                app: r.app.clone(),
                release: r.release.clone(),
                previous_release: r.previous_release.clone(),
                route_url: self.site.route_url.clone(),
            },
            target: Target {
                color: target,
                app_name: self.site.app(target).name.clone(),
                candidate_url: self.candidates.get(&target).cloned().unwrap_or_default(),
                first: target == r.order[0],
            },
            attempt,
            pending: if hook == Hook::MigrationSafetyCheck {
                self.pending.clone()
            } else {
                Vec::new()
            },
            failure: None,
            analysis: if hook == Hook::Analyze {
                self.window.clone()
            } else {
                None
            },
            pause: None,
        }
    }

    /// Calls every plugin on `hook` in name order. A `block` stops the
    /// deploy; `retry-after` from a health check polls again within the
    /// color's health deadline, and elsewhere counts as a block.
    pub(super) async fn hooks(&mut self, hook: Hook, color: Option<Color>) -> Result<(), Stop> {
        if hook == Hook::HealthCheck
            && let Some(c) = color
            && !self.candidates.contains_key(&c)
        {
            // Resumed after an interruption: find the candidate again.
            let deadline = Instant::now() + self.file.health.timeout;
            self.health_deadline.insert(c, deadline);
            let url = self.site.candidate_url(c, deadline).await?;
            self.candidates.insert(c, url);
        }
        let names: Vec<String> = self
            .plugins
            .handling(hook)
            .map(|p| p.name.clone())
            .collect();
        for name in names {
            let mut attempt = 1;
            loop {
                let ctx = match hook {
                    Hook::HealthCheck => self.context(hook, color, Some(attempt)),
                    Hook::Analyze => self.context(hook, color, Some(self.window_attempt)),
                    _ => self.context(hook, color, None),
                };
                let plugin = self.plugins.named(&name);
                let candidate = color
                    .and_then(|c| self.candidates.get(&c))
                    .map(String::as_str);
                let mut config = self.plugins.config(&name, candidate);
                // Natively the candidate URL is the route's: the header
                // takes the plugin's requests to one new instance.
                if let (Some(pin), Some(url)) = (&self.native.pin, candidate)
                    && let Ok(origin) = crate::plugin::Origin::parse(url)
                {
                    config.sandbox.pin = Some((origin, pin.clone()));
                }
                // `bluegreen.*` settings come from the host alone, so a
                // plugin can trust them.
                config
                    .settings
                    .retain(|(k, _)| !k.starts_with("bluegreen."));
                if hook == Hook::MigrationSafetyCheck
                    && let Some(m) = &self.file.migrate
                {
                    let ms = m.lock_timeout.as_millis();
                    let t = if ms % 1000 == 0 {
                        format!("{}s", ms / 1000)
                    } else {
                        format!("{ms}ms")
                    };
                    config.settings.push(("bluegreen.lock-timeout".into(), t));
                }
                let t = Instant::now();
                let report = self
                    .plugins
                    .host
                    .run_hook(plugin, hook, &ctx, &config)
                    .await;
                let report = report.map_err(|e| Stop::Failed(e.into()))?;
                let verdict = report.outcome.verdict.clone();
                if hook == Hook::MigrationSafetyCheck {
                    let found = report.outcome.findings.iter().cloned();
                    self.static_findings.extend(found);
                }
                self.report.hook_result(
                    hook,
                    color,
                    &name,
                    &verdict,
                    t.elapsed(),
                    &report.outcome.findings,
                );
                self.report.plugin_output(&name, &report);
                let errors: Vec<String> = report
                    .outcome
                    .findings
                    .iter()
                    .filter(|f| f.severity == crate::plugin::context::Severity::Error)
                    .map(|f| f.rule.clone())
                    .collect();
                match verdict {
                    // Only `approval` abstains, and it is asked at pauses
                    // (`executor/approval.rs`), not here.
                    Verdict::Proceed | Verdict::Abstain => break,
                    Verdict::Block(_)
                        if !errors.is_empty() && errors.iter().all(|r| self.allow.contains(r)) =>
                    {
                        self.record_override(&name, hook, errors)?;
                        break;
                    }
                    Verdict::Block(reason) => {
                        return Err(Stop::Blocked(format!(
                            "plugin `{name}` blocked at {hook}: {}",
                            crate::output::printable(&reason)
                        )));
                    }
                    Verdict::RetryAfterMs(ms) if hook == Hook::Analyze => {
                        // Watch longer: the analysis grows the window, then
                        // asks every plugin again.
                        let wait = Duration::from_millis(ms.into());
                        self.watch_longer = Some(self.watch_longer.unwrap_or_default().max(wait));
                        break;
                    }
                    Verdict::RetryAfterMs(ms) => {
                        let wait = Duration::from_millis(ms.into());
                        let deadline = color.and_then(|c| self.health_deadline.get(&c)).copied();
                        match deadline {
                            Some(d) if hook == Hook::HealthCheck && Instant::now() + wait < d => {
                                tokio::time::sleep(wait).await;
                                attempt += 1;
                            }
                            Some(_) if hook == Hook::HealthCheck => {
                                return Err(Stop::Failed(anyhow::anyhow!(
                                    "plugin `{name}` still said retry after {attempt} attempts when the health timeout ran out"
                                )));
                            }
                            _ => {
                                return Err(Stop::Blocked(format!(
                                    "plugin `{name}` asked to retry {hook} in {} (only health checks are retried)",
                                    crate::units::human_duration(wait)
                                )));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn record_override(
        &mut self,
        plugin: &str,
        hook: Hook,
        rules: Vec<String>,
    ) -> anyhow::Result<()> {
        let by = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let rec = OverrideRecord {
            plugin: plugin.into(),
            hook,
            rules,
            reason: self.reason.clone(),
            by: format!("{by}@{}", crate::deploy::lock::hostname()),
        };
        self.journal.append(&Entry::Override(rec.clone()))?;
        self.report.event(
            serde_json::json!({"event": "override", "plugin": rec.plugin,
            "hook": hook.name(), "rules": rec.rules, "reason": rec.reason, "by": rec.by}),
        );
        self.report.say(&format!(
            "      overridden by {} with --allow {}: {}",
            rec.by,
            // The rules are the plugin's findings' own names.
            crate::output::printable(&rec.rules.join(",")),
            rec.reason
        ));
        self.overrides.push(rec);
        Ok(())
    }

    /// Best effort: an on-failure plugin cannot hide the first error.
    pub(super) async fn on_failure(&self, failure: FailureInfo) -> Vec<String> {
        let mut notes = Vec::new();
        for plugin in self.plugins.handling(Hook::OnFailure) {
            let mut ctx = self.context(Hook::OnFailure, failure.color, None);
            ctx.failure = Some(failure.clone());
            let config = self.plugins.config(&plugin.name, None);
            let t = Instant::now();
            match self
                .plugins
                .host
                .run_hook(plugin, Hook::OnFailure, &ctx, &config)
                .await
            {
                Ok(r) => self.report.hook_result(
                    Hook::OnFailure,
                    failure.color,
                    &plugin.name,
                    &r.outcome.verdict,
                    t.elapsed(),
                    &r.outcome.findings,
                ),
                Err(e) => notes.push(format!(
                    "on-failure plugin `{}` failed too: {e}",
                    crate::output::printable(&plugin.name)
                )),
            }
        }
        self.report.flush();
        notes
    }
}
