//! Whom the HTTP clients that talk to a platform trust, and where they
//! connect: what a team with a self-signed foundation, or a foundation
//! reached through a tunnel, has to tell a CF client.
//!
//! - `BLUEGREEN_CA_FILE`, and `SSL_CERT_FILE` (the variable OpenSSL, curl
//!   and git read): PEM bundles of CA certificates trusted besides the
//!   public roots (the local platform's `ca.pem`, a foundation's own CA).
//!   The first is bluegreen's alone, so trusting a CA for it does not
//!   replace the bundle other tools in the same shell use.
//! - `BLUEGREEN_CONNECT_TO`: `NAME=ADDRESS:PORT[,...]`, where NAME is a host
//!   or `*.domain`: connect there for URLs without a port, keeping the name
//!   for the `Host` header and the certificate check, as curl's
//!   `--connect-to` does. The local platform's routes are
//!   `https://<host>.apps.localhost` on its TLS router port.
//! - Names under `localhost` otherwise resolve to 127.0.0.1 (RFC 6761), as
//!   curl and browsers do; the system resolver here may not know them.
//!
//! Loaded once per command ([`load`]), so a bad value is bad input before
//! anything is called, and every client built later ([`client_builder`])
//! agrees.

use crate::BadInput;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

#[derive(Clone, Debug, Default)]
pub struct Trust {
    roots: Vec<reqwest::Certificate>,
    connect_to: Vec<(String, SocketAddr)>,
}

static TRUST: OnceLock<Trust> = OnceLock::new();

/// Set by a cf login made with `cf api --skip-ssl-validation`: that user
/// has a foundation whose certificates nothing trusts, its apps' included,
/// and was warned (see `CfClient::from_cf_login`).
static SKIP_VERIFICATION: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn skip_verification() {
    SKIP_VERIFICATION.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Reads the variables once; later calls return what the first found.
pub fn load() -> Result<&'static Trust, BadInput> {
    if let Some(t) = TRUST.get() {
        return Ok(t);
    }
    let t = from(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?;
    Ok(TRUST.get_or_init(|| t))
}

/// A client builder that trusts and connects as the variables say.
pub fn client_builder() -> reqwest::ClientBuilder {
    let trust = TRUST.get().cloned().unwrap_or_default();
    let mut builder = reqwest::Client::builder()
        .dns_resolver(Arc::new(Resolver {
            connect_to: trust.connect_to,
        }))
        .danger_accept_invalid_certs(SKIP_VERIFICATION.load(std::sync::atomic::Ordering::SeqCst));
    for cert in trust.roots {
        builder = builder.add_root_certificate(cert);
    }
    builder
}

pub fn from(var: impl Fn(&str) -> Option<String>) -> Result<Trust, BadInput> {
    let mut trust = Trust::default();
    for name in ["BLUEGREEN_CA_FILE", "SSL_CERT_FILE"] {
        let Some(path) = var(name) else { continue };
        let pem = std::fs::read(&path).map_err(|e| {
            BadInput(format!(
                "{name}={path}: {e} (name a PEM file of CA certificates, or unset it)"
            ))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                BadInput(format!(
                    "{name}={path}: no PEM certificate in it (expected \
                     `-----BEGIN CERTIFICATE-----` blocks)"
                ))
            })?;
        trust.roots.extend(certs);
    }
    if let Some(list) = var("BLUEGREEN_CONNECT_TO") {
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            trust.connect_to.push(parse_connect_to(entry)?);
        }
    }
    Ok(trust)
}

fn parse_connect_to(entry: &str) -> Result<(String, SocketAddr), BadInput> {
    let bad = |why: &str| {
        BadInput(format!(
            "BLUEGREEN_CONNECT_TO: `{entry}` {why}; write NAME=ADDRESS:PORT, e.g. \
             `*.apps.localhost=127.0.0.1:8443`"
        ))
    };
    let (name, to) = entry.split_once('=').ok_or_else(|| bad("has no `=`"))?;
    let name = name.trim().to_ascii_lowercase();
    let bare = name.strip_prefix("*.").unwrap_or(&name);
    if bare.is_empty() || bare.contains(['*', '/', ':', ' ']) {
        return Err(bad("names no host or `*.domain`"));
    }
    let addr: SocketAddr = to
        .trim()
        .parse()
        .map_err(|_| bad("has no IP address and port after `=`"))?;
    if addr.port() == 0 {
        return Err(bad("has port 0"));
    }
    Ok((name, addr))
}

/// Where `host` connects: a `BLUEGREEN_CONNECT_TO` entry (an exact name
/// before a wildcard), else loopback for `localhost` names with the URL's
/// port (port 0), else `None` for the system resolver.
fn connect_to(rules: &[(String, SocketAddr)], host: &str) -> Option<SocketAddr> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let exact = rules.iter().find(|(n, _)| *n == host);
    let wild = || {
        rules.iter().find(|(n, _)| {
            n.strip_prefix("*.")
                .is_some_and(|d| host.len() > d.len() + 1 && host.ends_with(&format!(".{d}")))
        })
    };
    if let Some((_, addr)) = exact.or_else(wild) {
        return Some(*addr);
    }
    (host == "localhost" || host.ends_with(".localhost"))
        .then(|| SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// A client error with its causes (a refused certificate says why), never
/// the URL: a query may carry a secret, and the caller names the URL.
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let line = s.to_string();
        if !text.contains(&line) {
            text = format!("{text}: {line}");
        }
        source = s.source();
    }
    text
}

struct Resolver {
    connect_to: Vec<(String, SocketAddr)>,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let fixed = connect_to(&self.connect_to, name.as_str());
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: reqwest::dns::Addrs = match fixed {
                Some(addr) => Box::new(std::iter::once(addr)),
                None => Box::new(tokio::net::lookup_host((host, 0)).await?),
            };
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_connect_where_the_rules_say_exact_before_wildcard() {
        let rules = vec![
            parse_connect_to("*.apps.localhost=127.0.0.1:8443").unwrap(),
            parse_connect_to("special.apps.localhost=127.0.0.2:9000").unwrap(),
        ];
        let at = |h| connect_to(&rules, h);
        assert_eq!(
            at("shop.apps.localhost"),
            Some("127.0.0.1:8443".parse().unwrap())
        );
        assert_eq!(
            at("SHOP.Apps.Localhost."),
            Some("127.0.0.1:8443".parse().unwrap())
        );
        assert_eq!(
            at("special.apps.localhost"),
            Some("127.0.0.2:9000".parse().unwrap())
        );
        // The wildcard is for names under the domain, not the domain, and
        // not a name that merely ends the same way.
        assert_eq!(at("apps.localhost"), Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(
            at("evilapps.localhost"),
            Some("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(at("shop.apps.localhost.example.com"), None);
        assert_eq!(at("example.com"), None);
        assert_eq!(at("localhost"), Some("127.0.0.1:0".parse().unwrap()));
    }

    #[test]
    fn bad_values_name_the_variable_and_the_fix() {
        for bad in [
            "nohost",
            "=127.0.0.1:1",
            "*.=127.0.0.1:1",
            "a=localhost:1",
            "a=127.0.0.1",
            "a=127.0.0.1:0",
            "a*b=127.0.0.1:1",
        ] {
            let e = parse_connect_to(bad).unwrap_err().0;
            assert!(
                e.starts_with("BLUEGREEN_CONNECT_TO:") && e.contains("NAME=ADDRESS:PORT"),
                "{e}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let e = from(|k| (k == "SSL_CERT_FILE").then(|| empty.display().to_string()))
            .unwrap_err()
            .0;
        assert!(
            e.contains("SSL_CERT_FILE=") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = from(|k| (k == "SSL_CERT_FILE").then(|| "/nonexistent/ca.pem".to_string()))
            .unwrap_err()
            .0;
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
