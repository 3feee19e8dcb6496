//! The credentials the local platform's API accepts: the raw API token the
//! daemon writes to `<state>/token` at each start (what bluegreen itself
//! sends), or an access token its UAA endpoint issued (`uaa.rs`), as a CF
//! client sends after logging in. Access tokens live
//! `BLUEGREEN_PLATFORM_TOKEN_TTL` (default 20 minutes), refresh tokens
//! [`REFRESH_TTL`]; both are signed under a key derived from the API token,
//! so a daemon restart (a fresh API token) ends every session it issued.

use super::jwt::{Invalid, Signer, constant_eq};
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const TTL_VAR: &str = "BLUEGREEN_PLATFORM_TOKEN_TTL";
pub const DEFAULT_TTL: Duration = Duration::from_secs(20 * 60);
/// UAA's default for the cf client's refresh tokens.
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// UAA marks a refresh token's id with this suffix; an access token's has none.
const REFRESH_JTI: &str = "-r";

/// `BLUEGREEN_PLATFORM_TOKEN_TTL` set to something that is not a duration
/// above zero.
#[derive(Debug, thiserror::Error)]
#[error("{TTL_VAR}={value}: {why} (e.g. {TTL_VAR}=20m)")]
pub struct BadTtl {
    value: String,
    why: String,
}

/// The access tokens' lifetime from the environment (unset or empty: the
/// default); a bad value is an error naming the variable.
pub fn ttl_from_env() -> Result<Duration, BadTtl> {
    ttl_from(std::env::var(TTL_VAR).ok().filter(|v| !v.is_empty()))
}

fn ttl_from(value: Option<String>) -> Result<Duration, BadTtl> {
    let Some(value) = value else {
        return Ok(DEFAULT_TTL);
    };
    match crate::units::parse_duration(&value) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(BadTtl {
            value,
            why: "a token must live longer than zero".into(),
        }),
        Err(why) => Err(BadTtl { value, why }),
    }
}

/// Who a token speaks for: a user who logged in through a client, or a
/// client on its own (`client_credentials`).
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub grant_type: String,
    pub client_id: String,
    pub user_name: Option<String>,
    pub scopes: Vec<String>,
}

pub struct Tokens {
    api_token: String,
    signer: Signer,
    pub ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens {{ ttl: {:?} }}", self.ttl)
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Tokens {
    pub fn new(api_token: String, ttl: Duration) -> Tokens {
        Tokens {
            signer: Signer::derive(&api_token),
            api_token,
            ttl,
        }
    }

    /// With the lifetime from the environment. The CLI refuses a bad value
    /// before the daemon starts; a daemon started otherwise keeps the
    /// default and says so.
    pub fn from_env(api_token: String) -> Tokens {
        let ttl = ttl_from_env().unwrap_or_else(|e| {
            crate::output::write_stderr(&format!(
                "{e}; access tokens live {} instead\n",
                humantime::format_duration(DEFAULT_TTL)
            ));
            DEFAULT_TTL
        });
        Tokens::new(api_token, ttl)
    }

    /// Whether `secret` is the API token (the `admin` password, and the
    /// `bluegreen` client's secret).
    pub fn is_api_token(&self, secret: &str) -> bool {
        constant_eq(secret.as_bytes(), self.api_token.as_bytes())
    }

    /// Whether a bearer credential is good: the API token, or an access
    /// token this daemon issued that has not expired.
    pub fn check_bearer(&self, given: &str) -> Result<(), Invalid> {
        if self.is_api_token(given) {
            return Ok(());
        }
        let claims = self.signer.verify(given, now_ms())?;
        if jti(&claims).ends_with(REFRESH_JTI) {
            // A refresh token is for the token endpoint only.
            return Err(Invalid::Malformed);
        }
        Ok(())
    }

    /// What a refresh token grants again, if this daemon issued it, it has
    /// not expired, and `client_id` is the client it was issued to.
    pub fn refresh(&self, token: &str, client_id: &str) -> Result<Grant, &'static str> {
        let claims = self.signer.verify(token, now_ms()).map_err(|e| match e {
            Invalid::Expired => "Invalid refresh token (expired)",
            _ => "Invalid refresh token",
        })?;
        if !jti(&claims).ends_with(REFRESH_JTI) {
            return Err("Invalid refresh token");
        }
        let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
        if text("cid").as_deref() != Some(client_id) {
            return Err("Wrong client for this refresh token");
        }
        Ok(Grant {
            grant_type: "refresh_token".into(),
            client_id: client_id.to_string(),
            user_name: text("user_name"),
            scopes: claims
                .get("scope")
                .and_then(Value::as_array)
                .map(|s| {
                    s.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// UAA's answer to a token request: an access token for `grant`, and a
    /// refresh token when one is due (`refresh`: a given one is kept, as
    /// UAA does; `None`: none, as for `client_credentials`).
    pub fn issue(&self, grant: &Grant, issuer: &str, refresh: Refresh) -> Value {
        let now = now_ms();
        let iat = now / 1000;
        // Rounded up: a token lives at least the whole TTL.
        let exp = (now + self.ttl.as_millis() as u64).div_ceil(1000);
        let jti = uuid::Uuid::new_v4().simple().to_string();
        let access = self.signer.sign(&claims(grant, issuer, &jti, iat, exp));
        let scope = grant.scopes.join(" ");
        let mut answer = json!({
            "access_token": access,
            "token_type": "bearer",
            "expires_in": (exp * 1000 - now) / 1000,
            "scope": scope,
            "jti": jti,
        });
        let refresh_token = match refresh {
            Refresh::None => None,
            Refresh::Keep(t) => Some(t.to_string()),
            Refresh::New => {
                let exp = iat + REFRESH_TTL.as_secs();
                let jti = format!("{jti}{REFRESH_JTI}");
                Some(self.signer.sign(&claims(grant, issuer, &jti, iat, exp)))
            }
        };
        if let Some(t) = refresh_token {
            answer["refresh_token"] = t.into();
        }
        answer
    }
}

pub enum Refresh<'a> {
    None,
    New,
    Keep(&'a str),
}

fn jti(claims: &Map<String, Value>) -> &str {
    claims
        .get("jti")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The claims UAA puts in its tokens, those a CF client reads included
/// (`exp`, `user_name`, `client_id`, `scope` as a list).
fn claims(grant: &Grant, issuer: &str, jti: &str, iat: u64, exp: u64) -> Value {
    let mut c = json!({
        "jti": jti,
        "iat": iat,
        "exp": exp,
        "iss": issuer,
        "zid": "uaa",
        "origin": "uaa",
        "grant_type": grant.grant_type,
        "client_id": grant.client_id,
        "cid": grant.client_id,
        "azp": grant.client_id,
        "scope": grant.scopes,
        "aud": audiences(&grant.scopes, &grant.client_id),
    });
    match &grant.user_name {
        Some(user) => {
            c["user_name"] = user.as_str().into();
            c["user_id"] = user.as_str().into();
            c["sub"] = user.as_str().into();
        }
        None => c["sub"] = grant.client_id.as_str().into(),
    }
    c
}

/// As UAA: the client and each scope's resource (`cloud_controller.read` ->
/// `cloud_controller`).
fn audiences(scopes: &[String], client: &str) -> Vec<String> {
    let mut aud = vec![client.to_string()];
    for s in scopes {
        let resource = s.split('.').next().unwrap_or(s).to_string();
        if !aud.contains(&resource) {
            aud.push(resource);
        }
    }
    aud
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(user: Option<&str>) -> Grant {
        Grant {
            grant_type: "password".into(),
            client_id: "cf".into(),
            user_name: user.map(String::from),
            scopes: vec!["cloud_controller.admin".into(), "openid".into()],
        }
    }

    #[test]
    fn the_ttl_comes_from_the_environment_and_a_bad_one_is_named() {
        // The book's default (docs/src/platforms/cf.md), not the constant.
        assert_eq!(ttl_from(None).unwrap(), Duration::from_secs(20 * 60));
        assert_eq!(ttl_from(Some("5s".into())).unwrap(), Duration::from_secs(5));
        let e = ttl_from(Some("0s".into())).unwrap_err().to_string();
        assert!(e.starts_with("BLUEGREEN_PLATFORM_TOKEN_TTL=0s: "), "{e}");
        let e = ttl_from(Some("soon".into())).unwrap_err().to_string();
        assert!(e.contains("`soon` is not a duration"), "{e}");
        assert!(
            e.ends_with("(e.g. BLUEGREEN_PLATFORM_TOKEN_TTL=20m)"),
            "{e}"
        );
    }

    #[test]
    fn access_and_refresh_tokens_are_each_good_for_their_own_use_only() {
        let t = Tokens::new("api-token".into(), Duration::from_secs(60));
        assert!(t.check_bearer("api-token").is_ok());
        assert!(t.check_bearer("api-token ").is_err());
        let answer = t.issue(&grant(Some("admin")), "http://x/oauth/token", Refresh::New);
        let access = answer["access_token"].as_str().unwrap();
        let refresh = answer["refresh_token"].as_str().unwrap();
        assert!(t.check_bearer(access).is_ok());
        assert!(
            t.check_bearer(refresh).is_err(),
            "a refresh token is no bearer"
        );
        assert_eq!(answer["expires_in"], 60);
        assert_eq!(answer["scope"], "cloud_controller.admin openid");
        let again = t.refresh(refresh, "cf").unwrap();
        assert_eq!(again.user_name.as_deref(), Some("admin"));
        assert_eq!(again.scopes, grant(None).scopes);
        assert_eq!(t.refresh(access, "cf"), Err("Invalid refresh token"));
        assert_eq!(
            t.refresh(refresh, "bluegreen"),
            Err("Wrong client for this refresh token")
        );
        // Another daemon's (another API token's) tokens are nothing here.
        let other = Tokens::new("other".into(), Duration::from_secs(60));
        assert!(other.check_bearer(access).is_err());
        assert!(other.refresh(refresh, "cf").is_err());
        // A refresh token signed right but past its `exp`.
        let stale = t.signer.sign(&json!({"jti": "x-r", "exp": 1, "cid": "cf"}));
        assert_eq!(
            t.refresh(&stale, "cf"),
            Err("Invalid refresh token (expired)")
        );
        // Client credentials: no refresh token.
        let client = t.issue(&grant(None), "http://x/oauth/token", Refresh::None);
        assert!(client.get("refresh_token").is_none());
    }
}
