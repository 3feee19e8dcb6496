//! `guard.md`: "an outcome over 16 MiB of text is a `bad-result`" (and
//! `security.md`: "outcomes over 16 MiB refused"), through deploys with the
//! test plugin `hostile`, whose `huge-findings` returns findings of 1 MiB
//! of the digits of their index each (2 MiB from the 11th on).

use crate::deploy::{Fixture, events, text};
use crate::util::{exits, succeeded};
use serde_json::Value;

/// `mb` findings, in MiB of text: the index's digits, 1 MiB of them each.
fn mib_of(findings: u32) -> usize {
    (0..findings).map(|i| i.to_string().len()).sum()
}

fn huge(f: &Fixture, findings: u32, on_error: &str) {
    f.write_file(&format!(
        "plugins: {{ dir: plugins, config: {{ hostile: {{ on_error: {on_error}, \
         settings: {{ attack: huge-findings, mb: \"{findings}\" }} }} }} }}\n"
    ));
}

/// The `pre-deploy` hook event of `hostile`.
fn hook(out: &std::process::Output) -> Value {
    events(out)
        .into_iter()
        .find(|e| e["event"] == "hook" && e["plugin"] == "hostile")
        .unwrap_or_else(|| panic!("no hook event: {}", text(out)))
}

/// 13 findings carry 16 MiB and 52 bytes (their rules): refused, the
/// deploy stops at `pre-deploy`, or with `on_error: warn` goes on with a
/// `plugin-bad-result` warning. 12 (14 MiB and 48 bytes) are taken whole.
#[test]
fn an_outcome_over_16_mib_of_text_is_a_bad_result() {
    assert_eq!((mib_of(12), mib_of(13)), (14, 16));
    let f = Fixture::new("");
    f.plugins(&["hostile"]);

    huge(&f, 13, "block");
    let out = exits(f.run(&["deploy", "--release", "v1", "--json"]), 1);
    let failed = events(&out)
        .into_iter()
        .find(|e| e["event"] == "step" && e["step"] == "pre-deploy" && e["status"] == "failed")
        .unwrap_or_else(|| panic!("no failed pre-deploy step: {}", text(&out)));
    assert_eq!(
        failed["error"],
        "plugin `hostile` at hook `pre-deploy` returned an invalid result: the outcome \
         carries 16 MiB of text (13 findings); the most is 16 MiB",
        "{failed}"
    );

    huge(&f, 13, "warn");
    let out = succeeded(f.run(&["deploy", "--release", "v1", "--json"]));
    let rules: Vec<Value> = hook(&out)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].clone())
        .collect();
    assert_eq!(rules, ["plugin-bad-result"], "{}", text(&out));

    huge(&f, 12, "warn");
    let out = succeeded(f.run(&["deploy", "--release", "v2", "--json"]));
    let findings = hook(&out)["findings"].as_array().unwrap().clone();
    assert_eq!(findings.len(), 12);
    let text: usize = findings
        .iter()
        .map(|f| f["rule"].as_str().unwrap().len() + f["message"].as_str().unwrap().len())
        .sum();
    assert_eq!(text, (14 << 20) + 12 * "huge".len());
    f.assert_serving("v2");
}
