//! The executor's side of `scale_down_delay`: recording the standby and its
//! expiry on its app, ending a standby when its color gets new bits or
//! serves again, and undoing a standby deploy, where a color that was off
//! the route goes back off it (mapping it would serve two releases).

use super::{Executor, Stop};
use crate::deploy::site;
use crate::platform::standby::{STANDBY_ENDED, STANDBY_UNTIL, format_time};
use crate::platform::v3;
use crate::plugin::context::Color;
use std::time::{Duration, SystemTime};

impl Executor {
    /// This deploy keeps a standby (its plan is `plan::standby`'s).
    pub(super) fn standby_mode(&self) -> bool {
        self.file.scale_down_delay.is_some() && self.site.mode != site::Mode::Native
    }

    /// `Step::Standby`: `color` is off the route and keeps running; its app
    /// records until when.
    pub(super) async fn keep_standby(&mut self, color: Color, keep: Duration) -> Result<(), Stop> {
        let until = format_time(SystemTime::now() + keep);
        self.record_standby(color, Some(until.clone())).await?;
        let app = &self.site.app(color).name;
        let release = self.record.before[&color].release.clone();
        self.report.event(
            serde_json::json!({"event": "standby", "color": color, "app": app,
            "release": release, "until": until}),
        );
        self.report.say(&format!(
            "  {app} stays up off the route on release {} until {until}: `bluegreen rollback` \
             maps it again without a push",
            release.as_deref().unwrap_or("(none)")
        ));
        Ok(())
    }

    /// Sets (or with `None` clears) `color`'s standby expiry.
    pub(super) async fn record_standby(
        &self,
        color: Color,
        until: Option<String>,
    ) -> Result<(), crate::platform::PlatformError> {
        let mut meta = v3::Metadata::default();
        meta.annotations.insert(STANDBY_UNTIL.into(), until);
        meta.annotations.insert(STANDBY_ENDED.into(), None);
        self.site
            .client
            .set_metadata(&self.site.app(color).guid, &meta)
            .await
            .map(|_| ())
    }

    /// Before `color` gets new bits: it is no standby any more, so nobody
    /// stops it on the old expiry meanwhile.
    pub(super) async fn end_standby(&self, color: Color) -> Result<(), Stop> {
        if self.site.annotation(color, STANDBY_UNTIL).is_some() {
            self.record_standby(color, None).await?;
        }
        Ok(())
    }

    /// Undoing a standby deploy for `color`, which was off the route before
    /// it: off the route again. Pushed in this deploy, it runs the release
    /// that failed, so it stops; otherwise (a rollback to it that failed) it
    /// is the standby it was, with its expiry.
    pub(super) async fn park(&mut self, color: Color) -> String {
        let was_mapped = self.site.mapped(color).await.unwrap_or(true);
        let off = self.take_off_route(color).await;
        let client = self.site.client.clone();
        let guid = self.site.app(color).guid.clone();
        let pushed = self.record.droplets.contains_key(&color);
        // It does not serve the newest release: the next deploy's order
        // must not change because of this one.
        let mut meta = v3::Metadata::default();
        meta.annotations.insert(
            site::DEPLOYED_AT.into(),
            self.record.before[&color].deployed_at.clone(),
        );
        let until = self
            .site
            .annotation(color, STANDBY_UNTIL)
            .filter(|_| !pushed);
        meta.annotations.insert(STANDBY_UNTIL.into(), until.clone());
        if let Err(e) = client.set_metadata(&guid, &meta).await {
            return format!("{color}: {off}; recording it failed: {e}");
        }
        if !pushed {
            return format!(
                "{color}: {off}; it stays the standby{}",
                until.map(|u| format!(" until {u}")).unwrap_or_default()
            );
        }
        // What it answered while on the route finishes first.
        if was_mapped && let Err(e) = self.drain(color, self.file.drain, "stops").await {
            let e = e.into_error();
            return format!("{color}: {off}; waiting for its requests failed: {e}");
        }
        match client.app_action(&guid, "stop").await {
            Ok(_) => {
                format!("{color} ran the new release off the route: {off}, and it was stopped")
            }
            Err(e) => format!("{color}: {off}; stopping it failed: {e}"),
        }
    }
}
