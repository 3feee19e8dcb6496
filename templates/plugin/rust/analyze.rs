//! {{name}}: a bluegreen analyze plugin. After a color is mapped, the host
//! watches live traffic for a window and calls this with what the candidate
//! (the new release) and the baseline (the other color) served. It blocks
//! when the candidate's 5xx share is more than `max-error-rate` (default
//! 0.01) above the baseline's, and asks to watch longer while no traffic
//! reached the candidate. See bluegreen's book, docs/src/plugins/index.md.

use bluegreen_plugin::analyze::{Deploy, Finding, Guest, Outcome, Target, Window};

struct Plugin;

impl Guest for Plugin {
    fn handle(d: Deploy, _t: Target, w: Window, attempt: u32) -> Result<Outcome, String> {
        let limit: f64 = match d.setting("max-error-rate") {
            Some(v) => v
                .parse()
                .map_err(|_| format!("setting `max-error-rate`: `{v}` is not a number"))?,
            None => 0.01,
        };
        // No requests is not "no errors": watch longer (the host calls again
        // with attempt + 1), and after a while go on, saying so.
        let Some(candidate) = w.candidate.error_rate() else {
            return Ok(if attempt < 10 {
                Outcome::retry_after_ms(1000)
            } else {
                Outcome::proceed()
                    .with(Finding::warning("no-traffic", "no requests reached the candidate"))
            });
        };
        // Against the baseline, so a failure both colors share does not block.
        let baseline = w.baseline.as_ref().and_then(|b| b.error_rate()).unwrap_or(0.0);
        let numbers = format!(
            "candidate 5xx {:.1}% ({}/{}) vs baseline {:.1}%; limit +{:.1}%",
            candidate * 100.0,
            w.candidate.status_5xx,
            w.candidate.requests,
            baseline * 100.0,
            limit * 100.0
        );
        Ok(if candidate - baseline > limit {
            Outcome::block(numbers)
        } else {
            Outcome::proceed().with(Finding::info("error-rate", numbers))
        })
    }
}

bluegreen_plugin::analyze::export!(Plugin);
