//! `plan`: every step of the next deploy and the plugins at each hook,
//! without acting; where it would go (the platform, org and space, the
//! route's URL) and what it found there, or that it could not look; and
//! what the deploy would trip on (no start command, a missing service),
//! refused here (exit 2) rather than halfway through.

use super::deploy::{Loaded, RunArgs};
use super::output::{Printer, outln};
use crate::cli::Exit;
use crate::deploy::plan::{self, Source};
use crate::deploy::release;
use crate::deploy::session::Session;
use crate::deploy::site;
use serde_json::json;

/// `plan`: every step and the plugins at each hook, without acting.
pub async fn plan(args: &RunArgs, release: Option<String>) -> anyhow::Result<Exit> {
    let session = Session::prepare(&args.file.file, args.policy.as_deref()).await?;
    let (mut l, plugins) = (session.loaded, session.plugins);
    // What is there, read-only; an error is said, not taken for "nothing".
    let looked: anyhow::Result<Option<site::Survey>> = async {
        match site::connect(&l.file, false).await? {
            Some((client, port)) => Ok(Some(
                site::Site::survey(&l.file, client, port, false).await?,
            )),
            None => Ok(None),
        }
    }
    .await;
    let (survey, unreachable) = match looked {
        Ok(s) => (s, None),
        Err(e) => (None, Some(crate::output::printable(&format!("{e:#}")))),
    };
    let mut problems = problems(&l, survey.as_ref());
    let target = target(&l, survey.as_ref());
    let stopped = survey.is_none() && unreachable.is_none();
    let adopted = survey
        .as_ref()
        .and_then(|s| s.adopted().map(|a| a.name.clone()));
    let site = survey.and_then(|s| s.found(&l.file));
    let mode = match &site {
        Some(s) => s.mode.clone(),
        None => plan_mode(&l.file).await,
    };
    let asked = l.file.strategy.name();
    if let site::Mode::Fallback(_) = &mode {
        l.file = l.file.two_color();
    }
    let native = mode == site::Mode::Native;
    let newest = site.as_ref().and_then(|s| s.newest());
    let current = site
        .as_ref()
        .zip(newest)
        .and_then(|(s, c)| s.annotation(c, site::RELEASE));
    let release = match release {
        Some(r) => r,
        None => release::release_id(
            &l.app_dir,
            &crate::platform::package::zip_dir(&l.app_dir)?.sha256,
        ),
    };
    let order = match &site {
        Some(s) if !native => s.order().await?,
        _ => plan::order(None, &[]),
    };
    let mut steps = match (native, l.file.scale_down_delay) {
        (false, Some(_)) => {
            let sides = crate::deploy::standby::sides(site.as_ref(), order).await?;
            plan::standby::plan(&l.file, sides, &plugins.by_hook(), &Source::New)
        }
        _ => plan::for_mode(&l.file, native, order, &plugins.by_hook(), &Source::New),
    };
    if let Some(app) = &adopted {
        steps = plan::with_retire(steps, app, l.file.drain);
    }
    let mode_line = match &mode {
        site::Mode::Colors => None,
        site::Mode::Native => Some(format!(
            "Mode: one app, `{}`, through Cloud Foundry's own {} deployment (no colors)",
            l.file.app,
            if asked == "cf-canary" {
                "canary"
            } else {
                "rolling"
            }
        )),
        site::Mode::Fallback(why) => Some(format!(
            "Mode: `strategy: {asked}` falls back to `{}` with two colors: this foundation cannot \
             run Cloud Foundry's deployments ({why}){}",
            l.file.strategy.name(),
            if l.file.fallback == crate::config::Fallback::None {
                "; `fallback: none` refuses to deploy"
            } else {
                ""
            }
        )),
    };
    let manifest = l
        .file
        .cf_manifest
        .as_ref()
        .map(|m| json!({"path": m.path, "app": m.name, "applies": m.summary()}));
    let mode_json = match &mode {
        site::Mode::Colors => json!({"mode": "two-color"}),
        site::Mode::Native => json!({"mode": "native", "strategy": asked}),
        site::Mode::Fallback(why) => json!({"mode": "two-color", "asked": asked,
            "strategy": l.file.strategy.name(), "why": why}),
    };
    // "now": the release serving, "nothing" only when the platform said so.
    let now = match (&current, &unreachable, &site) {
        (Some(r), _, _) => r.clone(),
        (None, Some(why), _) => format!("unknown: could not look ({why})"),
        (None, None, Some(_)) => "no release recorded".into(),
        (None, None, None) if stopped => {
            "nothing running: the local platform is not started (`deploy` starts it)".into()
        }
        (None, None, None) => "nothing deployed".into(),
    };
    if let Some(why) = &unreachable
        && l.file.platform == crate::config::PlatformKind::Cf
    {
        problems.push(format!("the platform could not be reached: {why}"));
    }
    let json = json!({"app": l.file.app, "release": release, "current": current, "now": now,
        "target": target, "mode": mode_json, "steps": steps, "manifest": manifest,
        "problems": problems});
    Printer::new(args.json).emit(json, || {
        outln!("Target: {target}");
        if let Some(line) = &mode_line {
            outln!("{line}");
        }
        outln!();
        print_plan(&l, &plugins, &release, &now, &steps, native);
        // On stderr, as every error is: a plan piped to a file or a pager
        // still shows, on the terminal, why it exits 2.
        for p in &problems {
            crate::output::write_stderr(&format!("\nProblem: {p}\n"));
        }
    });
    Ok(if problems.is_empty() {
        Exit::Ok
    } else {
        Exit::BadInput
    })
}

/// Where the deploy goes: the platform (Cloud Foundry's API, org and
/// space) and the route's URL.
fn target(l: &Loaded, survey: Option<&site::Survey>) -> String {
    let host = l.file.route_host();
    match l.file.platform {
        crate::config::PlatformKind::Local => format!(
            "the local platform, route http://{host}.{}:{}",
            crate::platform::local::DOMAIN,
            survey.map_or_else(|| "PORT".to_string(), |s| s.router_port().to_string())
        ),
        crate::config::PlatformKind::Cf => {
            let api = survey.map_or_else(
                || std::env::var("CF_API").unwrap_or_else(|_| "the cf login's API".into()),
                |s| s.client().api().to_string(),
            );
            let domain = survey
                .map(|s| s.domain().to_string())
                .or_else(|| l.file.route_domain())
                .unwrap_or_else(|| "DOMAIN".into());
            format!(
                "Cloud Foundry {api}, {}, route https://{host}.{domain}",
                site::describe_target()
            )
        }
    }
}

/// What the deploy would trip on, found before it starts.
fn problems(l: &Loaded, survey: Option<&site::Survey>) -> Vec<String> {
    let mut out = Vec::new();
    let procfile_web = std::fs::read_to_string(l.app_dir.join("Procfile"))
        .is_ok_and(|p| p.lines().any(|line| line.trim_start().starts_with("web:")));
    let manifest_command = l
        .file
        .cf_manifest
        .as_ref()
        .is_some_and(|m| m.web().command.is_some());
    if l.file.command.is_none()
        && !procfile_web
        && !manifest_command
        && l.file.platform == crate::config::PlatformKind::Local
    {
        out.push(format!(
            "no start command: the local platform runs `command:` from {} or the `web:` line of \
             {}, and there is neither; add one",
            l.path.display(),
            l.app_dir.join("Procfile").display()
        ));
    }
    if let Some(s) = survey {
        for name in s.missing_services(&l.file) {
            out.push(format!(
                "{}: field `services`: no service instance named `{name}` where the deploy \
                 goes; create it, or correct the name",
                l.path.display()
            ));
        }
    }
    out
}

/// A native strategy's mode before the app exists: what the foundation
/// can run, if it can be asked (else as asked).
async fn plan_mode(file: &crate::config::DeployFile) -> site::Mode {
    if !file.strategy.native() {
        return site::Mode::Colors;
    }
    match site::connect(file, false).await {
        Ok(Some((client, _))) => match crate::platform::deployments::supported(&client).await {
            Ok(()) => site::Mode::Native,
            Err(why) => site::Mode::Fallback(why),
        },
        _ => site::Mode::Native,
    }
}

/// `plan` for people.
fn print_plan(
    l: &Loaded,
    plugins: &crate::deploy::plugins::Plugins,
    release: &str,
    now: &str,
    steps: &[plan::Step],
    native: bool,
) {
    outln!(
        "Plan: deploy {} release {release} (now: {now}), {} steps\n",
        l.file.app,
        steps.len()
    );
    if plugins.policy.path.is_some() {
        let required: Vec<&str> = plugins.required.iter().map(String::as_str).collect();
        outln!(
            "Org {}: required plugins (run first) {}\n",
            plugins.policy.describe(),
            if required.is_empty() {
                "none".into()
            } else {
                required.join(", ")
            }
        );
    }
    if let Some(m) = &l.file.cf_manifest {
        outln!(
            "Manifest {} (app `{}`), applied to each color under its own name before its restart:",
            m.path.display(),
            m.name
        );
        for line in m.summary() {
            outln!("  {line}");
        }
        outln!();
    }
    if !l.file.services.is_empty() {
        let names: Vec<String> = l
            .file
            .services
            .iter()
            .map(|s| match s.kind() {
                Some(kind) => format!("{} ({kind}, created if missing)", s.name()),
                None => s.name().to_string(),
            })
            .collect();
        outln!(
            "Services bound to both colors before their push (DATABASE_URL, VCAP_SERVICES): {}\n",
            names.join(", ")
        );
    }
    super::output::write_stdout(&plan::render(steps));
    let pauses = steps.iter().any(|s| {
        matches!(
            s,
            plan::Step::Pause { .. }
                | plan::Step::Analyze {
                    pause_on_fail: true,
                    ..
                }
        )
    });
    if pauses {
        let asked = plugins.by_hook().remove(&crate::plugin::Hook::Approval);
        outln!(
            "\nAt each pause, hook approval: {}",
            match asked {
                Some(names) => format!(
                    "{} (all that answer proceed end it, a block rolls back)",
                    names.join(", ")
                ),
                None => "no plugins (an operator's command or the pause's time ends it)".into(),
            }
        );
    }
    let on_failure = plugins
        .by_hook()
        .remove(&crate::plugin::Hook::OnFailure)
        .unwrap_or_default();
    let undo = match native {
        false if l.file.scale_down_delay.is_some() => {
            "the color serving keeps the route alone; the idle color leaves it (if it was \
                 mapped) and, holding the failed release, is stopped"
        }
        true => {
            "CF's deployment is cancelled (the old instances take the app back; once it \
                 is deployed, the previous revision is deployed again) and the app's environment \
                 is put back"
        }
        false => {
            "the color in flight goes back to its previous droplet and onto the route, \
                  then a color already switched goes back too (one release serves)"
        }
    };
    outln!(
        "\nIf a step fails or a plugin blocks: {undo}, then hook on-failure: {}",
        if on_failure.is_empty() {
            "no plugins".to_string()
        } else {
            on_failure.join(", ")
        }
    );
}
