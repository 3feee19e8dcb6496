//! `slo-check`: a sensible default judgement for the `analyze` hook. It
//! compares the candidate color (the new release, just mapped) with the
//! baseline (the other color) over the window of live traffic the host
//! watched, and blocks a release that answers worse than the one it
//! replaces.
//!
//! Settings (all optional; `max-error-rate` with dashes works too):
//! - `max_error_rate` (default `0.01`, or `1%`): how far the candidate's 5xx
//!   share may exceed the baseline's. Compared with the baseline, not with
//!   zero, so a failure both colors share (a dependency down) does not block
//!   the release; it is reported as a warning instead.
//! - `max_p99_ms`: an absolute SLO on the candidate's p99 latency.
//! - `max_p99_ratio` (default `2.0`): how many times the baseline's p99 the
//!   candidate's may be; not checked while the candidate's p99 is under
//!   `p99_floor_ms` (default `20`), where ratios are noise.
//! - `min_requests` (default `50`): fewer candidate requests is too thin a
//!   window: `retry-after-ms` 1000 (the host watches longer) up to attempt
//!   10, then proceed with a `thin-window` warning, still blocking on the
//!   errors it did see. No requests at all never reads as "0% errors".
//!
//! Findings: on `block`, one `error` finding per limit broken (rules
//! `error-rate`, `p99-slo`, `p99-ratio`, so `deploy --allow error-rate` can
//! override one deliberately); on `proceed`, `info` findings with the
//! numbers. A bad setting is a plugin error, not a silent default.

mod judge;
mod settings;

use bluegreen_plugin::analyze::{Deploy, Guest, Outcome, Target, Window};

struct SloCheck;

impl Guest for SloCheck {
    fn handle(d: Deploy, _t: Target, w: Window, attempt: u32) -> Result<Outcome, String> {
        let limits = settings::Limits::from(&d.settings)?;
        judge::judge(&limits, &w, attempt)
    }
}

bluegreen_plugin::analyze::export!(SloCheck);
