//! App output on the local platform: `bluegreen logs` for the deploy file's
//! app (both colors, or one), and `platform logs APP`, which takes a
//! platform app's name or a deploy's (its `APP-blue` and `APP-green`).
//! Each line is shown escaped (an app's output is not ours); when both
//! colors are shown, after its color's name.

use super::deploy::FileArg;
use super::output::Printer;
use super::{BadInput, Exit};
use crate::config::{DeployFile, PlatformKind};
use crate::platform::client::CfClient;
use crate::platform::{local, v3};
use crate::plugin::context::Color;
use clap::Args;
use serde_json::json;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Only this color's app (default: both, each line after its color).
    #[arg(long, value_enum)]
    pub color: Option<ColorArg>,
    /// Keep printing new lines as they arrive.
    #[arg(long)]
    pub follow: bool,
    /// One JSON object per log line: `{"app", "color", "line"}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ColorArg {
    Blue,
    Green,
}

impl From<ColorArg> for Color {
    fn from(c: ColorArg) -> Color {
        match c {
            ColorArg::Blue => Color::Blue,
            ColorArg::Green => Color::Green,
        }
    }
}

/// One app whose log is shown, and its color when it is a deploy's.
pub struct Source {
    pub app: v3::App,
    pub color: Option<Color>,
}

/// How often `--follow` reads the logs again.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// `bluegreen logs`: the deploy file's color apps on the local platform.
pub async fn run(args: &LogsArgs) -> anyhow::Result<Exit> {
    let file = DeployFile::load(&args.file.file)?;
    let colors: Vec<Color> = match args.color {
        Some(c) => vec![c.into()],
        None => vec![Color::Blue, Color::Green],
    };
    let name = |c: Color| match c {
        Color::Blue => file.blue(),
        Color::Green => file.green(),
    };
    if file.platform == PlatformKind::Cf {
        let cmds: Vec<String> = colors
            .iter()
            .map(|c| format!("`cf logs {} --recent`", name(*c)))
            .collect();
        return Err(BadInput(format!(
            "`bluegreen logs` reads the local platform's logs; it does not read Cloud Foundry's \
             yet (`platform: cf` in {}): run {} (without `--recent` to follow)",
            args.file.file.display(),
            cmds.join(" and ")
        ))
        .into());
    }
    let client = running_platform(&local::Config::from_env().dir).await?;
    let space = local_space(&client).await?;
    let mut sources = Vec::new();
    for c in colors {
        if let Some(app) = client.find_app(&space, &name(c)).await? {
            sources.push(Source {
                app,
                color: Some(c),
            });
        }
    }
    if sources.is_empty() {
        return Err(BadInput(format!(
            "`{}` is not deployed on the local platform (no app {}): `bluegreen deploy` first",
            file.app,
            [file.blue(), file.green()].join(" or ")
        ))
        .into());
    }
    show(&client, &sources, args.follow, args.json).await
}

/// `platform logs APP`: the app named `APP`, else the colors of a deploy
/// whose app is `APP` (`APP-blue`, `APP-green`).
pub async fn platform(
    dir: &std::path::Path,
    app: &str,
    follow: bool,
    json: bool,
) -> anyhow::Result<Exit> {
    let client = running_platform(dir).await?;
    let space = local_space(&client).await?;
    let mut sources = Vec::new();
    if let Some(found) = client.find_app(&space, app).await? {
        sources.push(Source {
            app: found,
            color: None,
        });
    } else {
        for c in [Color::Blue, Color::Green] {
            if let Some(found) = client.find_app(&space, &format!("{app}-{c}")).await? {
                sources.push(Source {
                    app: found,
                    color: Some(c),
                });
            }
        }
    }
    if sources.is_empty() {
        return Err(BadInput(format!(
            "no app named `{app}` on the local platform (nor `{app}-blue` or `{app}-green`, a \
             deploy's colors): `bluegreen platform status` lists them"
        ))
        .into());
    }
    show(&client, &sources, follow, json).await
}

async fn running_platform(dir: &std::path::Path) -> anyhow::Result<CfClient> {
    match local::connect(dir).await {
        Some((_, client)) => Ok(client),
        None => Err(BadInput(
            "the local platform is not running (start it with `bluegreen platform start`)".into(),
        )
        .into()),
    }
}

async fn local_space(client: &CfClient) -> anyhow::Result<String> {
    Ok(client
        .find_space(local::ORG_GUID, "local")
        .await?
        .map(|s| s.guid)
        .unwrap_or_default())
}

/// Prints each source's log (with `follow`, then what they add, until
/// stdout's reader leaves). With two sources each line follows its color's
/// name.
async fn show(
    client: &CfClient,
    sources: &[Source],
    follow: bool,
    json: bool,
) -> anyhow::Result<Exit> {
    let out = Printer::new(json);
    let prefixed = sources.len() > 1;
    let mut printed = vec![0usize; sources.len()];
    loop {
        for (s, printed) in sources.iter().zip(printed.iter_mut()) {
            let resp = client
                .request::<()>(
                    reqwest::Method::GET,
                    &format!("/bluegreen/v1/apps/{}/logs", s.app.guid),
                    None,
                )
                .await?;
            let text = resp.text().await.unwrap_or_default();
            // The log rotates: start over when it got shorter (or the
            // place reached is no longer a character's start).
            let new = match text.get(*printed..) {
                Some(new) => new,
                None => {
                    *printed = 0;
                    &text[..]
                }
            };
            let prefix = match (prefixed, s.color) {
                (true, Some(c)) => format!("{:<5} | ", c.name()),
                _ => String::new(),
            };
            let (name, color) = (&s.app.name, s.color);
            *printed += out.log(new, follow, &prefix, |line| match color {
                Some(c) => json!({"app": name, "color": c, "line": line}),
                None => json!({"app": name, "line": line}),
            });
        }
        if !follow || super::output::stdout_gone() {
            return Ok(Exit::Ok);
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}
