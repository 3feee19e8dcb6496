//! Routes and their destinations, and the router table built from them. A
//! host is one route's, never two: the check and the write share a
//! transaction. As on CF, an app has no route until one is created and
//! mapped to it (`POST /v3/apps` makes none), so a client's own route for
//! an app's name is its to create. Every change swaps a fresh table into
//! the router, which is how a blue-green switch takes effect.

use super::super::records::*;
use super::super::router::{DOMAIN, Dest, Table};
use super::{ApiErr, ApiResult, Platform};
use crate::platform::v3;

impl Platform {
    pub fn create_route(&self, host: &str) -> ApiResult<v3::Route> {
        let route = self.transaction(|tx| {
            if tx.all::<v3::Route>(ROUTE)?.iter().any(|r| r.host == host) {
                return Err(ApiErr::unprocessable(format!(
                    "Route already exists with host '{host}' for domain '{DOMAIN}'."
                )));
            }
            let route = v3::Route {
                guid: new_guid(),
                host: host.to_string(),
                path: String::new(),
                url: format!("{host}.{DOMAIN}"),
                destinations: vec![],
                relationships: [
                    ("space".to_string(), v3::ToOne::to(SPACE_GUID)),
                    ("domain".to_string(), v3::ToOne::to(DOMAIN_GUID)),
                ]
                .into(),
            };
            tx.put(ROUTE, &route.guid, &route)?;
            Ok(route)
        })?;
        self.refresh_routes()?;
        Ok(route)
    }

    /// Adds destinations to a route (`replace`: instead of those it has).
    /// An app already there is not added twice; each must exist. Returns
    /// the route's destinations.
    pub fn change_destinations(
        &self,
        guid: &str,
        add: Vec<v3::Destination>,
        replace: bool,
    ) -> ApiResult<Vec<v3::Destination>> {
        let destinations = self.transaction(|tx| {
            tx.update(ROUTE, guid, |route: &mut v3::Route| {
                if replace {
                    route.destinations.clear();
                }
                for mut d in add {
                    tx.get::<AppRec>(APP, &d.app.guid)?;
                    if let Some(x) = route
                        .destinations
                        .iter_mut()
                        .find(|x| x.app.guid == d.app.guid)
                    {
                        x.weight = d.weight;
                        continue;
                    }
                    d.guid = new_guid();
                    d.app
                        .process
                        .get_or_insert(v3::ProcessType { kind: "web".into() });
                    route.destinations.push(d);
                }
                Ok(route.destinations.clone())
            })
        })?;
        self.refresh_routes()?;
        Ok(destinations)
    }

    pub fn remove_destination(&self, guid: &str, destination: &str) -> ApiResult<()> {
        self.update(ROUTE, guid, |route: &mut v3::Route| {
            let before = route.destinations.len();
            route.destinations.retain(|d| d.guid != destination);
            if route.destinations.len() == before {
                return Err(ApiErr::not_found("Destination"));
            }
            Ok(())
        })?;
        self.refresh_routes()
    }

    /// Rebuilds the router's table from the routes and swaps it in.
    /// The swap happens before the store's mutex is let go: two refreshes
    /// racing cannot leave the older state's table in the router.
    pub fn refresh_routes(&self) -> ApiResult<()> {
        self.transaction(|tx| {
            let mut table = Table::default();
            for route in tx.all::<v3::Route>(ROUTE)? {
                let apps = route
                    .destinations
                    .iter()
                    .map(|d| Dest {
                        app_guid: d.app.guid.clone(),
                        weight: d.weight,
                    })
                    .collect();
                table.0.insert(format!("{}.{DOMAIN}", route.host), apps);
            }
            self.router.set_table(table);
            Ok(())
        })
    }
}
