//! Adopting an app pushed before bluegreen (`cf push shop`, one app, no
//! colors): the colors are deployed beside it on its route, and once both
//! serve, it leaves the route, finishes what it is answering (the deploy
//! file's drain) and stops. It is kept, stopped, so nothing is lost that
//! someone may still want (`cf delete` is theirs to run); until this step,
//! a failure leaves it serving as before.

use super::{Executor, Stop};
use std::time::Duration;

impl Executor {
    pub(super) async fn retire(&mut self, name: &str, up_to: Duration) -> Result<(), Stop> {
        let Some(app) = self.site.adopted.clone() else {
            return Ok(());
        };
        let client = self.site.client.clone();
        let on_route = client
            .destinations(&self.site.route.guid)
            .await?
            .iter()
            .any(|d| d.app.guid == app.guid);
        if on_route {
            client.unmap_route(&self.site.route.guid, &app.guid).await?;
            let who = ("app", name.to_string(), format!("`{name}`"));
            self.drain_app(&app.guid, up_to, who, "stops").await?;
        }
        client.app_action(&app.guid, "stop").await?;
        self.report.say(&format!(
            "  `{name}` is off the route and stopped; the colors serve it now (delete it with \
             `cf delete {name}` when sure)"
        ));
        Ok(())
    }
}
