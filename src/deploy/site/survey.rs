//! The first half of opening a site: what is there, found read-only, so
//! that a deploy creates nothing on the platform before it holds the app's
//! lock (a deploy refused the lock, or whose `services` names one that does
//! not exist, leaves no apps, routes or services behind). `create` makes
//! the rest once the lock is held.

use super::{Site, cf_target, missing};
use crate::config::{DeployFile, PlatformKind};
use crate::deploy::lock::Store;
use crate::platform::local;
use crate::platform::{client::CfClient, v3};
use crate::plugin::context::Color;
use std::collections::BTreeMap;

/// What a deploy finds on the platform before it holds the lock.
pub struct Survey {
    client: CfClient,
    kind: PlatformKind,
    router_port: u16,
    space_guid: String,
    domain: v3::Named,
    services: Vec<v3::ServiceInstance>,
    /// Services the local platform makes where missing: (name, type).
    new_services: Vec<(String, String)>,
    apps: BTreeMap<Color, v3::App>,
    route: Option<v3::Route>,
    pub mode: Mode,
    adopted: Option<v3::App>,
}

/// How a deploy runs on this foundation: two colors, or (`cf-canary`,
/// `cf-rolling`) one app through CF's deployments, or two colors because
/// the foundation cannot run those, and why.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Colors,
    Native,
    Fallback(String),
}

impl Mode {
    /// The apps a deploy in this mode acts on: the one app stands where a
    /// color would.
    fn apps(&self, file: &DeployFile) -> Vec<(Color, String)> {
        match self {
            Mode::Native => vec![(Color::Blue, file.app.clone())],
            _ => vec![(Color::Blue, file.blue()), (Color::Green, file.green())],
        }
    }
}

impl Site {
    /// Finds the space, domain, services, color apps and route, changing
    /// nothing. With `create` (a deploy to come), a service that is missing
    /// and cannot be made is an error here, before anything was made.
    pub async fn survey(
        file: &DeployFile,
        client: CfClient,
        router_port: u16,
        create: bool,
    ) -> anyhow::Result<Survey> {
        let (org, space, domain) = match file.platform {
            PlatformKind::Local => (
                local::ORG_NAME.to_string(),
                local::ORG_NAME.to_string(),
                Some(local::DOMAIN.to_string()),
            ),
            PlatformKind::Cf => {
                let (o, s) = cf_target()?;
                (o, s, None)
            }
        };
        let org_guid = client
            .find_org(&org)
            .await?
            .ok_or_else(|| missing(format!("organization `{org}`")))?
            .guid;
        let space_guid = client
            .find_space(&org_guid, &space)
            .await?
            .ok_or_else(|| missing(format!("space `{space}`")))?
            .guid;
        let domain = match domain {
            Some(name) => client
                .find_domain(&name)
                .await?
                .ok_or_else(|| missing(format!("domain `{name}`")))?,
            None => cf_domain(&client, file).await?,
        };
        let mut services = Vec::new();
        let mut new_services = Vec::new();
        for wanted in &file.services {
            let name = wanted.name();
            match client.find_service_instance(&space_guid, name).await? {
                Some(s) => services.push(s),
                None if create
                    && file.platform == PlatformKind::Local
                    && let Some(kind) = wanted.kind() =>
                {
                    new_services.push((name.to_string(), kind.to_string()));
                }
                None if !create => {}
                None => {
                    let fix = match file.platform {
                        PlatformKind::Local => format!(
                            "create it with `bluegreen platform service create {name} --type postgres`"
                        ),
                        PlatformKind::Cf => format!(
                            "create it in space `{space}` (`cf create-service OFFERING PLAN {name}`), \
                             or correct the name"
                        ),
                    };
                    return Err(crate::BadInput(format!(
                        "field `services`: no service instance named `{name}`; {fix}"
                    ))
                    .into());
                }
            }
        }
        let mode = match file.strategy.native() {
            false => Mode::Colors,
            true => match crate::platform::deployments::supported(&client).await {
                Ok(()) => Mode::Native,
                Err(why) => Mode::Fallback(why),
            },
        };
        if create && mode == Mode::Native {
            for name in [file.blue(), file.green()] {
                if client.find_app(&space_guid, &name).await?.is_some() {
                    return Err(crate::BadInput(format!(
                        "field `strategy`: `{}` deploys one app, `{}`, but this app is deployed \
                         with two colors (`{name}` exists); switching an app between the two is \
                         not supported yet: keep `strategy: canary` (or `blue-green`), or deploy \
                         under a new `app` name",
                        file.strategy.name(),
                        file.app
                    ))
                    .into());
                }
            }
        }
        let mut apps = BTreeMap::new();
        for (color, name) in mode.apps(file) {
            if let Some(app) = client.find_app(&space_guid, &name).await? {
                apps.insert(color, app);
            }
        }
        if create
            && mode == Mode::Native
            && let Some(app) = apps.get(&Color::Blue)
        {
            let others: Vec<String> = client
                .processes(&app.guid)
                .await?
                .into_iter()
                .filter(|p| p.kind != "web" && p.instances > 0)
                .map(|p| format!("`{}`", p.kind))
                .collect();
            if !others.is_empty() {
                return Err(crate::BadInput(format!(
                    "field `strategy`: `{}` replaces only the web instances step by step; app \
                     `{}` also runs {} processes, which CF restarts all at once when the \
                     deployment ends: use `strategy: canary` (two colors), or scale them to 0",
                    file.strategy.name(),
                    file.app,
                    others.join(", ")
                ))
                .into());
            }
        }
        let route = client
            .find_route(&domain.guid, &space_guid, file.route_host())
            .await?;
        // An app pushed before bluegreen under the deploy file's name, on
        // the route: the colors take the route over from it.
        let adopted = match (&mode, &route) {
            (Mode::Native, _) | (_, None) => None,
            (_, Some(r)) if ![file.blue(), file.green()].contains(&file.app) => client
                .find_app(&space_guid, &file.app)
                .await?
                .filter(|a| r.destinations.iter().any(|d| d.app.guid == a.guid)),
            _ => None,
        };
        Ok(Survey {
            client,
            kind: file.platform,
            router_port,
            space_guid,
            domain,
            services,
            new_services,
            apps,
            route,
            mode,
            adopted,
        })
    }
}

impl Survey {
    pub fn client(&self) -> &CfClient {
        &self.client
    }

    /// An app pushed before bluegreen that serves the route.
    pub fn adopted(&self) -> Option<&v3::App> {
        self.adopted.as_ref()
    }

    pub fn router_port(&self) -> u16 {
        self.router_port
    }

    /// The shared route's domain.
    pub fn domain(&self) -> &str {
        &self.domain.name
    }

    /// Where the app's lease is kept; neither store needs anything created
    /// first, so a first deploy holds the lock before it makes any app or
    /// route. Locally the daemon keys it by app name; Cloud Foundry keeps it
    /// on a lock app in the space that only one runner can create (see
    /// `platform::lease::cf`).
    pub fn lock_store(&self) -> Store {
        Store::of(self.kind, &self.space_guid)
    }

    /// The deploy file's services that are not there and that a deploy
    /// would not make (only the local platform makes a typed one).
    pub fn missing_services(&self, file: &DeployFile) -> Vec<String> {
        file.services
            .iter()
            .filter(|w| !self.services.iter().any(|s| s.name == w.name()))
            .filter(|w| !(self.kind == PlatformKind::Local && w.kind().is_some()))
            .map(|w| w.name().to_string())
            .collect()
    }

    /// The site, if both color apps and the route exist.
    pub fn found(mut self, file: &DeployFile) -> Option<Site> {
        let route = self.route.take()?;
        if self.apps.len() < self.mode.apps(file).len() {
            return None;
        }
        Some(self.into_site(file, route))
    }

    /// Makes the services, color apps and route that are missing (on Cloud
    /// Foundry also each color's own route): only once the lock is held.
    pub async fn create(mut self, file: &DeployFile) -> anyhow::Result<Site> {
        for (name, kind) in std::mem::take(&mut self.new_services) {
            let body = serde_json::json!({ "name": name, "type": kind });
            let _: serde_json::Value = self.client.post("/bluegreen/v1/services", &body).await?;
            let made = self
                .client
                .find_service_instance(&self.space_guid, &name)
                .await?;
            self.services
                .push(made.ok_or_else(|| missing(format!("service `{name}`")))?);
        }
        for (color, name) in self.mode.apps(file) {
            if !self.apps.contains_key(&color) {
                let app = self
                    .client
                    .create_app(&self.space_guid, &name, &file.env)
                    .await?;
                self.apps.insert(color, app);
            }
        }
        let route = match self.route.take() {
            Some(r) => r,
            None => {
                self.client
                    .create_route(&self.domain.guid, &self.space_guid, file.route_host())
                    .await?
            }
        };
        let (domain_guid, space_guid) = (self.domain.guid.clone(), self.space_guid.clone());
        let site = self.into_site(file, route);
        if site.mode == Mode::Native {
            // The one app is always on the route: CF's deployment moves
            // its instances, never the route.
            if !site.mapped(Color::Blue).await? {
                site.client
                    .map_route(&site.route.guid, &site.app(Color::Blue).guid)
                    .await?;
            }
        } else if site.kind == PlatformKind::Cf {
            for color in [Color::Blue, Color::Green] {
                site.ensure_color_route(color, &domain_guid, &space_guid)
                    .await?;
            }
        }
        Ok(site)
    }

    fn into_site(self, file: &DeployFile, route: v3::Route) -> Site {
        let host = file.route_host();
        let route_url = match self.kind {
            PlatformKind::Local => {
                format!("http://{host}.{}:{}", self.domain.name, self.router_port)
            }
            PlatformKind::Cf => format!("https://{host}.{}", self.domain.name),
        };
        Site {
            client: self.client,
            kind: self.kind,
            route,
            route_url,
            domain: self.domain.name,
            apps: self.apps,
            services: self.services,
            space_guid: self.space_guid,
            mode: self.mode,
            adopted: self.adopted,
        }
    }
}

/// The shared route's domain on Cloud Foundry: the one the deploy file
/// names (`domain`, `route: HOST.DOMAIN`; it must exist), else its
/// manifest's route's where the foundation has it, else the foundation's
/// only one; several and none named is refused with the list, rather than
/// a guess at the first.
async fn cf_domain(client: &CfClient, file: &DeployFile) -> anyhow::Result<v3::Named> {
    if let Some(name) = file
        .manifest_domain()
        .filter(|_| file.named_domain().is_none())
        && let Some(d) = client.find_domain(&name).await?
    {
        return Ok(d);
    }
    if let Some(name) = file.named_domain() {
        if let Some(d) = client.find_domain(&name).await? {
            return Ok(d);
        }
        let all: Vec<v3::Named> = client.list("/v3/domains").await?;
        let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
        return Err(crate::BadInput(format!(
            "field `domain`: this foundation has no domain `{name}` (it has {}); name one of \
             those with `domain:` or `route: HOST.DOMAIN`",
            names.join(", ")
        ))
        .into());
    }
    let mut all: Vec<v3::Named> = client.list("/v3/domains").await?;
    match all.len() {
        0 => Err(missing("a domain for the route".into()).into()),
        1 => Ok(all.remove(0)),
        _ => {
            let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
            Err(crate::BadInput(format!(
                "field `domain`: this foundation has {} domains ({}) and the deploy file names \
                 none: add `domain: {}` (or `route: {}.{}`) for the one the route goes on",
                names.len(),
                names.join(", "),
                names[0],
                file.route_host(),
                names[0]
            ))
            .into())
        }
    }
}
