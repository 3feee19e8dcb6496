//! The local platform as the UAA of a Cloud Foundry a CF client logs in to
//! («14», issue 23): the root document's links, `POST /oauth/token` with
//! each grant, wrong credentials, refresh, forged and expired tokens. The
//! tokens' lifetime is in `token_ttl.rs`; log-cache's read and the routes a
//! client creates in `log_cache_read.rs`; the helpers here serve all three.
//!
//! Every check is given the input that would fool it: a token of the right
//! shape signed with another key, an `exp` edited after signing, `alg:
//! none`, a correctly signed token past its `exp` (the test derives the
//! signing key from the API token as documented, with its own HMAC), a
//! refresh token offered as a bearer token and the reverse.

use crate::platform::start;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

/// HMAC-SHA256 from RFC 2104, written here apart from the daemon's.
fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    if k.len() > 64 {
        k = Sha256::digest(&k).to_vec();
    }
    k.resize(64, 0);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// The daemon's signing key, as `src/platform/local/jwt.rs` documents it.
fn signing_key(api_token: &str) -> Vec<u8> {
    hmac(
        api_token.as_bytes(),
        b"bluegreen local platform uaa signing key v1",
    )
}

fn sign(key: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = B64.encode(hmac(key, input.as_bytes()));
    format!("{input}.{sig}")
}

pub(crate) fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn form(pairs: &[(&str, &str)]) -> String {
    let escape = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let pairs: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect();
    pairs.join("&")
}

/// `POST /oauth/token` with client `basic` (id, secret) in Basic auth.
pub(crate) async fn token(
    api: &str,
    basic: Option<(&str, &str)>,
    pairs: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{api}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(form(pairs));
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `GET api + path` with `bearer` (none: no Authorization header).
pub(crate) async fn get(api: &str, bearer: Option<&str>, path: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(format!("{api}{path}"));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(crate) fn assert_invalid_token(answer: &(u16, Value), what: &str) {
    let e = &answer.1["errors"][0];
    assert_eq!(
        (answer.0, e["code"].as_u64(), e["title"].as_str()),
        (401, Some(1000), Some("CF-InvalidAuthToken")),
        "{what}: {}",
        answer.1
    );
    assert_eq!(e["detail"], "Invalid Auth Token", "{what}");
}

fn assert_uaa_error(answer: &(u16, Value), status: u16, error: &str, what: &str) {
    assert_eq!(
        (answer.0, answer.1["error"].as_str()),
        (status, Some(error)),
        "{what}: {}",
        answer.1
    );
    assert!(answer.1["error_description"].is_string(), "{what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cf_client_logs_in_through_each_grant_and_forged_tokens_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, _client) = start(tmp.path()).await;
    let api = running.endpoint.api_url.clone();
    let secret = running.token.clone();
    let key = signing_key(&secret);

    // The root document: CF's links, this origin serving UAA and log-cache.
    let (status, root) = get(&api, None, "/").await;
    assert_eq!(status, 200, "{root}");
    let links = &root["links"];
    assert_eq!(links["self"]["href"], api.as_str(), "{root}");
    assert_eq!(links["cloud_controller_v3"]["href"], format!("{api}/v3"));
    assert!(links["cloud_controller_v3"]["meta"]["version"].is_string());
    assert!(links["cloud_controller_v2"].is_null(), "{root}");
    for name in ["login", "uaa", "log_cache"] {
        assert_eq!(links[name]["href"], api.as_str(), "{name}: {root}");
    }
    assert!(links["bluegreen_router"]["href"].is_string(), "{root}");
    let (status, v3) = get(&api, None, "/v3").await;
    assert_eq!(status, 200, "{v3}");
    assert_eq!(
        v3["links"]["apps"]["href"],
        format!("{api}/v3/apps"),
        "{v3}"
    );
    let (status, info) = get(&api, None, "/login").await;
    assert_eq!(status, 200);
    assert_eq!(info["prompts"]["password"][0], "password", "{info}");

    // Password grant, as `cf login` sends it.
    let cf = Some(("cf", ""));
    let admin = [
        ("grant_type", "password"),
        ("username", "admin"),
        ("password", secret.as_str()),
    ];
    let (status, login) = token(&api, cf, &admin).await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["token_type"], "bearer");
    let expires_in = login["expires_in"].as_u64().unwrap();
    assert!((1199..=1200).contains(&expires_in), "20 minutes: {login}");
    assert!(
        login["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "cloud_controller.admin")
    );
    let access = login["access_token"].as_str().unwrap().to_string();
    let refresh = login["refresh_token"].as_str().unwrap().to_string();
    let claims = claims_of(&access);
    assert_eq!(claims["user_name"], "admin", "{claims}");
    assert_eq!(claims["client_id"], "cf");
    assert_eq!(claims["jti"], login["jti"]);
    assert!(claims["scope"].as_array().unwrap().len() > 1, "{claims}");
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert!((1200..=1201).contains(&lifetime), "{claims}");
    // Signed as documented: the test's own HMAC under the derived key.
    let (signed, sig) = access.rsplit_once('.').unwrap();
    assert_eq!(B64.encode(hmac(&key, signed.as_bytes())), sig);
    assert_eq!(get(&api, Some(&access), "/v3/apps").await.0, 200);
    assert_eq!(
        get(&api, Some(&secret), "/v3/apps").await.0,
        200,
        "raw token"
    );

    // Wrong credentials: UAA's 401, whatever is wrong.
    let wrong_password = [
        ("grant_type", "password"),
        ("username", "admin"),
        ("password", "guess"),
    ];
    let other_user = [
        ("grant_type", "password"),
        ("username", "root"),
        ("password", secret.as_str()),
    ];
    let bad = token(&api, cf, &wrong_password).await;
    assert_eq!(
        bad.1,
        json!({"error": "unauthorized", "error_description": "Bad credentials"})
    );
    assert_eq!(bad.0, 401);
    assert_uaa_error(
        &token(&api, cf, &other_user).await,
        401,
        "unauthorized",
        "user",
    );
    let cf_with_secret = Some(("cf", "x"));
    let stranger = Some(("someone", ""));
    for (client, what) in [
        (cf_with_secret, "cf with a secret"),
        (stranger, "no such client"),
    ] {
        assert_uaa_error(
            &token(&api, client, &admin).await,
            401,
            "unauthorized",
            what,
        );
    }
    assert_uaa_error(
        &token(&api, None, &admin).await,
        401,
        "unauthorized",
        "no client",
    );
    assert!(!bad.1.to_string().contains(&secret), "never echoed");

    // Client credentials: client `bluegreen`, the API token as its secret.
    let cc = [("grant_type", "client_credentials")];
    let (status, pipeline) = token(&api, Some(("bluegreen", &secret)), &cc).await;
    assert_eq!(status, 200, "{pipeline}");
    assert!(pipeline.get("refresh_token").is_none(), "{pipeline}");
    let machine = pipeline["access_token"].as_str().unwrap();
    let c = claims_of(machine);
    assert_eq!(
        (c["client_id"].as_str(), c.get("user_name")),
        (Some("bluegreen"), None)
    );
    assert_eq!(get(&api, Some(machine), "/v3/apps").await.0, 200);
    let in_form = [
        ("grant_type", "client_credentials"),
        ("client_id", "bluegreen"),
        ("client_secret", secret.as_str()),
    ];
    assert_eq!(
        token(&api, None, &in_form).await.0,
        200,
        "client in the form"
    );
    let guessed = token(&api, Some(("bluegreen", "guess")), &cc).await;
    assert_uaa_error(&guessed, 401, "unauthorized", "wrong client secret");
    assert_uaa_error(
        &token(&api, cf, &cc).await,
        401,
        "invalid_client",
        "cf's grants",
    );
    let implicit = token(&api, cf, &[("grant_type", "implicit")]).await;
    assert_uaa_error(&implicit, 400, "unsupported_grant_type", "implicit");
    assert_uaa_error(
        &token(&api, cf, &[]).await,
        400,
        "invalid_request",
        "no grant",
    );
    let mut wider = admin.to_vec();
    wider.push(("scope", "uaa.admin"));
    assert_uaa_error(
        &token(&api, cf, &wider).await,
        400,
        "invalid_scope",
        "scope",
    );

    // Refresh: a new access token; the refresh token is kept, as UAA does.
    let again = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let (status, refreshed) = token(&api, cf, &again).await;
    assert_eq!(status, 200, "{refreshed}");
    let renewed = refreshed["access_token"].as_str().unwrap();
    assert_ne!(renewed, access);
    assert_eq!(refreshed["refresh_token"], refresh.as_str());
    assert_eq!(claims_of(renewed)["user_name"], "admin");
    assert_eq!(get(&api, Some(renewed), "/v3/apps").await.0, 200);

    // Forgeries, each with a control that differs in the one thing checked.
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let good = json!({
        "jti": "forged", "exp": now_secs() + 600, "iat": now_secs(),
        "user_name": "admin", "client_id": "cf", "scope": ["cloud_controller.admin"],
    });
    let control = sign(&key, &header, &good);
    assert_eq!(
        get(&api, Some(&control), "/v3/apps").await.0,
        200,
        "control"
    );
    let other_key = sign(&signing_key("another daemon"), &header, &good);
    assert_invalid_token(&get(&api, Some(&other_key), "/v3/apps").await, "other key");
    let mut later = claims_of(&access);
    later["exp"] = json!(later["exp"].as_u64().unwrap() + 3600);
    let parts: Vec<&str> = access.split('.').collect();
    let edited = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(later.to_string()),
        parts[2]
    );
    assert_invalid_token(&get(&api, Some(&edited), "/v3/apps").await, "exp edited");
    let none = format!(
        "{}.{}.",
        B64.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        B64.encode(good.to_string())
    );
    assert_invalid_token(&get(&api, Some(&none), "/v3/apps").await, "alg none");
    let mut past = good.clone();
    past["exp"] = json!(now_secs() - 10);
    let expired = sign(&key, &header, &past);
    assert_invalid_token(&get(&api, Some(&expired), "/v3/apps").await, "expired");
    assert_invalid_token(
        &get(&api, Some(&refresh), "/v3/apps").await,
        "refresh as bearer",
    );
    let missing = get(&api, None, "/v3/apps").await;
    assert_eq!(
        (missing.0, &missing.1["errors"][0]["code"]),
        (401, &json!(10002))
    );

    let stale = sign(
        &key,
        &header,
        &json!({"jti": "old-r", "cid": "cf", "exp": now_secs() - 10, "user_name": "admin"}),
    );
    let foreign = json!({"jti": "a-r", "cid": "cf", "exp": now_secs() + 99});
    for (t, what) in [
        ("garbage".to_string(), "garbage"),
        (access.clone(), "an access token"),
        (stale, "an expired refresh token"),
        (sign(&signing_key("x"), &header, &foreign), "another key's"),
    ] {
        let pairs = [
            ("grant_type", "refresh_token"),
            ("refresh_token", t.as_str()),
        ];
        assert_uaa_error(&token(&api, cf, &pairs).await, 400, "invalid_grant", what);
    }
    let by_pipeline = token(&api, Some(("bluegreen", &secret)), &again).await;
    assert_uaa_error(&by_pipeline, 401, "invalid_client", "refresh by bluegreen");
    running.shutdown().await;
}
