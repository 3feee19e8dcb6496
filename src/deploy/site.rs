//! Where a deploy acts: the platform client, the space, the shared route and
//! the two color apps, found once up front (`Survey`, read-only) and on a
//! deploy created only once it holds the app's lock.
//!
//! On the local platform a color's own URL is its process's port on
//! 127.0.0.1 (from the process stats); on Cloud Foundry it is a per-color
//! route `<color-app>.<domain>`, mapped once and never taken away, so health
//! probes never go through the shared route.

use super::journal::ColorBefore;
use crate::config::{DeployFile, PlatformKind};
use crate::platform::local;
use crate::platform::{PlatformError, client::CfClient, v3};
use crate::plugin::context::Color;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod survey;
pub use survey::Survey;

/// Annotations bluegreen keeps on each color app, so another machine can see
/// what runs where.
pub const RELEASE: &str = "bluegreen.dev/release";
pub const PREVIOUS_RELEASE: &str = "bluegreen.dev/previous-release";
pub const PREVIOUS_DROPLET: &str = "bluegreen.dev/previous-droplet";
pub const DEPLOYED_AT: &str = "bluegreen.dev/deployed-at";

/// One process type of a color, for `status`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ProcessSummary {
    #[serde(rename = "type")]
    pub kind: String,
    pub instances: u32,
    pub running: u32,
    pub memory_mb: Option<u64>,
}

impl std::fmt::Display for ProcessSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}/{} running",
            self.kind, self.running, self.instances
        )?;
        match self.memory_mb {
            Some(m) => write!(f, " ({m} MB each)"),
            None => Ok(()),
        }
    }
}

pub struct Site {
    pub client: CfClient,
    pub kind: PlatformKind,
    pub route: v3::Route,
    pub route_url: String,
    pub domain: String,
    pub apps: BTreeMap<Color, v3::App>,
    /// The deploy file's `services`, found before anything was created.
    pub services: Vec<v3::ServiceInstance>,
    pub space_guid: String,
}

/// How to reach the platform a deploy file names.
pub async fn connect(
    file: &DeployFile,
    start_local: bool,
) -> anyhow::Result<Option<(CfClient, u16)>> {
    match file.platform {
        PlatformKind::Local => {
            let config = local::Config::from_env();
            let found = if start_local {
                Some(local::ensure_running(&config).await?)
            } else {
                local::connect(&config.dir).await
            };
            Ok(found.map(|(endpoint, client)| (client, endpoint.router_port)))
        }
        PlatformKind::Cf => {
            crate::platform::trust::load()?;
            Ok(Some((
                CfClient::for_cloud_foundry(|k| std::env::var(k).ok())?,
                443,
            )))
        }
    }
}

/// The org and space to deploy to: `CF_ORG`/`CF_SPACE`, else the cf login's target.
fn cf_target() -> Result<(String, String), PlatformError> {
    cf_target_from(|k| std::env::var(k).ok())
}

fn cf_target_from(var: impl Fn(&str) -> Option<String>) -> Result<(String, String), PlatformError> {
    let var = |k: &str| var(k).filter(|v| !v.is_empty());
    match (var("CF_ORG"), var("CF_SPACE")) {
        (Some(o), Some(s)) => return Ok((o, s)),
        // One alone would be dropped for the login's target without a word:
        // a deploy to a space nobody named.
        (Some(_), None) | (None, Some(_)) => {
            let (set, unset) = if var("CF_ORG").is_some() {
                ("CF_ORG", "CF_SPACE")
            } else {
                ("CF_SPACE", "CF_ORG")
            };
            return Err(PlatformError::Auth(format!(
                "{set} is set but {unset} is not: set both, or neither to deploy to the cf \
                 login's target (`cf target`)"
            )));
        }
        (None, None) => {}
    }
    let home = var("CF_HOME").or_else(|| var("HOME")).unwrap_or_default();
    let config = crate::platform::auth::CfConfig::load(
        &std::path::Path::new(&home).join(".cf").join("config.json"),
    )?;
    Ok((config.organization_fields.name, config.space_fields.name))
}

fn missing(what: String) -> PlatformError {
    PlatformError::Failed {
        what,
        detail: "not found (check the name, or run `cf target`)".into(),
    }
}

impl Site {
    /// Finds the space, route and color apps; with `create`, makes the ones
    /// missing (creating an app or route serves no traffic yet).
    pub async fn open(
        file: &DeployFile,
        client: CfClient,
        router_port: u16,
        create: bool,
    ) -> anyhow::Result<Option<Site>> {
        let survey = Site::survey(file, client, router_port, create).await?;
        if create {
            survey.create(file).await.map(Some)
        } else {
            Ok(survey.found(file))
        }
    }

    async fn ensure_color_route(
        &self,
        color: Color,
        domain_guid: &str,
        space_guid: &str,
    ) -> Result<(), PlatformError> {
        let app = self.app(color);
        let route = match self
            .client
            .find_route(domain_guid, space_guid, &app.name)
            .await?
        {
            Some(r) => r,
            None => {
                self.client
                    .create_route(domain_guid, space_guid, &app.name)
                    .await?
            }
        };
        if !route.destinations.iter().any(|d| d.app.guid == app.guid) {
            self.client.map_route(&route.guid, &app.guid).await?;
        }
        Ok(())
    }

    /// Binds the deploy's services to `color` where not bound yet; they
    /// reach the app's environment at its next restart.
    pub async fn bind_services(
        &self,
        color: Color,
        timeout: Duration,
    ) -> Result<(), PlatformError> {
        for s in &self.services {
            self.client
                .bind_service(&s.guid, &self.app(color).guid, timeout)
                .await?;
        }
        Ok(())
    }

    pub fn app(&self, color: Color) -> &v3::App {
        &self.apps[&color]
    }

    pub fn annotation(&self, color: Color, key: &str) -> Option<String> {
        self.app(color)
            .metadata
            .annotations
            .get(key)
            .cloned()
            .flatten()
    }

    pub async fn mapped(&self, color: Color) -> Result<bool, PlatformError> {
        let guid = &self.app(color).guid;
        Ok(self
            .client
            .destinations(&self.route.guid)
            .await?
            .iter()
            .any(|d| &d.app.guid == guid))
    }

    pub async fn before(&self, color: Color) -> Result<ColorBefore, PlatformError> {
        Ok(ColorBefore {
            droplet: self.client.current_droplet(&self.app(color).guid).await?,
            release: self.annotation(color, RELEASE),
            mapped: self.mapped(color).await?,
            deployed_at: self.annotation(color, DEPLOYED_AT),
            env: Some(self.client.get_env(&self.app(color).guid).await?),
        })
    }

    /// Re-reads the color apps (their annotations change during a deploy).
    pub async fn refresh(&mut self) -> Result<(), PlatformError> {
        for app in self.apps.values_mut() {
            *app = self.client.get_app(&app.guid).await?;
        }
        Ok(())
    }

    /// Which color runs the newest release: the one deployed last.
    pub fn newest(&self) -> Option<Color> {
        [Color::Blue, Color::Green]
            .into_iter()
            .filter_map(|c| self.annotation(c, DEPLOYED_AT).map(|t| (t, c)))
            .max()
            .map(|(_, c)| c)
    }

    /// The colors serving now: on the route, with an instance the platform
    /// counts as running.
    pub async fn serving(&self) -> Result<Vec<Color>, PlatformError> {
        let destinations = self.client.destinations(&self.route.guid).await?;
        let mut serving = Vec::new();
        for c in [Color::Blue, Color::Green] {
            let guid = &self.app(c).guid;
            if !destinations.iter().any(|d| &d.app.guid == guid) {
                continue;
            }
            let process = self.client.web_process(guid).await?;
            let stats = self.client.process_stats(&process.guid).await?;
            if stats.iter().any(|s| s.state == "RUNNING") {
                serving.push(c);
            }
        }
        Ok(serving)
    }

    /// The colors in deploy order (see `plan::order`).
    pub async fn order(&self) -> Result<[Color; 2], PlatformError> {
        Ok(super::plan::order(self.newest(), &self.serving().await?))
    }

    /// Polls the color's process stats until `found` picks something out
    /// of them, or `deadline` passes (the error names what was seen).
    async fn poll_stats<T>(
        &self,
        color: Color,
        deadline: Instant,
        what: &str,
        found: impl Fn(&[v3::ProcessStats]) -> Option<T>,
    ) -> anyhow::Result<T> {
        let app = self.app(color);
        let process = self.client.web_process(&app.guid).await?;
        loop {
            let stats = self.client.process_stats(&process.guid).await?;
            if let Some(t) = found(&stats) {
                return Ok(t);
            }
            if Instant::now() >= deadline {
                let states: Vec<&str> = stats.iter().map(|s| s.state.as_str()).collect();
                anyhow::bail!("{} {what} (states: {})", app.name, states.join(", "));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the platform itself counts every instance of every
    /// process of `color` as running (`web` ×N and the workers): its router
    /// sends traffic only there, so a color is mapped (and the other one
    /// unmapped, its workers stopped) only once this and the probe agree.
    pub async fn until_running(&self, color: Color, deadline: Instant) -> anyhow::Result<()> {
        let app = self.app(color);
        let processes = self.client.processes(&app.guid).await?;
        for p in processes.iter().filter(|p| p.instances > 0) {
            loop {
                let stats = self.client.process_stats(&p.guid).await?;
                let running = stats.iter().filter(|s| s.state == "RUNNING").count();
                if running >= p.instances as usize {
                    break;
                }
                if Instant::now() >= deadline {
                    let states: Vec<&str> = stats.iter().map(|s| s.state.as_str()).collect();
                    anyhow::bail!(
                        "{}: {running} of {} `{}` instances running according to the platform (states: {})",
                        app.name,
                        p.instances,
                        p.kind,
                        states.join(", ")
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// Each process of `color`: its type, wanted instances, how many run,
    /// and its memory limit.
    pub async fn processes(&self, color: Color) -> Result<Vec<ProcessSummary>, PlatformError> {
        let mut out = Vec::new();
        for p in self.client.processes(&self.app(color).guid).await? {
            let stats = self.client.process_stats(&p.guid).await?;
            out.push(ProcessSummary {
                running: stats.iter().filter(|s| s.state == "RUNNING").count() as u32,
                kind: p.kind,
                instances: p.instances,
                memory_mb: p.memory_in_mb,
            });
        }
        Ok(out)
    }

    /// The instance count `color`'s web process runs now, if it runs.
    pub async fn live_instances(&self, color: Color) -> Result<Option<u32>, PlatformError> {
        let app = self.client.get_app(&self.app(color).guid).await?;
        if app.state != "STARTED" {
            return Ok(None);
        }
        Ok(Some(self.client.web_process(&app.guid).await?.instances))
    }

    /// Probes `color`'s own URL until healthy (see `health::probe`) and
    /// waits until the platform counts it as running; returns the URL.
    /// Locally an instance that crashed comes back on another port, so the
    /// URL is looked up again between rounds of probing.
    pub async fn check_healthy(
        &self,
        color: Color,
        health: &crate::config::Health,
        deadline: Instant,
    ) -> anyhow::Result<String> {
        let started = Instant::now();
        let round = (health.interval * (health.successes + 1)).max(Duration::from_secs(1));
        let url = loop {
            let url = self.candidate_url(color, deadline).await?;
            let until = match self.kind {
                PlatformKind::Local => (Instant::now() + round).min(deadline),
                PlatformKind::Cf => deadline,
            };
            match super::health::probe(&url, health, until).await {
                Ok(_) => break url,
                Err(_) if Instant::now() + health.interval < deadline => continue,
                Err(e) => {
                    return Err(super::health::Unhealthy {
                        waited: started.elapsed(),
                        ..e
                    }
                    .into());
                }
            }
        };
        self.until_running(color, deadline).await?;
        Ok(url)
    }

    /// The color's own URL, never the shared route. Locally this waits (up
    /// to `deadline`) for the process to report its port.
    pub async fn candidate_url(&self, color: Color, deadline: Instant) -> anyhow::Result<String> {
        if self.kind == PlatformKind::Cf {
            return Ok(format!("https://{}.{}", self.app(color).name, self.domain));
        }
        let port = |stats: &[v3::ProcessStats]| {
            stats
                .iter()
                .find(|s| s.state != "DOWN" && s.state != "CRASHED")
                .and_then(|s| s.instance_ports.first())
                .map(|p| format!("http://127.0.0.1:{}", p.internal))
        };
        self.poll_stats(color, deadline, "has no running instance", port)
            .await
    }
}

#[cfg(test)]
mod target_tests {
    use super::*;

    #[test]
    fn cf_org_and_cf_space_work_only_as_a_pair() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let both = cf_target_from(env(&[("CF_ORG", "o"), ("CF_SPACE", "s")])).unwrap();
        assert_eq!(both, ("o".to_string(), "s".to_string()));
        let err = cf_target_from(env(&[("CF_ORG", "o")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("CF_ORG is set but CF_SPACE is not"), "{err}");
        let err = cf_target_from(env(&[("CF_SPACE", "s")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("CF_SPACE is set but CF_ORG is not"), "{err}");
    }
}
