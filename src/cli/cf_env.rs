//! `bluegreen platform cf-env`: the variables that point a Cloud Foundry
//! client (bluegreen with `platform: cf`, or a team's own scripts) at the
//! local platform serving as CF, for a shell's `eval`. The password is not
//! printed: the line that sets it reads the token file when evaluated, so
//! it stays out of terminals, logs and CI output.

use crate::platform::local::{self, Endpoint};
use std::path::Path;

/// `(name, shell word)` pairs, or `None` for a daemon from before TLS.
pub fn exports(e: &Endpoint, dir: &Path) -> Option<Vec<(&'static str, String)>> {
    let (api, tls_port, ca) = (
        e.cf_api_url.as_ref()?,
        e.router_tls_port?,
        e.ca_file.as_ref()?,
    );
    let token = dir.join("token");
    Some(vec![
        ("CF_API", quote(api)),
        ("CF_USERNAME", "admin".into()),
        (
            "CF_PASSWORD",
            format!("\"$(cat {})\"", quote(&token.display().to_string())),
        ),
        ("CF_ORG", local::ORG_NAME.into()),
        ("CF_SPACE", local::ORG_NAME.into()),
        ("BLUEGREEN_CA_FILE", quote(&ca.display().to_string())),
        (
            "BLUEGREEN_CONNECT_TO",
            quote(&format!("*.{}=127.0.0.1:{tls_port}", local::DOMAIN)),
        ),
    ])
}

/// `s` as one POSIX shell word.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_one_shell_word_and_the_password_is_read_not_printed() {
        let e = Endpoint {
            pid: 1,
            started: None,
            api_url: "http://127.0.0.1:1".into(),
            router_port: 2,
            cf_api_url: Some("https://localhost:3".into()),
            router_tls_port: Some(4),
            ca_file: Some("/home/o'brien/my platform/ca.pem".into()),
        };
        let vars = exports(&e, Path::new("/home/o'brien/my platform")).unwrap();
        let get = |k| vars.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("CF_API"), "https://localhost:3");
        assert_eq!(
            get("BLUEGREEN_CA_FILE"),
            r"'/home/o'\''brien/my platform/ca.pem'"
        );
        assert_eq!(
            get("BLUEGREEN_CONNECT_TO"),
            "'*.apps.localhost=127.0.0.1:4'"
        );
        assert_eq!(
            get("CF_PASSWORD"),
            r#""$(cat '/home/o'\''brien/my platform/token')""#
        );
        let old = Endpoint {
            cf_api_url: None,
            ..e
        };
        assert!(exports(&old, Path::new("/x")).is_none());
    }
}
