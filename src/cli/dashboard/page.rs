//! The page itself: one HTML document, its script and its style, compiled
//! into the binary (`include_str!`), so the dashboard works with no network
//! beyond the platform and loads nothing from elsewhere. The charts are
//! inline SVG drawn by the script; there is no framework.
//!
//! The HTML carries this process's token (see `actions`) and is never
//! cached. The content security policy lets the page run only its own
//! script and talk only to its own server, and no other site may frame it
//! (its buttons are worth a click-jacking).

use super::Shared;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

const HTML: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");
/// Where the HTML takes the token.
const TOKEN_SLOT: &str = "{{token}}";

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(page))
        .route(
            "/page.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route("/page.css", get(|| asset("text/css; charset=utf-8", STYLE)))
}

async fn page(State(shared): State<Arc<Shared>>) -> Response {
    let html = HTML.replace(TOKEN_SLOT, &shared.token);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        html,
    )
        .into_response()
}

async fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_takes_the_token_once_and_loads_nothing_from_elsewhere() {
        assert_eq!(HTML.matches(TOKEN_SLOT).count(), 1);
        for text in [HTML, SCRIPT, STYLE] {
            // SVG's namespace is a name, not a place the page loads from.
            let text = text.replace("\"http://www.w3.org/2000/svg\"", "");
            assert!(!text.contains("http://") && !text.contains("https://"));
            assert!(!text.contains("//cdn"));
        }
        // The script names the header the server checks.
        assert!(SCRIPT.contains(super::super::actions::TOKEN_HEADER));
    }

    /// Every element the script looks up by id is in the HTML: a renamed
    /// one would leave a part of the page silently blank.
    #[test]
    fn every_id_the_script_uses_is_in_the_page() {
        let used: Vec<&str> = SCRIPT
            .split("$(\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert!(used.len() > 15, "{used:?}");
        for id in used {
            assert!(
                HTML.contains(&format!("id=\"{id}\"")),
                "#{id} is not in page.html"
            );
        }
        for verb in ["promote", "resume", "abort"] {
            assert!(HTML.contains(&format!("data-verb=\"{verb}\"")), "{verb}");
        }
    }
}
