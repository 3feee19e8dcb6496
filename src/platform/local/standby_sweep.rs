//! The local daemon ends standbys on time: a color a deploy left running off
//! the route (`scale_down_delay`) is stopped once the expiry its app's
//! annotation records has passed, whether or not any bluegreen command runs
//! then. (Cloud Foundry has no such daemon: there the next command that
//! opens the app's site does it, `deploy::standby::expire`.)

use super::records::{APP, AppRec};
use super::state::Platform;
use crate::platform::standby;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How often the daemon looks: the most a standby outlives its time.
const EVERY: Duration = Duration::from_millis(250);

/// Looks every [`EVERY`] until `stop` says the daemon shuts down.
pub fn spawn(
    platform: Arc<Platform>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
            if platform.faults.sweeps_standbys() {
                sweep(&platform).await;
            }
        }
    })
}

/// Stops every app whose standby time has ended and records that it did.
/// A failure here is retried at the next look (the record stays).
async fn sweep(platform: &Arc<Platform>) {
    let now = SystemTime::now();
    let p = platform.clone();
    let Ok(Ok(apps)) = tokio::task::spawn_blocking(move || p.all::<AppRec>(APP)).await else {
        return;
    };
    for rec in apps
        .iter()
        .filter(|r| standby::expired(&r.app.metadata.annotations, now))
    {
        let guid = rec.app.guid.clone();
        if rec.app.state != "STOPPED" && platform.set_state(&guid, "stop").await.is_err() {
            continue;
        }
        let p = platform.clone();
        let _ = tokio::task::spawn_blocking(move || {
            p.update_metadata(&guid, Some(standby::ended(now)))
        })
        .await;
    }
}
