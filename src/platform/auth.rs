//! Credentials for the CF API: a fixed bearer token (the local platform, or CI
//! with `CF_API` + `CF_ACCESS_TOKEN`), or the cf CLI's login state in
//! `$CF_HOME/.cf/config.json`, refreshed through UAA before it expires.
//! Tokens are never printed: `Debug` redacts them and errors do not carry them.

use crate::platform::PlatformError;
use base64::Engine as _;
use serde::Deserialize;
use std::path::Path;

/// The fields of the cf CLI's `config.json` that bluegreen reads.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CfConfig {
    pub target: String,
    #[serde(default)]
    pub authorization_endpoint: String,
    /// UAA's own URL: where tokens are asked for when the login names no
    /// authorization endpoint (the cf CLI asks the authorization endpoint,
    /// which on a foundation is UAA's login server).
    #[serde(default)]
    pub uaa_endpoint: String,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: String,
    #[serde(rename = "UAAOAuthClient", default)]
    pub uaa_client: String,
    #[serde(rename = "UAAOAuthClientSecret", default)]
    pub uaa_client_secret: String,
    #[serde(rename = "SSLDisabled", default)]
    pub ssl_disabled: bool,
    #[serde(default)]
    pub organization_fields: Named,
    #[serde(default)]
    pub space_fields: Named,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Named {
    #[serde(rename = "GUID", default)]
    pub guid: String,
    #[serde(default)]
    pub name: String,
}

impl std::fmt::Debug for CfConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CfConfig")
            .field("target", &self.target)
            .field("authorization_endpoint", &self.authorization_endpoint)
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("org", &self.organization_fields.name)
            .field("space", &self.space_fields.name)
            .finish()
    }
}

impl CfConfig {
    pub fn load(path: &Path) -> Result<CfConfig, PlatformError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            PlatformError::Auth(format!("{}: {e} (run `cf login` first)", path.display()))
        })?;
        let config: CfConfig = serde_json::from_str(&text)
            .map_err(|e| PlatformError::Auth(format!("{}: {e}", path.display())))?;
        if config.target.is_empty() || config.access_token.is_empty() {
            return Err(PlatformError::Auth(format!(
                "{}: not logged in (run `cf login`)",
                path.display()
            )));
        }
        Ok(config)
    }

    /// The access token without its `bearer ` prefix.
    pub fn bearer(&self) -> &str {
        strip_bearer(&self.access_token)
    }
}

/// A config made from `CF_API` alone: the token endpoint is found from the
/// API's root document and the first token comes from a [`Grant`].
impl CfConfig {
    pub fn for_api(api: &str) -> CfConfig {
        CfConfig {
            target: api.to_string(),
            authorization_endpoint: String::new(),
            uaa_endpoint: String::new(),
            access_token: String::new(),
            refresh_token: String::new(),
            uaa_client: String::new(),
            uaa_client_secret: String::new(),
            ssl_disabled: false,
            organization_fields: Named::default(),
            space_fields: Named::default(),
        }
    }

    /// Where `POST /oauth/token` goes: the authorization endpoint, as the
    /// cf CLI does, else UAA's.
    pub fn token_endpoint(&self) -> &str {
        let login = self.authorization_endpoint.trim_end_matches('/');
        if login.is_empty() {
            self.uaa_endpoint.trim_end_matches('/')
        } else {
            login
        }
    }
}

/// How a CI job without a cf login gets its tokens, as `cf auth` does.
#[derive(Clone)]
pub enum Grant {
    /// `CF_USERNAME` and `CF_PASSWORD`: UAA's password grant for client `cf`.
    Password { username: String, password: String },
    /// `CF_CLIENT_ID` and `CF_CLIENT_SECRET`: the client_credentials grant
    /// (`cf auth --client-credentials`); it has no refresh token, so a token
    /// about to expire is replaced by a new grant.
    Client { id: String, secret: String },
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grant::Password { username, .. } => write!(f, "Password({username}, <redacted>)"),
            Grant::Client { id, .. } => write!(f, "Client({id}, <redacted>)"),
        }
    }
}

pub fn strip_bearer(token: &str) -> &str {
    let t = token.trim();
    match t.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => t,
    }
}

/// Seconds since the epoch at which a JWT expires, if it says.
pub fn jwt_expiry(token: &str) -> Option<u64> {
    let payload = strip_bearer(token).split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_u64()
}

/// True when the token expires within a minute, or its expiry is unreadable.
pub fn needs_refresh(token: &str, now_secs: u64) -> bool {
    jwt_expiry(token).is_none_or(|exp| exp <= now_secs + 60)
}

#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// `POST {uaa}/oauth/token` with the refresh-token grant.
pub async fn refresh(
    http: &reqwest::Client,
    config: &CfConfig,
) -> Result<TokenResponse, PlatformError> {
    let client = if config.uaa_client.is_empty() {
        "cf"
    } else {
        &config.uaa_client
    };
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", config.refresh_token.as_str()),
    ];
    token(http, config, (client, &config.uaa_client_secret), &form)
        .await
        .map_err(|e| e.with_fix("run `cf login` again"))
}

/// `POST {uaa}/oauth/token` with `grant`.
pub async fn grant(
    http: &reqwest::Client,
    config: &CfConfig,
    grant: &Grant,
) -> Result<TokenResponse, PlatformError> {
    match grant {
        Grant::Password { username, password } => {
            let form = [
                ("grant_type", "password"),
                ("username", username.as_str()),
                ("password", password.as_str()),
            ];
            token(http, config, ("cf", ""), &form)
                .await
                .map_err(|e| e.with_fix("check CF_USERNAME and CF_PASSWORD"))
        }
        Grant::Client { id, secret } => {
            let form = [("grant_type", "client_credentials")];
            token(http, config, (id, secret), &form)
                .await
                .map_err(|e| e.with_fix("check CF_CLIENT_ID and CF_CLIENT_SECRET"))
        }
    }
}

/// A refused token request, before the fix is known.
pub struct Refused(PlatformError);

impl Refused {
    fn with_fix(self, fix: &str) -> PlatformError {
        match self.0 {
            PlatformError::Http {
                method,
                url,
                message,
            } => PlatformError::Http {
                method,
                url,
                message: format!("{message} ({fix})"),
            },
            other => other,
        }
    }
}

/// One token request; UAA's own error text is kept (never the form).
async fn token(
    http: &reqwest::Client,
    config: &CfConfig,
    (client, secret): (&str, &str),
    form: &[(&str, &str)],
) -> Result<TokenResponse, Refused> {
    let url = format!("{}/oauth/token", config.token_endpoint());
    let fail = |message: String| {
        Refused(PlatformError::Http {
            method: "POST".into(),
            url: url.clone(),
            message,
        })
    };
    let resp = http
        .post(&url)
        .basic_auth(client, Some(secret))
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| fail(super::trust::describe(e)))?;
    let status = resp.status();
    if !status.is_success() {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let said = ["error", "error_description"]
            .iter()
            .filter_map(|k| body.get(k).and_then(|v| v.as_str()))
            .map(crate::output::printable)
            .collect::<Vec<_>>()
            .join(": ");
        return Err(fail(format!(
            "the token request was refused with HTTP {status}{}",
            if said.is_empty() {
                String::new()
            } else {
                format!(" ({said})")
            }
        )));
    }
    resp.json()
        .await
        .map_err(|e| fail(format!("token response: {}", super::trust::describe(e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: u64) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "bearer {}.{}.sig",
            b64(r#"{"alg":"none"}"#),
            b64(&format!(r#"{{"exp":{exp}}}"#))
        )
    }

    #[test]
    fn tokens_are_asked_of_the_authorization_endpoint_else_uaa() {
        let mut c = CfConfig::for_api("https://api.example.org");
        c.uaa_endpoint = "https://uaa.example.org/".into();
        assert_eq!(c.token_endpoint(), "https://uaa.example.org");
        c.authorization_endpoint = "https://login.example.org".into();
        assert_eq!(c.token_endpoint(), "https://login.example.org");
        let g = format!(
            "{:?}",
            Grant::Password {
                username: "u".into(),
                password: "hunter2".into()
            }
        );
        assert!(!g.contains("hunter2"), "{g}");
    }

    #[test]
    fn tokens_are_refreshed_a_minute_before_expiry_or_when_unreadable() {
        assert_eq!(jwt_expiry(&jwt(2000)), Some(2000));
        assert!(!needs_refresh(&jwt(2000), 1000));
        assert!(needs_refresh(&jwt(2000), 1950));
        assert!(needs_refresh("bearer not-a-jwt", 0));
        assert_eq!(strip_bearer("bearer abc"), "abc");
        assert_eq!(strip_bearer("abc"), "abc");
    }
}
