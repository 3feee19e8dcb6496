//! What goes into the deploy file `bluegreen init` writes, field by field,
//! each with the comment that says what it does and where its value came
//! from. A value another file already gives (the manifest's command or
//! services, the Procfile's `web:` line) is named in a comment, not copied:
//! two copies would drift apart.

use super::render::{Doc, list, map, s, shown};
use super::scan::Found;
use serde_yaml::Value;

/// The deploy file for what was found, and warnings about what is missing.
pub fn build(f: &Found, app: &str, app_from: &str) -> (Doc, Vec<String>) {
    let mut d = Doc::default();
    let mut warnings = Vec::new();
    d.comment(
        0,
        "bluegreen.yaml: how `bluegreen deploy` deploys this app blue-green (two \
         copies, blue and green, behind one route; one always serves). Written by \
         `bluegreen init` from what it found here; each field says where its value \
         came from. Check it with `bluegreen plan`. Every field is described in \
         bluegreen's book, docs/src/deploy-file.md; `bluegreen schema` gives editors \
         the same as a JSON Schema.",
    );
    d.blank();
    d.top(
        "app",
        &format!(
            "The app's name: the colors are {app}-blue and {app}-green, the route's \
             host is {app} (http://{app}.apps.localhost:8080 on the local platform). \
             From {app_from}."
        ),
        s(app),
        app_from,
    );
    let manifest = f.manifest.as_ref();
    if let Some(m) = manifest {
        d.blank();
        d.top(
            "platform",
            &format!(
                "{} describes a Cloud Foundry app, so deploys go to the foundation of your `cf \
                 login` (its org and space: `cf target`, CF_ORG and CF_SPACE, or -o and -s). \
                 Delete this line to try it on the local platform first.",
                m.file
            ),
            s("cf"),
            &m.file,
        );
        if let [route] = m.app().routes.as_slice()
            && route.contains('.')
            && !route.contains('/')
        {
            d.top(
                "route",
                &format!(
                    "The shared route both colors serve, host and domain, as the manifest \
                     routes it. From {}.",
                    m.file
                ),
                s(route),
                &m.file,
            );
        }
        d.top(
            "manifest",
            &format!(
                "The Cloud Foundry manifest each color is created from (command, env, \
                 services, instances, memory); bluegreen leaves out its `routes:`, as it \
                 owns the route. From {}.",
                m.file
            ),
            s(&m.file),
            &m.file,
        );
        if m.apps.len() > 1 {
            let names: Vec<&str> = m.apps.iter().map(|a| a.name.as_str()).collect();
            d.top(
                "manifest_app",
                &format!(
                    "{} describes {} apps ({}); this file deploys `{}`, the first that \
                     takes a route. Name another to deploy that one.",
                    m.file,
                    names.len(),
                    names.join(", "),
                    m.app().name
                ),
                s(&m.app().name),
                &m.file,
            );
        }
    }
    d.blank();
    command(&mut d, f, &mut warnings);
    env_and_services(&mut d, f, app);
    rails_secret(&mut d, f, &mut warnings);
    health(&mut d, f);
    migrate(&mut d, f);
    plugins(&mut d, f);
    (d.finish(), warnings)
}

fn command(d: &mut Doc, f: &Found, warnings: &mut Vec<String>) {
    let bundle = if f.gemfile { "bundle exec " } else { "" };
    if let Some((m, cmd)) = f
        .manifest
        .as_ref()
        .and_then(|m| m.app().command.as_ref().map(|c| (m, c)))
    {
        d.comment(
            0,
            &format!(
                "The start command is {}'s `command:` for `{}`, so `command` is not set \
                 here:\n  {}",
                m.file,
                m.app().name,
                shown(cmd.trim_end())
            ),
        );
    } else if let Some(web) = &f.procfile_web {
        d.comment(
            0,
            &format!(
                "The start command is the Procfile's `web:` line, which the platform runs \
                 (as Cloud Foundry does), so `command` is not set here:\n  web: {}",
                shown(web)
            ),
        );
    } else if let Some(why) = &f.rails {
        let rails = if f.bin_rails {
            "bin/rails".to_string()
        } else {
            format!("{bundle}rails")
        };
        let from = format!("{why}, with no Procfile `web:` line");
        d.top(
            "command",
            &format!(
                "The start command: the Rails server on the port the platform gives in \
                 $PORT, on 127.0.0.1 (where the local platform's router reaches apps; \
                 on Cloud Foundry, bind 0.0.0.0). From {from}."
            ),
            s(&format!("exec {rails} server -b 127.0.0.1 -p $PORT")),
            &from,
        );
    } else if f.config_ru {
        let from = "config.ru (a Rack app), with no Procfile `web:` line";
        d.top(
            "command",
            &format!(
                "The start command: rackup on the port the platform gives in $PORT, on \
                 127.0.0.1 (where the local platform's router reaches apps; on Cloud \
                 Foundry, bind 0.0.0.0). From {from}."
            ),
            s(&format!(
                "exec {bundle}rackup config.ru -p $PORT -o 127.0.0.1"
            )),
            from,
        );
    } else {
        let what = if f.procfile {
            "the Procfile has no `web:` line"
        } else {
            "no Procfile, config.ru or Rails app"
        };
        d.comment(
            0,
            &format!(
                "No start command found ({what}): add a Procfile `web:` line, or set \
                 `command:` to what starts the app listening on $PORT."
            ),
        );
        warnings.push(format!(
            "no start command found ({what}): add a Procfile `web:` line or set `command:` before deploying"
        ));
    }
}

/// A production Rails app cannot boot without a `secret_key_base`: say so
/// when none of its usual sources exists. Never written into the file: a
/// deploy file is committed, a secret is not.
fn rails_secret(d: &mut Doc, f: &Found, warnings: &mut Vec<String>) {
    if f.rails.is_none() || f.rails_secret.is_some() {
        return;
    }
    d.comment(
        0,
        "No secret_key_base found (no config/master.key, no `secret_key_base` in the config, \
         no SECRET_KEY_BASE in a manifest): Rails in production will not boot without one. Set \
         SECRET_KEY_BASE for both colors from your secret store (`bin/rails secret` makes one); \
         it does not belong in this file.",
    );
    warnings.push(
        "a production Rails app needs SECRET_KEY_BASE (or config/master.key) and none was found: \
         set it for both colors from your secret store (`bin/rails secret` makes one)"
            .into(),
    );
}

fn env_and_services(d: &mut Doc, f: &Found, app: &str) {
    let m = f.manifest.as_ref();
    if f.rails.is_some() {
        d.blank();
    }
    match (&f.rails, m.filter(|m| m.app().has_env)) {
        (Some(_), Some(m)) => d.comment(
            0,
            &format!(
                "{}'s `env:` sets the environment, so `env` is not set here (a Rails \
                 app needs RAILS_ENV=production there).",
                m.file
            ),
        ),
        (Some(why), None) => d.top(
            "env",
            &format!(
                "Environment of both colors and of the migration task: RAILS_ENV as \
                 Cloud Foundry's Ruby buildpack sets it, and RAILS_LOG_TO_STDOUT so the \
                 log reaches `bluegreen platform logs`. From {why}."
            ),
            map(&[
                ("RAILS_ENV", s("production")),
                ("RAILS_LOG_TO_STDOUT", s("1")),
            ]),
            why,
        ),
        (None, _) => {}
    }
    let bound = m.filter(|m| !m.app().services.is_empty());
    if bound.is_some() || f.postgres.is_some() || f.other_database.is_some() {
        d.blank();
    }
    if let Some(m) = bound {
        d.comment(
            0,
            &format!(
                "{}'s `services:` binds {}, so `services` is not set here.",
                m.file,
                m.app().services.join(", ")
            ),
        );
    } else if let Some(why) = &f.postgres {
        d.top(
            "services",
            &format!(
                "A PostgreSQL database shared by both colors and the migration task, \
                 which get DATABASE_URL and VCAP_SERVICES for it. The local platform \
                 creates it on the first deploy (`type: postgres`); on Cloud Foundry, \
                 name an existing service instance instead. From {why}."
            ),
            Value::Sequence(vec![map(&[
                ("name", s(&format!("{app}-db"))),
                ("type", s("postgres")),
            ])]),
            why,
        );
    } else if let Some(other) = &f.other_database {
        d.comment(
            0,
            &format!(
                "No `services`: {} uses `{}`, and the local platform provides \
                 PostgreSQL only (a file database would not be shared by the colors).",
                other.from, other.value
            ),
        );
    }
}

fn health(d: &mut Doc, f: &Found) {
    let (path, comment, from) = match &f.health {
        Some(h) => (
            h.value.clone(),
            format!(
                "bluegreen's own probe of each color, on the color's own URL, before it \
                 goes on the route: the path must answer 200 within the timeout (60s). \
                 From {}.",
                h.from
            ),
            h.from.clone(),
        ),
        None => (
            "/".to_string(),
            "bluegreen's own probe of each color, on the color's own URL, before it goes \
             on the route: the path must answer 200 within the timeout (60s). No health \
             route was found, so it is `/`; a path that also checks the database is \
             better (examples/rails-app answers /up only when it does)."
                .to_string(),
            "the default (no health route found)".to_string(),
        ),
    };
    d.blank();
    d.top("health", &comment, map(&[("path", s(&path))]), &from);
}

fn migrate(d: &mut Doc, f: &Found) {
    if !f.migrate {
        return;
    }
    let (command, from) = if f.bin_rails {
        (
            "bin/rails db:migrate".to_string(),
            "db/migrate and bin/rails",
        )
    } else if f.gemfile {
        (
            "bundle exec rails db:migrate".to_string(),
            "db/migrate and the Gemfile",
        )
    } else {
        ("rails db:migrate".to_string(), "db/migrate")
    };
    d.blank();
    d.section("migrate");
    d.sub(
        "command",
        "Runs once per deploy, on the first color's new release before it serves, \
         while the other color still serves the old one: migrations must keep the \
         old code working (expand now, contract later). From db/migrate (Rails \
         migrations).",
        s(&command),
        from,
    );
    d.sub(
        "kind",
        "Rails migrations: how pending versions and the migration guard read them.",
        s("rails"),
        "db/migrate",
    );
    d.sub(
        "dirs",
        "The expand-phase migrations. From db/migrate.",
        list(&["db/migrate"]),
        "db/migrate",
    );
    if f.post_migrate {
        d.sub(
            "post_dirs",
            "Contract-phase migrations: run with BLUEGREEN_MIGRATION_PHASE=contract once \
             both colors serve the new release; the app adds this path to its \
             migrations in that phase (as examples/rails-app/config/application.rb \
             does). From db/post_migrate.",
            list(&["db/post_migrate"]),
            "db/post_migrate",
        );
    }
    d.sub(
        "lock_timeout",
        "Set as PGOPTIONS for the migration: a DDL statement stuck behind a long query \
         gives up and is retried instead of queueing every request behind it. The \
         default, written out.",
        s("5s"),
        "the default",
    );
}

fn plugins(d: &mut Doc, f: &Found) {
    let Some(names) = &f.plugins else {
        return;
    };
    let holds = if names.is_empty() {
        "it holds no plugin yet: copy plugin builds (*.wasm) into it; \
         `bluegreen plugin check plugins` checks them"
            .to_string()
    } else {
        format!("it holds {}", names.join(", "))
    };
    let mut comment = format!(
        "Hook plugins: every *.wasm in this directory runs at the hooks it handles. \
         From the plugins/ directory ({holds})."
    );
    if f.migrate && !names.iter().any(|n| n == "migration-guard") {
        comment.push_str(
            " With migrations, add migration-guard.wasm: it blocks a deploy whose \
             migrations would break the release still serving.",
        );
    }
    d.blank();
    d.section("plugins");
    d.sub("dir", &comment, s("plugins"), "the plugins/ directory");
}
