//! The deploy file, `bluegreen.yaml`: serde types with every field checked,
//! and errors that name the file, line, column and field, and say how to fix
//! the input. Unknown fields are rejected (a typo must not be ignored).

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// bluegreen's deploy file (`bluegreen.yaml`): one app, its two colors,
/// their route, health checks, migrations, plugins and rollout strategy.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "bluegreen.yaml")]
pub struct DeployFile {
    /// The application's name (lowercase letters, digits and dashes); colors
    /// default to `<app>-blue`/`<app>-green`.
    #[schemars(pattern(r"^[a-z0-9-]+$"))]
    #[schemars(extend("patternErrorMessage" = "Lowercase letters, digits and dashes only."))]
    pub app: String,
    /// Where to deploy: `local` (the embedded local platform, default) or
    /// `cf` (a Cloud Foundry foundation, credentials from the cf CLI).
    #[serde(default)]
    pub platform: PlatformKind,
    /// The two apps the colors are (default: `<app>-blue` and `<app>-green`).
    #[serde(default)]
    pub colors: Option<Colors>,
    /// The shared route: a host name (default: the app name), or a host
    /// and its domain (`shop.example.com`).
    #[serde(default)]
    #[schemars(pattern(r"^[a-z0-9-]+(\..*)?$"))]
    #[schemars(extend("patternErrorMessage" = "A host name (lowercase letters, digits and \
        dashes), or one followed by its domain: `shop.example.com`."))]
    pub route: Option<String>,
    /// The route's domain on Cloud Foundry (default: the one in `route`,
    /// else the manifest's route's, else the foundation's only domain).
    #[serde(default)]
    pub domain: Option<String>,
    /// The app directory, relative to the deploy file (default `.`).
    #[serde(default = "dot")]
    pub path: PathBuf,
    /// The start command (default: the manifest's, else the app's Procfile
    /// `web:` line).
    #[serde(default)]
    pub command: Option<String>,
    /// Environment variables for both colors (a number or boolean is passed
    /// as its text).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, super::schema::Scalar>")]
    pub env: BTreeMap<String, String>,
    /// How a color is judged healthy after it takes a release: an HTTP probe
    /// of the color's own URL.
    #[serde(default)]
    pub health: Health,
    /// How long to wait at most for in-flight requests to finish after
    /// unmapping a color. The local platform counts them and the drain ends
    /// when none is left; on Cloud Foundry the whole time is waited.
    /// Requests still in flight at its end are cut when the color restarts,
    /// and the deploy warns (`drain-cut`). The same drain comes before
    /// anything leaves the route to stop: an app pushed before bluegreen
    /// whose route the colors adopt, and a color an undo takes off the route.
    #[serde(default = "default_drain", with = "crate::config::duration")]
    #[schemars(with = "super::schema::HumanDuration")]
    pub drain: Duration,
    /// Database migrations: run once, on the first color's new release,
    /// before it is mapped.
    #[serde(default)]
    pub migrate: Option<Migrate>,
    /// Service instances bound to both colors (`DATABASE_URL`, `VCAP_SERVICES`):
    /// a name, or `{name, type: postgres}` to have the local platform create it.
    #[serde(default)]
    pub services: Vec<ServiceRef>,
    /// Hook plugins (WebAssembly components): where they are, which built-in
    /// ones run, and each one's settings, grants and limits.
    #[serde(default)]
    pub plugins: Plugins,
    /// `blue-green` (default), `canary` (with `steps`), or Cloud Foundry's
    /// own deployments: `cf-canary` (with `steps`) and `cf-rolling`.
    #[serde(default)]
    pub strategy: super::analysis::Strategy,
    /// Canary: the first color's share of the route's requests, in percent,
    /// at each step; the last is 100. `cf-canary`: the share of instances
    /// on the new release at each pause.
    /// (The percents of `step_list`, which holds the pauses too.)
    #[serde(skip)]
    pub steps: Vec<u8>,
    /// `canary`: the first color's share of the route's requests in percent
    /// at each step, growing to 100; `cf-canary`: the share of instances on
    /// the new release. `pause` (or `{pause: 10m}`) between steps holds the
    /// release until `bluegreen resume` (or for that long). E.g.
    /// `[10, pause, 50, 100]`.
    #[serde(rename = "steps", default)]
    #[schemars(with = "super::schema::Steps")]
    pub step_list: super::steps::StepList,
    /// `cf-canary`/`cf-rolling`: how many new instances CF starts at once
    /// (default: CF's, 1).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_in_flight: Option<u32>,
    /// `cf-canary`/`cf-rolling` on a foundation that cannot run them:
    /// `blue-green` (default: two colors instead, said so) or `none`.
    #[serde(default)]
    pub fallback: super::analysis::Fallback,
    /// Warm standby (Argo Rollouts' `scaleDownDelaySeconds`): only the idle
    /// color gets the new release, and the color it replaces stays running
    /// off the route on the previous release this long (at most 7d), so
    /// `bluegreen rollback` maps it again without a push; then it is
    /// stopped. Only with `strategy: blue-green` and no `migrate.post_dirs`.
    #[serde(default, with = "crate::config::duration::option")]
    #[schemars(with = "Option<super::schema::HumanDuration>")]
    pub scale_down_delay: Option<Duration>,
    /// Judge each color on live traffic after it is mapped (and at each
    /// canary step); `canary` and `cf-canary` use the defaults when this is
    /// absent.
    #[serde(default)]
    pub analysis: Option<super::analysis::Analysis>,
    /// An org policy file, relative to the deploy file (overridden by
    /// `--policy` and `BLUEGREEN_POLICY`; layered on the system policy).
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// A Cloud Foundry `manifest.yml` (relative to the deploy file) applied
    /// to each color: instances, memory, processes, health checks, env,
    /// services, buildpacks ... (`routes` excepted: bluegreen owns the route).
    #[serde(default)]
    pub manifest: Option<PathBuf>,
    /// Which app of a multi-app `manifest` this is (default: its only one).
    #[serde(default)]
    pub manifest_app: Option<String>,
    /// `manifest`, read when the file is loaded.
    #[serde(skip)]
    pub cf_manifest: Option<super::manifest::Manifest>,
}

fn dot() -> PathBuf {
    PathBuf::from(".")
}

fn default_drain() -> Duration {
    Duration::from_secs(2)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlatformKind {
    /// The embedded local platform: apps as processes behind a router.
    #[default]
    Local,
    /// Cloud Foundry (or Korifi), through the cf CLI's login.
    Cf,
}

#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Colors {
    /// The blue color's app name (must differ from `green`; not ending in
    /// `-bluegreen-lock`, which names bluegreen's lock apps).
    #[schemars(pattern(r"^(?!.*-bluegreen-lock$)"))]
    #[schemars(extend("patternErrorMessage" = LOCK_APP_HINT))]
    pub blue: String,
    /// The green color's app name (must differ from `blue`; not ending in
    /// `-bluegreen-lock`).
    #[schemars(pattern(r"^(?!.*-bluegreen-lock$)"))]
    #[schemars(extend("patternErrorMessage" = LOCK_APP_HINT))]
    pub green: String,
}

const LOCK_APP_HINT: &str = "Names ending in `-bluegreen-lock` are bluegreen's lock apps.";
const SERVICE_NAME_HINT: &str = "Letters, digits, `-` and `_` only.";

#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Health {
    /// The path probed on the color's own URL; starts with `/`.
    #[schemars(pattern(r"^/"))]
    #[schemars(extend("patternErrorMessage" = "Start the path with `/`."))]
    pub path: String,
    /// The HTTP status a healthy answer has.
    pub status: u16,
    /// Text a healthy answer's body must contain (default: any body).
    pub body: Option<String>,
    /// How long one probe may take before it counts as unhealthy.
    #[serde(with = "crate::config::duration")]
    #[schemars(with = "super::schema::HumanDuration")]
    pub request_timeout: Duration,
    /// The time between probes (above zero).
    #[serde(with = "crate::config::duration")]
    #[schemars(with = "super::schema::HumanDuration")]
    pub interval: Duration,
    /// How long a color may take to become healthy before it is rolled back
    /// (at least one `interval`).
    #[serde(with = "crate::config::duration")]
    #[schemars(with = "super::schema::HumanDuration")]
    pub timeout: Duration,
    /// Consecutive healthy answers needed.
    #[schemars(range(min = 1))]
    pub successes: u32,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            path: "/".into(),
            status: 200,
            body: None,
            request_timeout: Duration::from_secs(2),
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(60),
            successes: 1,
        }
    }
}

/// An entry of `services`: the name of an existing instance, or
/// `{name, type}`, which the local platform creates when it is missing.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "a service name, or `{ name: NAME, type: postgres }`"
)]
pub enum ServiceRef {
    /// An existing service instance, by name.
    Name(
        #[schemars(pattern(r"^[A-Za-z0-9_-]+$"))]
        #[schemars(extend("patternErrorMessage" = SERVICE_NAME_HINT))]
        String,
    ),
    /// A service instance the local platform creates when it is missing.
    Declared(DeclaredService),
}

#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclaredService {
    /// The instance's name (letters, digits, `-` and `_`).
    #[schemars(pattern(r"^[A-Za-z0-9_-]+$"))]
    #[schemars(extend("patternErrorMessage" = SERVICE_NAME_HINT))]
    pub name: String,
    /// The kind of instance to create: `postgres` (a real PostgreSQL the
    /// local platform runs).
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["postgres"]))]
    pub kind: String,
}

impl ServiceRef {
    pub fn name(&self) -> &str {
        match self {
            ServiceRef::Name(n) => n,
            ServiceRef::Declared(d) => &d.name,
        }
    }

    /// The type to create it with, when the file declares one.
    pub fn kind(&self) -> Option<&str> {
        match self {
            ServiceRef::Name(_) => None,
            ServiceRef::Declared(d) => Some(&d.kind),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Migrate {
    /// The migration command, run once as a task on the first color's new
    /// release (e.g. `bin/rails db:migrate`).
    pub command: String,
    /// Directories of expand migrations, relative to the app (shown to
    /// `migration-safety-check` plugins).
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Directories of contract migrations, run after both colors switched.
    #[serde(default)]
    pub post_dirs: Vec<PathBuf>,
    /// How the migration files are written: `rails` or `sql`.
    #[serde(default)]
    pub kind: MigrationKind,
    /// PostgreSQL `lock_timeout` for the migration (through `PGOPTIONS`): a
    /// migration waiting for a lock gives up instead of queueing the site's
    /// queries behind it.
    #[serde(default = "default_lock_timeout", with = "crate::config::duration")]
    #[schemars(with = "super::schema::HumanDuration")]
    pub lock_timeout: Duration,
    /// PostgreSQL `statement_timeout` for the migration (default: none).
    #[serde(default, with = "crate::config::duration::option")]
    #[schemars(with = "Option<super::schema::HumanDuration>")]
    pub statement_timeout: Option<Duration>,
    /// How often a migration that hit the lock timeout is tried again (at
    /// most 20).
    #[serde(default = "default_retries")]
    #[schemars(range(max = 20))]
    pub retries: u32,
    /// Rehearse the migration on a scratch copy of the schema first and
    /// watch its locks: `true`, or `{sample_rows, max_exclusive, required}`.
    #[serde(default)]
    #[schemars(with = "super::schema::RehearseSchema")]
    pub rehearse: super::rehearse::Rehearse,
}

fn default_lock_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_retries() -> u32 {
    3
}

impl Migrate {
    /// `PGOPTIONS` for the migration task: libpq reads it at connect, so any
    /// framework's migrations get the timeouts.
    pub fn pgoptions(&self) -> String {
        let mut opts = format!("-c lock_timeout={}ms", self.lock_timeout.as_millis());
        if let Some(t) = self.statement_timeout {
            opts.push_str(&format!(" -c statement_timeout={}ms", t.as_millis()));
        }
        opts
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MigrationKind {
    /// Rails migrations (`db/migrate/*.rb`).
    #[default]
    Rails,
    /// Plain SQL files.
    Sql,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Plugins {
    /// The plugin directory, relative to the deploy file: every `*.wasm` in
    /// it runs, ordered by name (default: none).
    pub dir: Option<PathBuf>,
    /// First-party plugins compiled into bluegreen, by name
    /// (`bluegreen plugin list`).
    #[schemars(with = "Vec<super::schema::BuiltinName>")]
    pub builtin: Vec<String>,
    /// Settings, grants and limits per plugin, by plugin name (its file name
    /// without `.wasm`).
    pub config: BTreeMap<String, PluginSettings>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PluginSettings {
    /// Settings the plugin reads: text, numbers, booleans, or lists of them
    /// (which reach the plugin joined with commas).
    #[serde(deserialize_with = "super::settings::map")]
    #[schemars(with = "super::schema::Settings")]
    pub settings: BTreeMap<String, String>,
    /// Directories the plugin may read, relative to the deploy file
    /// (read-only).
    pub grant_dirs: Vec<PathBuf>,
    /// Origins the plugin may send HTTP requests to (`http://127.0.0.1:9000`),
    /// or `candidate`: the color being deployed.
    #[schemars(with = "Vec<super::schema::OriginText>")]
    pub allow_http: Vec<String>,
    /// How long one call of the plugin may run (default: 5s).
    #[serde(with = "crate::config::duration::option")]
    #[schemars(with = "Option<super::schema::HumanDuration>")]
    pub timeout: Option<Duration>,
    /// The most memory the plugin may use, e.g. `64MiB`, `512k`, `1G`
    /// (default: 64MiB).
    #[schemars(with = "Option<super::schema::SizeText>")]
    pub memory: Option<String>,
    /// What a plugin that malfunctions (traps, times out, errs) does:
    /// `block` the deploy (default) or `warn` and go on.
    pub on_error: Option<crate::plugin::OnError>,
}

/// In `allow_http`: the candidate color's own URL, known only during the deploy.
pub const CANDIDATE: &str = "candidate";

/// A deploy file error: where, what, and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}{}", hint(.message))]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: field `{field}`: {message}")]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
    /// A `Field` error where the file writes the field.
    #[error("{path}:{line}:{column}: field `{field}`: {message}")]
    FieldAt {
        path: PathBuf,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
}

impl ConfigError {
    /// A field error placed where `text` writes the field, if it does.
    fn placed(self, text: &str) -> ConfigError {
        match self {
            ConfigError::Field {
                path,
                field,
                message,
            } => match super::locate::locate(text, &field) {
                Some((line, column)) => ConfigError::FieldAt {
                    path,
                    line,
                    column,
                    field,
                    message,
                },
                None => ConfigError::Field {
                    path,
                    field,
                    message,
                },
            },
            other => other,
        }
    }
}

fn hint(message: &str) -> String {
    if message.contains("unknown field") {
        "\n  fix: check the spelling against the fields listed after `expected one of`".into()
    } else if message.contains("a duration like") {
        "\n  fix: write durations like `500ms`, `5s` or `2m`".into()
    } else if message.contains("missing field") {
        "\n  fix: add the field".into()
    } else {
        String::new()
    }
}

impl DeployFile {
    pub fn load(path: &Path) -> Result<DeployFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<DeployFile, ConfigError> {
        let file: DeployFile = serde_yaml::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            // serde_yaml appends " at line L column C"; the prefix says it already.
            let message = e.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_string();
            ConfigError::Invalid {
                path: path.into(),
                line,
                column,
                message,
            }
        })?;
        let mut file = file;
        file.steps = file.step_list.percents.clone();
        file.validate(path).map_err(|e| e.placed(text))?;
        if let Some(m) = &file.manifest {
            let at = path.parent().unwrap_or(Path::new(".")).join(m);
            let manifest = super::manifest::Manifest::load(&at, file.manifest_app.as_deref())?;
            file.merge(manifest);
        } else if file.manifest_app.is_some() {
            return Err(ConfigError::Field {
                path: path.into(),
                field: "manifest_app".into(),
                message:
                    "names an app of `manifest`, which is not set; add `manifest: manifest.yml`"
                        .into(),
            });
        }
        Ok(file)
    }

    /// What the manifest says and the deploy file does not: the deploy
    /// file's own `command`, `env`, `services` and `health.path` win.
    fn merge(&mut self, m: super::manifest::Manifest) {
        for s in &m.services {
            if !self.services.iter().any(|x| x.name() == s) {
                self.services.push(ServiceRef::Name(s.clone()));
            }
        }
        for (k, v) in &m.env {
            self.env.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let web = m.web();
        if self.command.is_none() {
            self.command = web.command.clone();
        }
        if self.health.path == "/"
            && web.health_check.as_deref() == Some("http")
            && let Some(e) = &web.endpoint
        {
            self.health.path = e.clone();
        }
        self.cf_manifest = Some(m);
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let field = |field: &str, message: String| ConfigError::Field {
            path: path.into(),
            field: field.into(),
            message,
        };
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        if !name_ok(&self.app) {
            return Err(field(
                "app",
                format!(
                    "`{}` must be lowercase letters, digits and dashes",
                    self.app
                ),
            ));
        }
        if let Some(c) = &self.colors
            && c.blue == c.green
        {
            return Err(field(
                "colors",
                "blue and green must be different apps".into(),
            ));
        }
        // On Cloud Foundry the lock is an app named `<app>-bluegreen-lock`:
        // a color of that name would be taken for one (and hold the lock).
        use crate::platform::lease::LOCK_SUFFIX;
        if let Some(c) = &self.colors
            && let Some(name) = [&c.blue, &c.green]
                .into_iter()
                .find(|n| n.ends_with(LOCK_SUFFIX))
        {
            return Err(field(
                "colors",
                format!("`{name}` ends with `{LOCK_SUFFIX}`, which names bluegreen's lock apps"),
            ));
        }
        if let Some(route) = &self.route
            && !name_ok(
                route
                    .split_once('.')
                    .map_or(route.as_str(), |(host, _)| host),
            )
        {
            return Err(field(
                "route",
                format!(
                    "`{route}` must be a host name (lowercase letters, digits and dashes), or \
                     one followed by its domain: `shop.example.com`"
                ),
            ));
        }
        if !self.health.path.starts_with('/') {
            return Err(field(
                "health.path",
                format!("`{}` must start with `/`", self.health.path),
            ));
        }
        for (i, s) in self.services.iter().enumerate() {
            let name = s.name();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(field(
                    &format!("services[{i}]"),
                    format!("`{name}` is not a service instance name (letters, digits, `-`, `_`)"),
                ));
            }
            if let Some(kind) = s.kind()
                && kind != "postgres"
            {
                return Err(field(
                    &format!("services[{i}].type"),
                    format!(
                        "`{kind}` is not a type bluegreen can create; write `postgres`, or name an existing instance"
                    ),
                ));
            }
        }
        if let Some(m) = &self.migrate {
            if m.lock_timeout.is_zero() {
                return Err(field(
                    "migrate.lock_timeout",
                    "0 would let a migration wait for locks forever, queueing the site's \
                     queries behind it; give a limit like `5s`"
                        .into(),
                ));
            }
            if let Some((f, e)) = m.rehearse.invalid() {
                return Err(field(f, e));
            }
            if m.retries > 20 {
                return Err(field(
                    "migrate.retries",
                    format!(
                        "{} is more than 20; a lock held that long needs a person",
                        m.retries
                    ),
                ));
            }
        }
        super::analysis::validate(self.strategy, &self.steps, self.analysis.as_ref())
            .map_err(|(f, m)| field(f, m))?;
        super::steps::validate(self.strategy, &self.step_list, self.analysis.as_ref())
            .map_err(|(f, m)| field(f, m))?;
        if self.strategy.native() && self.platform != PlatformKind::Cf {
            return Err(field(
                "strategy",
                format!(
                    "`{}` drives Cloud Foundry's own deployments: add `platform: cf` (the local \
                     platform serves as CF too: `eval \"$(bluegreen platform cf-env)\"`), or use \
                     `canary` / `blue-green`",
                    self.strategy.name()
                ),
            ));
        }
        if self.strategy.native() && self.manifest.is_some() {
            return Err(field(
                "manifest",
                format!(
                    "is applied to two colors; `strategy: {}` deploys one app, and applying a \
                     manifest to it would scale or restart the instances CF's deployment is \
                     replacing: remove `manifest` (scale with `cf scale`), or use `canary`",
                    self.strategy.name()
                ),
            ));
        }
        self.validate_standby().map_err(|(f, m)| field(f, m))?;
        if let Some(n) = self.max_in_flight {
            if !self.strategy.native() {
                return Err(field(
                    "max_in_flight",
                    "is CF's deployment option: it needs `strategy: cf-canary` or `cf-rolling`; \
                     remove it"
                        .into(),
                ));
            }
            if n == 0 {
                return Err(field(
                    "max_in_flight",
                    "must be at least 1 (new instances started at once)".into(),
                ));
            }
        }
        if self.health.successes == 0 {
            return Err(field("health.successes", "must be at least 1".into()));
        }
        if self.health.interval.is_zero() || self.health.timeout < self.health.interval {
            return Err(field(
                "health.timeout",
                "must be at least one `health.interval`, which must be above zero".into(),
            ));
        }
        for (name, p) in &self.plugins.config {
            for origin in p.allow_http.iter().filter(|o| *o != CANDIDATE) {
                crate::plugin::Origin::parse(origin)
                    .map_err(|e| field(&format!("plugins.config.{name}.allow_http"), e))?;
            }
            if let Some(m) = &p.memory {
                crate::units::parse_size(m)
                    .map_err(|e| field(&format!("plugins.config.{name}.memory"), e))?;
            }
        }
        Ok(())
    }

    pub fn blue(&self) -> String {
        self.colors
            .as_ref()
            .map(|c| c.blue.clone())
            .unwrap_or_else(|| format!("{}-blue", self.app))
    }

    pub fn green(&self) -> String {
        self.colors
            .as_ref()
            .map(|c| c.green.clone())
            .unwrap_or_else(|| format!("{}-green", self.app))
    }

    /// The analysis each window uses, if this deploy analyzes at all.
    pub fn analysis(&self) -> Option<super::analysis::Analysis> {
        match (&self.analysis, self.strategy) {
            (Some(a), _) => Some(a.clone()),
            (None, super::analysis::Strategy::Canary | super::analysis::Strategy::CfCanary) => {
                Some(Default::default())
            }
            (None, _) => None,
        }
    }

    /// The two-color deploy a native strategy falls back to: `cf-canary`
    /// as `canary` with the same steps as route shares (ending at 100),
    /// `cf-rolling` as `blue-green`.
    pub fn two_color(&self) -> DeployFile {
        use super::analysis::Strategy;
        let mut f = self.clone();
        f.max_in_flight = None;
        match self.strategy {
            Strategy::CfCanary => {
                f.strategy = Strategy::Canary;
                if f.steps.last() != Some(&100) {
                    f.steps.push(100);
                }
            }
            Strategy::CfRolling => f.strategy = Strategy::BlueGreen,
            _ => {}
        }
        f
    }

    /// This file without canary steps or analysis: how a rollback goes to
    /// a release that served before unless asked to judge it (`cf-canary`
    /// as `cf-rolling`, which a native rollback is anyway).
    pub fn plain(&self) -> DeployFile {
        use super::analysis::Strategy;
        let mut f = self.clone();
        f.analysis = None;
        f.steps.clear();
        f.step_list = Default::default();
        f.strategy = match self.strategy {
            Strategy::Canary => Strategy::BlueGreen,
            Strategy::CfCanary => Strategy::CfRolling,
            s => s,
        };
        f
    }
}
