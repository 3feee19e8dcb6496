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
    let url = format!(
        "{}/oauth/token",
        config.authorization_endpoint.trim_end_matches('/')
    );
    let client = if config.uaa_client.is_empty() {
        "cf"
    } else {
        &config.uaa_client
    };
    let fail = |message: String| PlatformError::Http {
        method: "POST".into(),
        url: url.clone(),
        message,
    };
    let resp = http
        .post(&url)
        .basic_auth(client, Some(&config.uaa_client_secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", config.refresh_token.as_str()),
        ])
        .send()
        .await
        .map_err(|e| fail(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!(
            "token refresh refused with HTTP {} (run `cf login` again)",
            resp.status()
        )));
    }
    resp.json()
        .await
        .map_err(|e| fail(format!("token response: {}", e.without_url())))
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
    fn tokens_are_refreshed_a_minute_before_expiry_or_when_unreadable() {
        assert_eq!(jwt_expiry(&jwt(2000)), Some(2000));
        assert!(!needs_refresh(&jwt(2000), 1000));
        assert!(needs_refresh(&jwt(2000), 1950));
        assert!(needs_refresh("bearer not-a-jwt", 0));
        assert_eq!(strip_bearer("bearer abc"), "abc");
        assert_eq!(strip_bearer("abc"), "abc");
    }
}
