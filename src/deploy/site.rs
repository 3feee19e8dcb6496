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
pub use survey::{Mode, Survey};

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

/// How often a health check reads the color's process stats for crashes.
const CRASH_POLL: Duration = Duration::from_millis(50);
/// An instance seen crashing this many times is crash-looping ...
const CRASHES: u32 = 3;
/// ... and so is one seen crashed at every check for this long (its
/// restarts too quick to see, or the platform waiting longer between
/// them: locally 0.5 s, then 1, 2, 4 ... s; Diego restarts three times at
/// once, then waits 30 s and more).
const CRASHED_FOR: Duration = Duration::from_secs(3);
/// The app's output an error shows: its last lines, each cut at a length,
/// from at most this much of the log's end, read within this long.
const LOG_TAIL_LINES: usize = 20;
const LOG_LINE_CHARS: usize = 300;
const LOG_TAIL_BYTES: usize = 256 << 10;
const LOG_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What a health check has seen of the color's instances crashing, from
/// its reads of their process stats: an instance crashes when a read finds
/// it `CRASHED` and the read before did not.
#[derive(Debug, Default)]
pub struct CrashWatch {
    seen: BTreeMap<(String, u32), Crashes>,
}

#[derive(Debug, Default)]
struct Crashes {
    count: u32,
    /// When the reads began to find it crashed, while they still do.
    since: Option<Instant>,
}

impl CrashWatch {
    /// Takes one read of a process type's stats; says what it saw once an
    /// instance crash-loops: [`CRASHES`] crashes, or [`CRASHED_FOR`] crashed.
    pub fn observe(
        &mut self,
        kind: &str,
        stats: &[v3::ProcessStats],
        now: Instant,
    ) -> Option<String> {
        for s in stats {
            let seen = self.seen.entry((kind.to_string(), s.index)).or_default();
            if s.state != "CRASHED" {
                seen.since = None;
                continue;
            }
            let since = *seen.since.get_or_insert_with(|| {
                seen.count += 1;
                now
            });
            let what = format!("its `{kind}` instance {}", s.index);
            if seen.count >= CRASHES {
                return Some(format!("{what} crashed {} times", seen.count));
            }
            if now.duration_since(since) >= CRASHED_FOR {
                return Some(format!(
                    "{what} crashed and stayed down for {}",
                    crate::units::human_duration(now.duration_since(since))
                ));
            }
        }
        None
    }

    /// How many crashes it saw.
    pub fn crashes(&self) -> u32 {
        self.seen.values().map(|c| c.count).sum()
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
    pub mode: Mode,
    /// An app pushed before bluegreen that serves the route (see `survey`).
    pub adopted: Option<v3::App>,
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

/// `--org` and `--space`, which win over `CF_ORG`/`CF_SPACE` (set once, by
/// the command line).
static TARGET: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();

/// Deploys in this run go to `org`/`space` (`-o`/`-s`).
pub fn set_target(org: String, space: String) {
    let _ = TARGET.set((org, space));
}

/// The org and space to deploy to: `-o`/`-s`, else `CF_ORG`/`CF_SPACE`, else
/// the cf login's target.
fn cf_target() -> Result<(String, String), PlatformError> {
    if let Some(t) = TARGET.get() {
        return Ok(t.clone());
    }
    cf_target_from(|k| std::env::var(k).ok())
}

/// Where a `platform: cf` deploy goes, for `plan`: `org/space`, or why it
/// cannot be told.
pub fn describe_target() -> String {
    match cf_target() {
        Ok((o, s)) => format!("org {o}, space {s}"),
        Err(e) => format!("no org and space ({e})"),
    }
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
        self.apps
            .get(&color)?
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

    /// Whether `color` serves the route now: mapped, with an instance the
    /// platform runs, answering one health check on its own URL. `Err`
    /// says why not.
    pub async fn serves_now(
        &self,
        color: Color,
        health: &crate::config::Health,
    ) -> Result<(), String> {
        if !self.mapped(color).await.map_err(|e| e.to_string())? {
            return Err(format!("{color} is not on the route"));
        }
        let url = self
            .candidate_url(color, Instant::now())
            .await
            .map_err(|e| format!("{e:#}"))?;
        let client = super::health::client(health.request_timeout);
        let url = format!("{}{}", url.trim_end_matches('/'), health.path);
        super::health::check(&client, &url, health)
            .await
            .map_err(|why| format!("{color} is on the route but not healthy: {url}: {why}"))
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
    /// URL is looked up again between rounds of probing. An app that
    /// crashes as it starts fails as soon as it has crashed repeatedly (see
    /// [`CrashWatch`]), not at the deadline; then, and whenever it crashed
    /// before a failure, the error ends with its last lines of output.
    pub async fn check_healthy(
        &self,
        color: Color,
        health: &crate::config::Health,
        deadline: Instant,
    ) -> anyhow::Result<String> {
        let watch = std::sync::Mutex::new(CrashWatch::default());
        let (failed, looping) = tokio::select! {
            checked = self.until_healthy(color, health, deadline) => match checked {
                Ok(url) => return Ok(url),
                Err(e) => (e, false),
            },
            looping = self.crash_loop(color, &watch) => (anyhow::anyhow!(looping), true),
        };
        let crashes = watch.lock().unwrap().crashes();
        if crashes == 0 {
            return Err(failed);
        }
        // A refused connection or a timeout may be no more than a crash:
        // say it crashed, and what it wrote, after the error (a context
        // would come first).
        let crashed = match (looping, crashes) {
            (true, _) => String::new(),
            (false, 1) => format!("{} crashed once meanwhile. ", self.app(color).name),
            (false, n) => format!("{} crashed {n} times meanwhile. ", self.app(color).name),
        };
        let output = self.last_output(color).await;
        Err(anyhow::anyhow!("{failed:#}\n{crashed}{output}"))
    }

    async fn until_healthy(
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

    /// Reads `color`'s process stats until an instance crash-loops (see
    /// [`CrashWatch`]); returns what it saw. Never returns otherwise: a
    /// platform error here is the health check's to report, so it reads
    /// again.
    async fn crash_loop(&self, color: Color, watch: &std::sync::Mutex<CrashWatch>) -> String {
        let app = self.app(color);
        let started = Instant::now();
        let processes = loop {
            match self.client.processes(&app.guid).await {
                Ok(p) => break p,
                Err(_) => tokio::time::sleep(CRASH_POLL).await,
            }
        };
        loop {
            for p in processes.iter().filter(|p| p.instances > 0) {
                let Ok(stats) = self.client.process_stats(&p.guid).await else {
                    continue;
                };
                let seen = watch
                    .lock()
                    .unwrap()
                    .observe(&p.kind, &stats, Instant::now());
                if let Some(seen) = seen {
                    return format!(
                        "{} crashes as it starts: {seen} within {} (the platform restarts it \
                         after a growing wait), so the deploy stops here instead of waiting \
                         out `health.timeout`",
                        app.name,
                        crate::units::human_duration(started.elapsed())
                    );
                }
            }
            tokio::time::sleep(CRASH_POLL).await;
        }
    }

    /// The last lines of `color`'s output, escaped, as a paragraph of an
    /// error; on Cloud Foundry, where to read them.
    pub async fn last_output(&self, color: Color) -> String {
        let app = self.app(color);
        if self.kind == PlatformKind::Cf {
            return format!(
                "Its output: `cf logs {} --recent` (bluegreen does not read app logs from \
                 Cloud Foundry yet)",
                app.name
            );
        }
        let read = self.client.app_log(&app.guid, LOG_TAIL_BYTES);
        let log = match tokio::time::timeout(LOG_READ_TIMEOUT, read).await {
            Ok(Ok(log)) => log,
            Ok(Err(e)) => return format!("Its output could not be read: {e}"),
            Err(_) => {
                return format!(
                    "Its output could not be read within {}",
                    crate::units::human_duration(LOG_READ_TIMEOUT)
                );
            }
        };
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        if tail.is_empty() {
            return "It wrote no output.".into();
        }
        let mut text = format!(
            "Its last {} of output (`bluegreen logs --color {color}` shows more):",
            if tail.len() == 1 {
                "line".to_string()
            } else {
                format!("{} lines", tail.len())
            }
        );
        for line in tail {
            let shown: String = line.chars().take(LOG_LINE_CHARS).collect();
            let more = if shown.len() < line.len() { "…" } else { "" };
            text.push_str(&format!(
                "\n    | {}{more}",
                crate::output::printable(&shown)
            ));
        }
        text
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

    fn stats(states: &[&str]) -> Vec<v3::ProcessStats> {
        states
            .iter()
            .enumerate()
            .map(|(i, s)| v3::ProcessStats {
                kind: "web".into(),
                index: i as u32,
                state: s.to_string(),
                host: None,
                instance_ports: vec![],
                uptime: None,
                mem_quota: None,
            })
            .collect()
    }

    /// «19 · The first hour»: an app that crashed on boot was waited for
    /// until the health timeout. Three crashes seen, or one crash that
    /// stays down across the checks for `CRASHED_FOR`, is a crash loop.
    #[test]
    fn a_crash_loop_is_three_crashes_or_one_that_stays_down() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        let mut w = CrashWatch::default();
        assert_eq!(w.observe("web", &stats(&["STARTING"]), ms(0)), None);
        assert_eq!(w.observe("web", &stats(&["CRASHED"]), ms(50)), None);
        // Still the same crash.
        assert_eq!(w.observe("web", &stats(&["CRASHED"]), ms(400)), None);
        assert_eq!(w.observe("web", &stats(&["STARTING"]), ms(600)), None);
        assert_eq!(w.observe("web", &stats(&["CRASHED"]), ms(650)), None);
        assert_eq!(w.observe("web", &stats(&["RUNNING"]), ms(1700)), None);
        assert_eq!(w.crashes(), 2);
        assert_eq!(
            w.observe("web", &stats(&["CRASHED"]), ms(1750)).as_deref(),
            Some("its `web` instance 0 crashed 3 times")
        );

        // Restarts too quick to see: down at every check for 3 s.
        let mut w = CrashWatch::default();
        assert_eq!(
            w.observe("web", &stats(&["RUNNING", "CRASHED"]), ms(0)),
            None
        );
        assert_eq!(
            w.observe("web", &stats(&["RUNNING", "CRASHED"]), ms(2900)),
            None
        );
        assert_eq!(
            w.observe("web", &stats(&["RUNNING", "CRASHED"]), ms(3000))
                .as_deref(),
            Some("its `web` instance 1 crashed and stayed down for 3s")
        );

        // Instances of each process type count on their own.
        let mut w = CrashWatch::default();
        for (i, state) in ["CRASHED", "RUNNING", "CRASHED", "RUNNING"]
            .iter()
            .enumerate()
        {
            let kind = if i % 2 == 0 { "web" } else { "worker" };
            assert_eq!(w.observe(kind, &stats(&[state]), ms(i as u64)), None);
        }
        assert_eq!(w.crashes(), 1);
    }

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
