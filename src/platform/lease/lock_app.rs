//! The lock app as Cloud Foundry shows it: its name, how it is found and
//! its lease read (shifted onto this machine's clock by the answer's
//! `Date`), and which of CF's answers mean "taken" and "gone". The
//! protocol that takes and renews it is in `cf`.

use super::{ANNOTATION, Lease, unix_now};
use crate::platform::calls::q;
use crate::platform::{PlatformError, client::CfClient, v3};
use reqwest::Method;
use std::time::UNIX_EPOCH;

/// What makes an app's name the lock app's: `<app>-bluegreen-lock`. Color
/// apps may not end with it (see the deploy file's checks).
pub const LOCK_SUFFIX: &str = "-bluegreen-lock";

/// The label that marks a lock app (`bluegreen.dev/role=lock`), for
/// listings that select by label rather than by name.
pub const ROLE_LABEL: &str = "bluegreen.dev/role";

pub fn lock_app_name(app: &str) -> String {
    format!("{app}{LOCK_SUFFIX}")
}

/// Whether `app` is a lock app, not an app that runs anything.
pub fn is_lock_app(app: &v3::App) -> bool {
    app.name.ends_with(LOCK_SUFFIX)
        || app.metadata.labels.get(ROLE_LABEL).cloned().flatten() == Some("lock".into())
}

/// The lock app as read: its guid, and its lease (expiry on our clock).
pub(super) struct Found {
    pub guid: String,
    pub lease: Lease,
}

/// How long a lock app without a readable lease holds the lock after it
/// was made: a lease's length (`deploy::lock::TTL`).
const UNREADABLE_FOR: u64 = 60;

/// The lease of a lock app that has none to read (made by hand, or by a
/// platform that dropped the create's metadata): it holds the lock like a
/// lease written when the app was made, so it is taken over only once that
/// would have expired, never by a runner that merely finds it bare while
/// its maker's create is still answering. In the server's time.
fn unreadable(app: &str, lock: &v3::App) -> Lease {
    let made = humantime::parse_rfc3339_weak(&lock.created_at)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Lease {
        id: "unknown".into(),
        app: app.into(),
        host: "unknown".into(),
        pid: 0,
        command: format!("(app `{}` carries no readable lease)", lock.name),
        since: lock.created_at.clone(),
        expires: made + UNREADABLE_FOR,
        process: None,
    }
}

impl CfClient {
    /// The lock app of `app` in the space, and how far the server's clock
    /// is ahead of ours.
    pub(super) async fn read_lock_app(
        &self,
        space_guid: &str,
        app: &str,
    ) -> Result<(Option<Found>, i64), PlatformError> {
        let path = format!(
            "/v3/apps?names={}&space_guids={}",
            q(&lock_app_name(app)),
            q(space_guid)
        );
        let resp = self.request::<()>(Method::GET, &path, None).await?;
        let skew = skew(resp.headers().get(reqwest::header::DATE));
        let fail = |message: String| PlatformError::Http {
            method: "GET".into(),
            url: path.clone(),
            message,
        };
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| fail(format!("reading the answer: {}", e.without_url())))?;
        let page: v3::List<v3::App> = serde_json::from_slice(&bytes)
            .map_err(|e| fail(format!("unexpected response body: {e}")))?;
        let found = page.resources.into_iter().next().map(|a| {
            let lease = a
                .metadata
                .annotations
                .get(ANNOTATION)
                .cloned()
                .flatten()
                .and_then(|s| serde_json::from_str::<Lease>(&s).ok())
                .unwrap_or_else(|| unreadable(app, &a));
            Found {
                lease: Lease {
                    expires: lease.expires.saturating_add_signed(-skew),
                    ..lease
                },
                guid: a.guid,
            }
        });
        Ok((found, skew))
    }
}

/// CF's refusal of a second app of one name: 422 `CF-UniquenessError`
/// (10016), as CC's `AppCreate` answers since July 2020 and Korifi's app
/// repository since 2022; before, CC said it with a 422
/// `CF-UnprocessableEntity`: "App with the name '...' already exists."
/// (from October 2019), "name must be unique in space" (earlier).
pub(super) fn name_taken(e: &PlatformError) -> bool {
    match e {
        PlatformError::Api {
            status: 422,
            code,
            title,
            detail,
            ..
        } => {
            *code == 10016
                || title == "CF-UniquenessError"
                || detail.contains("already exists")
                || detail.contains("must be unique")
        }
        _ => false,
    }
}

/// The app is not there (any more): CF's 404 for a resource, not the 404
/// of an endpoint it does not serve.
pub(super) fn gone(e: &PlatformError) -> bool {
    matches!(e, PlatformError::Api { status: 404, .. }) && !e.is_unknown_endpoint()
}

/// Seconds the server's clock (a response's `Date`) is ahead of ours. The
/// header has whole seconds, so within 2 s the clocks count as agreeing.
fn skew(date: Option<&reqwest::header::HeaderValue>) -> i64 {
    let Some(server) = date
        .and_then(|d| d.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
    else {
        return 0;
    };
    let skew = server.as_secs() as i64 - unix_now() as i64;
    if skew.abs() <= 2 { 0 } else { skew }
}
