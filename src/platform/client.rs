//! The Cloud Foundry v3 client, for a real CF, Korifi, or the local platform.
//!
//! Follows pagination, turns CF error envelopes into [`PlatformError::Api`],
//! honours `Retry-After` on 429, retries idempotent calls on connection errors
//! and 5xx with backoff, refreshes an expiring cf-login token, and bounds
//! every wait. Tokens never reach logs or errors.

use super::PlatformError;
use super::auth::{self, CfConfig, Grant};
use super::v3;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

const MAX_ATTEMPTS: u32 = 4;
const MAX_PAGES: usize = 1000;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

enum Credentials {
    Token(String),
    /// A cf login's tokens, refreshed; with a grant, renewed by it when
    /// there is no refresh token or it is refused.
    CfLogin(Box<CfConfig>, Option<auth::Grant>),
}

/// Clones share one connection pool and one set of credentials (a refreshed
/// token is seen by all).
#[derive(Clone)]
pub struct CfClient {
    http: reqwest::Client,
    api: String,
    credentials: std::sync::Arc<Mutex<Credentials>>,
    poll_interval: Duration,
}

impl CfClient {
    /// A client with a fixed bearer token (local platform, or CI variables).
    pub fn with_token(api: &str, token: &str) -> CfClient {
        Self::new(
            api,
            Credentials::Token(auth::strip_bearer(token).to_string()),
            false,
        )
    }

    /// A client using (and refreshing) an existing `cf login`. A login made
    /// with `cf api --skip-ssl-validation` checks no certificate, and says so.
    pub fn from_cf_login(config: CfConfig) -> CfClient {
        let api = config.target.clone();
        let insecure = config.ssl_disabled;
        if insecure {
            super::trust::skip_verification();
            crate::output::write_stderr(&format!(
                "warning: the cf login skips SSL validation (`cf api --skip-ssl-validation`): \
                 certificates of {} and its apps are not checked; trust its CA with \
                 BLUEGREEN_CA_FILE (or SSL_CERT_FILE) instead\n",
                crate::output::printable(&api)
            ));
        }
        Self::new(&api, Credentials::CfLogin(Box::new(config), None), insecure)
    }

    /// A client for `api` that logs in with `grant` (its token endpoint is
    /// found from the API's root document on first use).
    pub fn with_grant(api: &str, grant: Grant) -> CfClient {
        let config = CfConfig::for_api(api.trim_end_matches('/'));
        Self::new(
            api,
            Credentials::CfLogin(Box::new(config), Some(grant)),
            false,
        )
    }

    /// A client for Cloud Foundry, from the variables CI jobs and the cf CLI
    /// use: `CF_API` with `CF_ACCESS_TOKEN`, or with `CF_USERNAME` and
    /// `CF_PASSWORD` (as `cf auth`), or with `CF_CLIENT_ID` and
    /// `CF_CLIENT_SECRET` (`cf auth --client-credentials`); without `CF_API`
    /// the cf CLI's login in `$CF_HOME/.cf/config.json`. `var` looks up
    /// environment variables (`|k| std::env::var(k).ok()`).
    pub fn for_cloud_foundry(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<CfClient, PlatformError> {
        let var = |k: &str| var(k).filter(|v| !v.is_empty());
        let pair = |a: &str, b: &str| match (var(a), var(b)) {
            (Some(x), Some(y)) => Ok(Some((x, y))),
            (None, None) => Ok(None),
            (x, _) => Err(PlatformError::Auth(format!(
                "{} is set but {} is not: set both",
                if x.is_some() { a } else { b },
                if x.is_some() { b } else { a },
            ))),
        };
        let password = pair("CF_USERNAME", "CF_PASSWORD")?;
        let client = pair("CF_CLIENT_ID", "CF_CLIENT_SECRET")?;
        let Some(api) = var("CF_API") else {
            if password.is_some() || client.is_some() || var("CF_ACCESS_TOKEN").is_some() {
                return Err(PlatformError::Auth(
                    "CF credentials are set but CF_API is not: set CF_API to the API's URL \
                     (`cf api` prints it)"
                        .into(),
                ));
            }
            let home = var("CF_HOME").or_else(|| var("HOME")).unwrap_or_default();
            let path = std::path::Path::new(&home).join(".cf").join("config.json");
            return Ok(CfClient::from_cf_login(CfConfig::load(&path)?));
        };
        match (var("CF_ACCESS_TOKEN"), password, client) {
            (Some(token), None, None) => Ok(CfClient::with_token(&api, &token)),
            (None, Some((username, password)), None) => Ok(CfClient::with_grant(
                &api,
                Grant::Password { username, password },
            )),
            (None, None, Some((id, secret))) => {
                Ok(CfClient::with_grant(&api, Grant::Client { id, secret }))
            }
            (None, None, None) => Err(PlatformError::Auth(
                "CF_API is set without credentials: set CF_ACCESS_TOKEN, CF_USERNAME and \
                 CF_PASSWORD, or CF_CLIENT_ID and CF_CLIENT_SECRET (or unset CF_API to use the \
                 cf login)"
                    .into(),
            )),
            _ => Err(PlatformError::Auth(
                "more than one set of CF credentials: set only one of CF_ACCESS_TOKEN, \
                 CF_USERNAME/CF_PASSWORD and CF_CLIENT_ID/CF_CLIENT_SECRET"
                    .into(),
            )),
        }
    }

    fn new(api: &str, credentials: Credentials, insecure: bool) -> CfClient {
        // `BLUEGREEN_API_TIMEOUT` (`30s`, `2m`) bounds each call; the default
        // leaves room for a large upload.
        let timeout = std::env::var("BLUEGREEN_API_TIMEOUT")
            .ok()
            .and_then(|t| crate::units::parse_duration(&t).ok())
            .unwrap_or(Duration::from_secs(120));
        let http = super::trust::client_builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .danger_accept_invalid_certs(insecure)
            .build()
            .expect("HTTP client");
        CfClient {
            http,
            api: api.trim_end_matches('/').to_string(),
            credentials: std::sync::Arc::new(Mutex::new(credentials)),
            poll_interval: Duration::from_millis(200),
        }
    }

    pub fn api(&self) -> &str {
        &self.api
    }

    async fn bearer(&self, force_refresh: bool) -> Result<String, PlatformError> {
        let mut creds = self.credentials.lock().await;
        match &mut *creds {
            Credentials::Token(t) => Ok(t.clone()),
            Credentials::CfLogin(config, grant) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                if force_refresh
                    || config.access_token.is_empty()
                    || auth::needs_refresh(&config.access_token, now)
                {
                    self.renew(config, grant.as_ref()).await?;
                }
                Ok(config.bearer().to_string())
            }
        }
    }

    /// A new access token: refreshed while there is a refresh token UAA
    /// accepts, else granted again.
    async fn renew(
        &self,
        config: &mut CfConfig,
        grant: Option<&Grant>,
    ) -> Result<(), PlatformError> {
        if config.token_endpoint().is_empty() {
            config.uaa_endpoint = self.token_endpoint().await?;
        }
        let refreshed = if config.refresh_token.is_empty() {
            None
        } else {
            Some(auth::refresh(&self.http, config).await)
        };
        let fresh = match (refreshed, grant) {
            (Some(Ok(fresh)), _) => fresh,
            (Some(Err(e)), None) => return Err(e),
            (None, None) => {
                return Err(PlatformError::Auth(
                    "the cf login has no refresh token (run `cf login`)".into(),
                ));
            }
            (_, Some(grant)) => auth::grant(&self.http, config, grant).await?,
        };
        config.access_token = fresh.access_token;
        config.refresh_token = fresh.refresh_token.unwrap_or_default();
        Ok(())
    }

    /// The token endpoint the API's root document links (`uaa`, else
    /// `login`), where a password or client secret may go: over https, or
    /// at the API's own origin.
    async fn token_endpoint(&self) -> Result<String, PlatformError> {
        let url = format!("{}/", self.api);
        let fail = |message: String| PlatformError::Http {
            method: "GET".into(),
            url: url.clone(),
            message,
        };
        let root: Value = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| fail(super::trust::describe(e)))?
            .json()
            .await
            .map_err(|e| fail(format!("the root document: {}", super::trust::describe(e))))?;
        let link = ["uaa", "login"]
            .iter()
            .find_map(|k| root["links"][k]["href"].as_str())
            .ok_or_else(|| fail("the root document links no `uaa` or `login`".into()))?;
        self.check_link(link)?;
        Ok(link.trim_end_matches('/').to_string())
    }

    /// One API call with retries; `path` is relative to the API root or an
    /// absolute URL (pagination links).
    pub async fn request<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, PlatformError> {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.api)
        };
        // Absolute URLs come from the server (`next` links, `Location`): the
        // bearer token goes only to the API's own origin, never to a host a
        // response names.
        if origin(&url) != origin(&self.api) {
            return Err(PlatformError::Http {
                method: method.to_string(),
                url: url.clone(),
                message: format!(
                    "refusing to send credentials to {}: not the API's origin {}",
                    origin(&url).unwrap_or_else(|| "an unparsable URL".into()),
                    origin(&self.api).unwrap_or_default()
                ),
            });
        }
        self.send(method, url, body).await
    }

    /// `GET` a URL on a service the API's own root document (`GET /`) links,
    /// such as log-cache, with the API's token: the cf CLI sends it there
    /// too. Only for links from that document; a URL any other answer names
    /// never gets the token (see `request`), nor does a link that
    /// [`CfClient::check_link`] refuses.
    pub(crate) async fn get_linked<T: DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, PlatformError> {
        self.check_link(url)?;
        let resp = self.send(Method::GET, url.to_string(), None::<&()>).await?;
        let fail = |message: String| PlatformError::Http {
            method: "GET".into(),
            url: url.to_string(),
            message,
        };
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| fail(format!("reading the answer: {}", super::trust::describe(e))))?;
        serde_json::from_slice(&bytes).map_err(|e| fail(format!("unexpected response body: {e}")))
    }

    /// Whether a service the root document links may get the API's token:
    /// only over https, or at the API's own origin (which has it already).
    /// A root document answered over plain http, or tampered with, could
    /// otherwise send the token in clear text to any host it names.
    pub(crate) fn check_link(&self, url: &str) -> Result<(), PlatformError> {
        let https = reqwest::Url::parse(url).is_ok_and(|u| u.scheme() == "https");
        if https || origin(url).is_some_and(|o| Some(o) == origin(&self.api)) {
            return Ok(());
        }
        Err(PlatformError::Http {
            method: "GET".into(),
            url: url.to_string(),
            message: format!(
                "refusing to send credentials to {}: a service the API links gets its token \
                 only over https or at the API's own origin {}",
                origin(url).unwrap_or_else(|| "an unparsable URL".into()),
                origin(&self.api).unwrap_or_default()
            ),
        })
    }

    /// The call itself, to a URL already allowed the token.
    async fn send<B: Serialize>(
        &self,
        method: Method,
        url: String,
        body: Option<&B>,
    ) -> Result<reqwest::Response, PlatformError> {
        let idempotent = idempotent(&method, &url);
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.bearer(false).await?;
            let mut req = self.http.request(method.clone(), &url).bearer_auth(&token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let fail = |message: String| PlatformError::Http {
                method: method.to_string(),
                url: url.clone(),
                message,
            };
            let resp = match req.send().await {
                Ok(r) => r,
                // A connection refused, reset or timed out: the call may
                // not have happened, and repeating it is harmless.
                Err(e)
                    if idempotent
                        && attempt < MAX_ATTEMPTS
                        && (e.is_connect() || e.is_timeout() || e.is_request()) =>
                {
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(fail(super::trust::describe(e))),
            };
            let status = resp.status();
            crate::output::detail(&format!("{method} {url} → {}", status.as_u16()));
            if status == StatusCode::TOO_MANY_REQUESTS && attempt < MAX_ATTEMPTS {
                tokio::time::sleep(retry_after(&resp).unwrap_or(backoff(attempt))).await;
                continue;
            }
            if status.is_server_error() && idempotent && attempt < MAX_ATTEMPTS {
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            if status.is_success() {
                return Ok(resp);
            }
            let err = api_error(&method, &url, status, resp).await;
            if status == StatusCode::UNAUTHORIZED
                && !refreshed
                && matches!(&err, PlatformError::Api { code: 1000, .. })
            {
                let is_login = matches!(&*self.credentials.lock().await, Credentials::CfLogin(..));
                if is_login {
                    refreshed = true;
                    self.bearer(true).await?;
                    continue;
                }
            }
            return Err(err);
        }
    }

    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, PlatformError> {
        let fail = |message: String| PlatformError::Http {
            method: method.to_string(),
            url: path.to_string(),
            message,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = self.request(method.clone(), path, body).await?;
            // A connection dropped mid-answer: as in `request`, an
            // idempotent call is asked again.
            let bytes = match resp.bytes().await {
                Ok(b) => b,
                Err(_) if idempotent(&method, path) && attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => {
                    return Err(fail(format!(
                        "reading the answer: {}",
                        super::trust::describe(e)
                    )));
                }
            };
            return serde_json::from_slice(&bytes)
                .map_err(|e| fail(format!("unexpected response body: {e}")));
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, PlatformError> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, PlatformError> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, PlatformError> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// A multipart upload; not retried (the body is consumed).
    pub async fn upload(
        &self,
        path: &str,
        form: reqwest::multipart::Form,
        timeout: Duration,
    ) -> Result<(), PlatformError> {
        let url = format!("{}{path}", self.api);
        let token = self.bearer(false).await?;
        let resp = self
            .http
            .post(&url)
            .timeout(timeout)
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .map_err(|e| PlatformError::Http {
                method: "POST".into(),
                url: url.clone(),
                message: super::trust::describe(e),
            })?;
        crate::output::detail(&format!("POST {url} (upload) → {}", resp.status().as_u16()));
        if !resp.status().is_success() {
            return Err(api_error(&Method::POST, &url, resp.status(), resp).await);
        }
        Ok(())
    }

    /// Applies a manifest (`POST /v3/spaces/:guid/actions/apply_manifest`,
    /// a YAML body) and waits for the job it answers with. Applying the same
    /// manifest twice changes nothing, so a connection that failed before an
    /// answer is tried again.
    pub async fn apply_manifest(
        &self,
        space_guid: &str,
        yaml: &str,
        timeout: Duration,
    ) -> Result<v3::Job, PlatformError> {
        let url = format!("{}/v3/spaces/{space_guid}/actions/apply_manifest", self.api);
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let token = self.bearer(false).await?;
            let sent = self
                .http
                .post(&url)
                .bearer_auth(&token)
                .header(reqwest::header::CONTENT_TYPE, "application/x-yaml")
                .body(yaml.to_string())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_server_error() && attempt < MAX_ATTEMPTS => {}
                Ok(r) => break r,
                Err(e) if attempt < MAX_ATTEMPTS && (e.is_connect() || e.is_timeout()) => {}
                Err(e) => {
                    return Err(PlatformError::Http {
                        method: "POST".into(),
                        url,
                        message: super::trust::describe(e),
                    });
                }
            }
            tokio::time::sleep(backoff(attempt)).await;
        };
        if !resp.status().is_success() {
            return Err(api_error(&Method::POST, &url, resp.status(), resp).await);
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
            .ok_or_else(|| PlatformError::Failed {
                what: "applying the manifest".into(),
                detail: "the answer has no Location header naming its job".into(),
            })?;
        self.wait_job(&location, timeout).await
    }

    /// Every resource of a list, following `next` links (bounded).
    pub async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, PlatformError> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else {
                return Ok(out);
            };
            let page: v3::List<T> = self.get(&url).await?;
            out.extend(page.resources);
            next = page.pagination.next.map(|l| l.href);
        }
        Err(PlatformError::Failed {
            what: format!("listing {path}"),
            detail: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// Polls `GET path` until `done` says it is finished, or `timeout`.
    pub async fn wait_for<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        timeout: Duration,
        done: impl Fn(&T) -> bool,
    ) -> Result<T, PlatformError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let v: T = self.get(path).await?;
            if done(&v) {
                return Ok(v);
            }
            if tokio::time::Instant::now() + self.poll_interval > deadline {
                return Err(PlatformError::Timeout {
                    what: what.to_string(),
                    after: timeout,
                });
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// Waits for the job an asynchronous call answered with (`Location`).
    pub async fn wait_job(
        &self,
        location: &str,
        timeout: Duration,
    ) -> Result<v3::Job, PlatformError> {
        let job: v3::Job = self
            .wait_for("job", location, timeout, |j: &v3::Job| {
                matches!(j.state.as_str(), "COMPLETE" | "FAILED")
            })
            .await?;
        if job.state == "FAILED" {
            let detail = job
                .errors
                .iter()
                .map(|e| format!("{} ({}): {}", e.title, e.code, e.detail))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(PlatformError::Failed {
                what: format!("job {}", job.operation),
                detail,
            });
        }
        Ok(job)
    }

    pub fn to_one(guid: &str) -> Value {
        json!({ "data": { "guid": guid } })
    }
}

/// `scheme://host:port` of a URL (the port made explicit).
fn origin(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    Some(format!(
        "{}://{}:{}",
        u.scheme(),
        u.host_str()?,
        u.port_or_known_default()?
    ))
}

/// Calls that may be sent again when their answer was lost: every method
/// the v3 API uses but POST (its PATCHes set values, they do not add).
/// Whether a call may be sent again after a timeout or 5xx. Besides every
/// method but POST: an app's start, stop and restart actions, which end in
/// the same state however often they run (a restart that timed out while
/// undoing a failed step is then not the end of the undo).
fn idempotent(method: &Method, url: &str) -> bool {
    let path = url.split('?').next().unwrap_or(url);
    *method != Method::POST
        || ["/actions/start", "/actions/stop", "/actions/restart"]
            .iter()
            .any(|a| path.contains("/v3/apps/") && path.ends_with(a))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 << attempt.min(5))
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

async fn api_error(
    method: &Method,
    url: &str,
    status: StatusCode,
    resp: reqwest::Response,
) -> PlatformError {
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
        .unwrap_or_default();
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<v3::ErrorEnvelope>(&text)
        .ok()
        .and_then(|e| e.errors.into_iter().next())
    {
        Some(e) => PlatformError::Api {
            method: method.to_string(),
            path,
            status: status.as_u16(),
            code: e.code,
            title: e.title,
            detail: e.detail,
        },
        None => PlatformError::Api {
            method: method.to_string(),
            path,
            status: status.as_u16(),
            code: 0,
            title: status.canonical_reason().unwrap_or("error").to_string(),
            detail: text.chars().take(500).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_apps_start_stop_and_restart_are_sent_twice_among_posts() {
        let post = Method::POST;
        assert!(idempotent(
            &post,
            "https://api.example.org/v3/apps/g/actions/restart"
        ));
        assert!(idempotent(&post, "/v3/apps/g/actions/stop?x=1"));
        assert!(!idempotent(&post, "/v3/apps/g/tasks"));
        assert!(!idempotent(&post, "/v3/apps"));
        assert!(!idempotent(&post, "/v3/apps/g/actions/restart/x"));
        assert!(!idempotent(&post, "/v3/deployments/g/actions/cancel"));
        assert!(idempotent(&Method::PATCH, "/v3/apps/g"));
    }
}
