//! The standby's record on its app, shared by the deploy that leaves a color
//! running off the route (`scale_down_delay`) and whoever stops it when its
//! time ends: the local daemon on its own, or on Cloud Foundry, which has
//! no such daemon, the next bluegreen command that opens the app's site.
//! Annotations, not a local file, so a second machine (or CI) sees the
//! same standby and the same expiry.

use std::collections::BTreeMap;
use std::time::SystemTime;

/// When the standby's time ends (RFC 3339); set while it is a standby.
pub const STANDBY_UNTIL: &str = "bluegreen.dev/standby-until";
/// When it was stopped because its time ended (RFC 3339).
pub const STANDBY_ENDED: &str = "bluegreen.dev/standby-ended";

pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The expiry an app's annotations record, if it is a standby.
pub fn until(annotations: &BTreeMap<String, Option<String>>) -> Option<SystemTime> {
    let text = annotations.get(STANDBY_UNTIL)?.as_deref()?;
    humantime::parse_rfc3339_weak(text).ok()
}

/// Whether the standby's time has ended at `now`.
pub fn expired(annotations: &BTreeMap<String, Option<String>>, now: SystemTime) -> bool {
    until(annotations).is_some_and(|t| t <= now)
}

/// The metadata patch that ends a standby at `now`: no expiry any more, and
/// when it ended.
pub fn ended(now: SystemTime) -> super::v3::Metadata {
    let mut meta = super::v3::Metadata::default();
    meta.annotations.insert(STANDBY_UNTIL.into(), None);
    meta.annotations
        .insert(STANDBY_ENDED.into(), Some(format_time(now)));
    meta
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_standby_expires_at_its_recorded_time_and_not_before() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut a = BTreeMap::new();
        assert!(!expired(&a, t));
        a.insert(STANDBY_UNTIL.to_string(), Some(format_time(t)));
        assert_eq!(until(&a), Some(t));
        assert!(!expired(&a, t - Duration::from_millis(1)));
        assert!(expired(&a, t));
        // A value nobody can read is no standby (never stopped on a guess).
        a.insert(STANDBY_UNTIL.to_string(), Some("soon".into()));
        assert!(!expired(&a, t + Duration::from_secs(9)));
        let patch = ended(t);
        assert_eq!(patch.annotations[STANDBY_UNTIL], None);
    }
}
