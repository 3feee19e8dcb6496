//! The router's time and connection limits. Without them one slow client
//! or one silent app holds a connection forever, and a few thousand of
//! them hold every connection (slowloris). Defaults follow nginx where it
//! has an equivalent (`client_header_timeout`, `client_body_timeout`,
//! `proxy_connect_timeout`, `proxy_read_timeout`, `keepalive_timeout`);
//! each can be set with a `BLUEGREEN_ROUTER_*` variable when the platform
//! starts.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Connections served at once. At the cap, the connections waiting
    /// longest on their client (an idle keep-alive, a head or a body not
    /// arriving) are closed to make room for new ones.
    pub max_connections: usize,
    /// A request head must arrive whole within this.
    pub header_timeout: Duration,
    /// A request body must make progress within this (between two reads).
    pub body_timeout: Duration,
    /// A kept-alive connection may sit idle this long between requests.
    pub keep_alive: Duration,
    /// An app must accept the connection within this.
    pub connect_timeout: Duration,
    /// An app must start its answer within this, once the request is sent:
    /// else the client gets 504 and the app's counters a 504.
    pub first_byte_timeout: Duration,
    /// Between two reads of an answer's body from the app, and two writes
    /// of it to the client.
    pub read_timeout: Duration,
    /// One request and its answer, whole.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(15),
            keep_alive: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(600),
        }
    }
}

/// A `BLUEGREEN_ROUTER_*` variable that is set but not a valid value.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value}: {why} (e.g. {var}={example})")]
pub struct BadLimit {
    pub var: &'static str,
    pub value: String,
    why: &'static str,
    example: &'static str,
}

impl Limits {
    /// The defaults with every `BLUEGREEN_ROUTER_*` variable that is set
    /// applied; a bad value is an error naming the variable, not ignored.
    pub fn from_env() -> Result<Limits, BadLimit> {
        Limits::from_vars(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Limits, BadLimit> {
        let mut l = Limits::default();
        if let Some(v) = var("BLUEGREEN_ROUTER_MAX_CONNECTIONS") {
            l.max_connections = v.parse().ok().filter(|&n| n > 0).ok_or(BadLimit {
                var: "BLUEGREEN_ROUTER_MAX_CONNECTIONS",
                value: v,
                why: "not a positive whole number",
                example: "4096",
            })?;
        }
        for (name, field) in [
            ("BLUEGREEN_ROUTER_HEADER_TIMEOUT", &mut l.header_timeout),
            ("BLUEGREEN_ROUTER_BODY_TIMEOUT", &mut l.body_timeout),
            ("BLUEGREEN_ROUTER_KEEP_ALIVE", &mut l.keep_alive),
            ("BLUEGREEN_ROUTER_CONNECT_TIMEOUT", &mut l.connect_timeout),
            (
                "BLUEGREEN_ROUTER_FIRST_BYTE_TIMEOUT",
                &mut l.first_byte_timeout,
            ),
            ("BLUEGREEN_ROUTER_READ_TIMEOUT", &mut l.read_timeout),
            ("BLUEGREEN_ROUTER_REQUEST_TIMEOUT", &mut l.request_timeout),
        ] {
            if let Some(v) = var(name) {
                *field = humantime::parse_duration(&v)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or(BadLimit {
                        var: name,
                        value: v,
                        why: "not a duration above zero",
                        example: "30s",
                    })?;
            }
        }
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults `docs/src/security.md` states ("Every wait is bounded");
    /// the integration tests wait out only the short ones.
    #[test]
    fn the_defaults_are_the_documented_ones() {
        let s = Duration::from_secs;
        assert_eq!(
            Limits::default(),
            Limits {
                max_connections: 4096,
                header_timeout: s(5),
                body_timeout: s(15),
                keep_alive: s(60),
                connect_timeout: s(5),
                first_byte_timeout: s(60),
                read_timeout: s(60),
                request_timeout: s(10 * 60),
            }
        );
    }

    #[test]
    fn variables_set_limits_and_bad_values_are_refused_by_name() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let l = Limits::from_vars(vars(&[
            ("BLUEGREEN_ROUTER_FIRST_BYTE_TIMEOUT", "2s"),
            ("BLUEGREEN_ROUTER_MAX_CONNECTIONS", "64"),
        ]))
        .unwrap();
        assert_eq!(l.first_byte_timeout, Duration::from_secs(2));
        assert_eq!(l.max_connections, 64);
        assert_eq!(l.body_timeout, Limits::default().body_timeout);
        let e = Limits::from_vars(vars(&[("BLUEGREEN_ROUTER_BODY_TIMEOUT", "0s")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "BLUEGREEN_ROUTER_BODY_TIMEOUT=0s: not a duration above zero \
             (e.g. BLUEGREEN_ROUTER_BODY_TIMEOUT=30s)"
        );
        assert!(Limits::from_vars(vars(&[("BLUEGREEN_ROUTER_MAX_CONNECTIONS", "-1")])).is_err());
    }
}
