//! What `bluegreen init` looks for in an app directory, and where each
//! finding came from (the deploy file it writes names the source of every
//! value, so a person can check it). Each probe reads at most a few small
//! files; nothing here runs the app or its tools.

use std::path::Path;

/// A value and the file (and line) it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub from: String,
}

fn sourced<T>(value: T, from: impl Into<String>) -> Sourced<T> {
    Sourced {
        value,
        from: from.into(),
    }
}

/// One application of a Cloud Foundry manifest, with the fields init uses.
#[derive(Clone, Debug, Default)]
pub struct ManifestApp {
    pub name: String,
    pub command: Option<String>,
    pub health_endpoint: Option<String>,
    pub services: Vec<String>,
    pub has_env: bool,
    /// The names its `env:` sets.
    pub env_names: Vec<String>,
    pub no_route: bool,
    /// Its `routes:` (`shop.example.com`).
    pub routes: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Manifest {
    pub file: String,
    pub apps: Vec<ManifestApp>,
    /// The app this deploy file deploys: the first that takes a route.
    pub chosen: usize,
}

impl Manifest {
    pub fn app(&self) -> &ManifestApp {
        &self.apps[self.chosen]
    }
}

/// Everything init found.
#[derive(Clone, Debug, Default)]
pub struct Found {
    pub manifest: Option<Manifest>,
    /// The Procfile's `web:` command.
    pub procfile_web: Option<String>,
    pub procfile: bool,
    pub config_ru: bool,
    pub gemfile: bool,
    /// Why it is a Rails app (the file that says so).
    pub rails: Option<String>,
    /// The Rails application's module (`RailsApp` in config/application.rb).
    pub rails_module: Option<Sourced<String>>,
    pub bin_rails: bool,
    pub migrate: bool,
    pub post_migrate: bool,
    /// Why the app needs a PostgreSQL database, if it does.
    pub postgres: Option<String>,
    /// A database the local platform cannot provide (`sqlite3`, `mysql2`).
    pub other_database: Option<Sourced<String>>,
    pub health: Option<Sourced<String>>,
    /// Where a Rails app's `secret_key_base` comes from in production, if
    /// anywhere (without one the production app cannot boot).
    pub rails_secret: Option<String>,
    /// The plugin directory and the plugins in it.
    pub plugins: Option<Vec<String>>,
}

fn read(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok()
}

pub fn scan(dir: &Path) -> Result<Found, String> {
    let mut f = Found {
        manifest: manifest(dir)?,
        config_ru: dir.join("config.ru").is_file(),
        bin_rails: dir.join("bin/rails").is_file(),
        migrate: dir.join("db/migrate").is_dir(),
        post_migrate: dir.join("db/post_migrate").is_dir(),
        ..Found::default()
    };
    if let Some(text) = read(dir, "Procfile") {
        f.procfile = true;
        f.procfile_web = text.lines().find_map(|l| {
            let (name, cmd) = l.split_once(':')?;
            (name.trim() == "web" && !cmd.trim().is_empty()).then(|| cmd.trim().to_string())
        });
    }
    let gemfile = read(dir, "Gemfile");
    f.gemfile = gemfile.is_some();
    let gems: Vec<String> = gemfile.as_deref().map(gem_names).unwrap_or_default();
    let application = read(dir, "config/application.rb");
    if gems.iter().any(|g| g == "rails" || g == "railties") {
        f.rails = Some("Gemfile (gem \"rails\")".into());
    } else if application
        .as_deref()
        .is_some_and(|t| t.contains("Rails::Application"))
    {
        f.rails = Some("config/application.rb (a Rails::Application)".into());
    }
    if f.rails.is_some() {
        f.rails_module = application.as_deref().and_then(|t| {
            t.lines().find_map(|l| {
                let name = l.trim().strip_prefix("module ")?.trim();
                let ok = name.starts_with(|c: char| c.is_ascii_uppercase())
                    && name.chars().all(|c| c.is_ascii_alphanumeric());
                ok.then(|| {
                    sourced(
                        name.to_string(),
                        format!("config/application.rb (`module {name}`)"),
                    )
                })
            })
        });
        f.health = rails_health(dir);
        f.rails_secret = rails_secret(dir, application.as_deref(), &f);
    }
    database(dir, &gems, &mut f);
    if let Some(app) = f.manifest.as_ref().map(Manifest::app)
        && let Some(path) = &app.health_endpoint
    {
        let file = &f.manifest.as_ref().expect("a manifest").file;
        f.health = Some(sourced(
            path.clone(),
            format!("{file} (`health-check-http-endpoint` of `{}`)", app.name),
        ));
    }
    let plugins = dir.join("plugins");
    if plugins.is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(&plugins)
            .map_err(|e| format!("reading directory {}: {e}", plugins.display()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".wasm").map(String::from))
            .collect();
        names.sort();
        f.plugins = Some(names);
    }
    Ok(f)
}

/// The gems a Gemfile names (`gem "rails", "~> 7.1"` gives `rails`).
fn gem_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("gem ")?.trim_start();
            let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            let name = rest[1..].split(quote).next()?;
            Some(name.to_string())
        })
        .collect()
}

/// Paths apps answer health on by convention (Rails 7.1's `/up`,
/// Kubernetes' `healthz`/`readyz`/`livez`, and the usual others).
const HEALTH_PATHS: &[&str] = &[
    "up",
    "health",
    "healthz",
    "healthcheck",
    "health_check",
    "readyz",
    "livez",
    "ready",
    "ping",
    "status",
];

/// The health route a Rails app declares: a `get` route whose path is one
/// of the usual health paths (Rails 7.1's `rails/health#show` is `/up`,
/// and Rails 6.1 apps often add `get "/up"` by hand), or whose path or
/// controller says health. Never `/`: on many apps it writes or queries.
fn rails_health(dir: &Path) -> Option<Sourced<String>> {
    let routes = read(dir, "config/routes.rb")?;
    for (i, line) in routes.lines().enumerate() {
        let l = line.trim();
        if !l.starts_with("get ") {
            continue;
        }
        let rest = l["get ".len()..].trim_start();
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let path = rest[1..].split(quote).next().unwrap_or_default();
        if path.is_empty() || path.contains(':') || path.contains('*') {
            continue;
        }
        let bare = path.trim_matches('/');
        if !HEALTH_PATHS.contains(&bare) && !l.contains("health") {
            continue;
        }
        let path = format!("/{}", path.trim_start_matches('/'));
        return Some(sourced(
            path,
            format!("config/routes.rb line {} (`{l}`)", i + 1),
        ));
    }
    None
}

/// Where the production app's `secret_key_base` comes from: the master key
/// of its encrypted credentials, a `secret_key_base` set in its config, or
/// `SECRET_KEY_BASE` in the manifest's `env:`.
fn rails_secret(dir: &Path, application: Option<&str>, f: &Found) -> Option<String> {
    if dir.join("config/master.key").is_file() {
        return Some("config/master.key (the credentials' key)".into());
    }
    if application.is_some_and(|t| t.contains("secret_key_base")) {
        return Some("config/application.rb (`secret_key_base`)".into());
    }
    for file in ["config/environments/production.rb", "config/secrets.yml"] {
        if read(dir, file).is_some_and(|t| t.contains("secret_key_base")) {
            return Some(format!("{file} (`secret_key_base`)"));
        }
    }
    let manifest = f.manifest.as_ref()?;
    manifest
        .app()
        .env_names
        .iter()
        .any(|k| k == "SECRET_KEY_BASE" || k == "RAILS_MASTER_KEY")
        .then(|| format!("{} (`env:`)", manifest.file))
}

/// Which database the app expects: config/database.yml's adapter, the
/// Gemfile's driver gem, or Rails migrations (which need one).
fn database(dir: &Path, gems: &[String], f: &mut Found) {
    let yml = read(dir, "config/database.yml").unwrap_or_default();
    let adapter = yml.lines().find_map(|l| {
        let v = l.trim().strip_prefix("adapter:")?.trim();
        (!v.starts_with("<%")).then(|| v.trim_matches(|c| c == '"' || c == '\'').to_string())
    });
    match adapter.as_deref() {
        Some("postgresql" | "postgis") => {
            f.postgres = Some("config/database.yml (`adapter: postgresql`)".into());
        }
        Some(other) => {
            f.other_database = Some(sourced(
                other.to_string(),
                "config/database.yml (`adapter:`)",
            ));
        }
        None if gems.iter().any(|g| g == "pg") => {
            f.postgres = Some("Gemfile (gem \"pg\")".into());
        }
        None if yml.contains("DATABASE_URL") => {
            f.postgres = Some("config/database.yml (reads DATABASE_URL)".into());
        }
        None if f.rails.is_some() && f.migrate => {
            f.postgres = Some("db/migrate (Rails migrations need a database)".into());
        }
        None => {}
    }
}

/// `manifest.yml` (or `manifest.yaml`): its applications, read leniently
/// (only the fields init uses), but a file that is not YAML is an error.
fn manifest(dir: &Path) -> Result<Option<Manifest>, String> {
    let Some((file, text)) = ["manifest.yml", "manifest.yaml"]
        .iter()
        .find_map(|n| read(dir, n).map(|t| (n.to_string(), t)))
    else {
        return Ok(None);
    };
    let doc: serde_yaml::Value = serde_yaml::from_str(&text)
        .map_err(|e| format!("{}: not a YAML manifest: {e}", dir.join(&file).display()))?;
    let text_of =
        |v: &serde_yaml::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    let mut apps = Vec::new();
    for a in doc
        .get("applications")
        .and_then(|a| a.as_sequence())
        .into_iter()
        .flatten()
    {
        let Some(name) = text_of(a, "name") else {
            continue;
        };
        // A `processes:` entry of type web carries the command and health
        // check in the newer manifest shape.
        let web = a
            .get("processes")
            .and_then(|p| p.as_sequence())
            .and_then(|p| {
                p.iter()
                    .find(|p| text_of(p, "type").as_deref() == Some("web"))
            });
        let pick = |k: &str| text_of(a, k).or_else(|| web.and_then(|w| text_of(w, k)));
        let services = a
            .get("services")
            .and_then(|s| s.as_sequence())
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from).or_else(|| text_of(s, "name")))
            .collect();
        apps.push(ManifestApp {
            command: pick("command"),
            health_endpoint: pick("health-check-http-endpoint"),
            services,
            has_env: a
                .get("env")
                .and_then(|e| e.as_mapping())
                .is_some_and(|m| !m.is_empty()),
            env_names: a
                .get("env")
                .and_then(|e| e.as_mapping())
                .into_iter()
                .flatten()
                .filter_map(|(k, _)| k.as_str().map(String::from))
                .collect(),
            no_route: a.get("no-route").and_then(|v| v.as_bool()) == Some(true),
            routes: a
                .get("routes")
                .and_then(|r| r.as_sequence())
                .into_iter()
                .flatten()
                .filter_map(|r| text_of(r, "route"))
                .collect(),
            name,
        });
    }
    if apps.is_empty() {
        return Err(format!(
            "{}: no `applications:` with a `name`; fix the manifest or move it aside",
            dir.join(&file).display()
        ));
    }
    let chosen = apps.iter().position(|a| !a.no_route).unwrap_or(0);
    Ok(Some(Manifest { file, apps, chosen }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn gem_names_read_both_quotes() {
        let g = super::gem_names(
            "source 'x'\ngem \"rails\", \"~> 7.1\"\n  gem 'pg'\n# gem \"mysql2\"\n",
        );
        assert_eq!(g, ["rails", "pg"]);
    }
}
