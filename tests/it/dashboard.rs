//! `bluegreen dashboard` against a real local platform and a real deploy,
//! looked at and clicked in a real headless Chromium (`webdriver`): the
//! page shows the app's colors, follows a paused canary deploy as it runs
//! (its steps and its request counts change in the DOM), and its Promote
//! button finishes the deploy. A POST without the page's token (or from
//! another origin or host) is refused with 403 and sends nothing. Each on
//! the local platform and as `platform: cf`.
//!
//! `BLUEGREEN_DASHBOARD_SCREENSHOT=PATH` makes the browser test save the
//! page, paused mid-deploy with traffic, as a PNG (the docs' picture:
//! `docs/src/operator/dashboard.png`).

mod harness;
mod webdriver;

use crate::deploy::{Fixture, text, write_file};
use crate::util::wait_until;
use harness::{Http, Proc, dashboard};
use serde_json::{Value, json};
use std::time::Duration;
use webdriver::Browser;

/// A canary with one pause; short windows that go on without traffic.
const CANARY: &str = "strategy: canary\nsteps: [10, pause, 100]\n\
    analysis: { duration: 4s, on_inconclusive: warn, p99_floor: 30s }\n";

/// What the page shows, read from its DOM.
const READ_PAGE: &str = "
    const q = s => document.querySelector(s);
    const cards = [...document.querySelectorAll('#colors article')];
    return {
      cards: cards.map(a => ({color: a.dataset.color, text: a.innerText,
                              requests: Number(a.dataset.requests)})),
      deploy: q('#deploy').hidden ? null : q('#deploy-state').innerText,
      current: q('#steps li.current') ? q('#steps li.current').innerText : null,
      decisions: [...document.querySelectorAll('#decisions li.decision')].map(l => l.innerText),
      bands: document.querySelectorAll('#chart-rps rect.band').length,
      action: q('#action-result').innerText,
      history: [...document.querySelectorAll('#history-rows tr')].map(r => r.innerText),
      platform: q('#platform').innerText,
    };";

fn deploy_events(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn the_page_follows_a_real_deploy_and_its_promote_button_finishes_it(f: Fixture) {
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    write_file(&f, "", CANARY);
    let (_dash, url) = dashboard(&f);
    let browser = Browser::start(1280, 1800);
    browser.goto(&url);
    let mut page = Value::Null;
    wait_until(
        "the page shows both colors on v1",
        Duration::from_secs(30),
        || {
            page = browser.eval(READ_PAGE);
            let cards = page["cards"].as_array().unwrap();
            cards.len() == 2
                && cards
                    .iter()
                    .all(|c| c["text"].as_str().unwrap().contains("v1"))
        },
    );
    assert_eq!(page["cards"][0]["color"], "blue", "{page:#}");
    assert_eq!(page["cards"][1]["color"], "green", "{page:#}");
    assert!(page["deploy"].is_null(), "no deploy yet: {page:#}");
    let platform = if f.cf.is_some() {
        "Cloud Foundry"
    } else {
        "local platform"
    };
    assert_eq!(page["platform"], platform, "{page:#}");

    let load = f.load();
    let deploy = Proc::start(&f, &["deploy", "--release", "v2", "--json"]);
    // The page follows it: the step in flight changes, requests are counted.
    let mut steps_seen = Vec::<String>::new();
    let requests = |p: &Value| -> u64 {
        p["cards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["requests"].as_u64().unwrap())
            .sum()
    };
    let first_count = requests(&browser.eval(READ_PAGE));
    wait_until(
        "the page shows the deploy paused",
        Duration::from_secs(120),
        || {
            page = browser.eval(READ_PAGE);
            if let Some(s) = page["current"].as_str()
                && steps_seen.last().map(String::as_str) != Some(s)
            {
                steps_seen.push(s.to_string());
            }
            page["deploy"]
                .as_str()
                .is_some_and(|d| d.contains("paused at 10%"))
        },
    );
    assert!(
        steps_seen.len() >= 2,
        "the current step moved: {steps_seen:?}"
    );
    assert!(
        page["current"].as_str().unwrap().contains("paused"),
        "{page:#}"
    );
    wait_until(
        "the page counts the route's requests",
        Duration::from_secs(30),
        || {
            page = browser.eval(READ_PAGE);
            requests(&page) > first_count + 20
        },
    );
    let analysis = page["decisions"].as_array().unwrap();
    assert!(
        analysis
            .iter()
            .any(|d| d.as_str().unwrap().starts_with("analysis of")),
        "the 10% window's verdict is listed: {page:#}"
    );
    assert!(
        page["bands"].as_u64().unwrap() >= 1,
        "and marked on the chart: {page:#}"
    );
    if let Some(path) =
        std::env::var_os("BLUEGREEN_DASHBOARD_SCREENSHOT").filter(|_| f.cf.is_none())
    {
        // A minute of traffic on the charts.
        std::thread::sleep(Duration::from_secs(60));
        std::fs::write(&path, browser.screenshot()).unwrap();
    }

    browser.type_into("#reason", "canary looks fine");
    browser.click("#promote");
    let (status, lines, err) = deploy.finish(Duration::from_secs(120));
    let events = deploy_events(&lines);
    assert_eq!(status.code(), Some(0), "{events:#?}\n{err}");
    let control: Vec<&Value> = events.iter().filter(|e| e["event"] == "control").collect();
    assert_eq!(control.len(), 1, "{events:#?}");
    assert_eq!(control[0]["verb"], "promote");
    assert_eq!(control[0]["reason"], "canary looks fine");
    let by = control[0]["by"].as_str().unwrap();
    assert!(by.starts_with("dashboard (") && by.contains('@'), "{by}");
    let tally = load.finish();
    assert!(tally.1.is_empty(), "failed requests: {:?}", tally.1);
    f.assert_serving("v2");
    wait_until(
        "the page shows the deploy done",
        Duration::from_secs(30),
        || {
            page = browser.eval(READ_PAGE);
            page["action"].as_str().unwrap().contains("took it")
                && page["history"][0]
                    .as_str()
                    .is_some_and(|h| h.contains("v2") && h.contains("done"))
        },
    );
}

#[test]
fn the_page_follows_a_real_deploy_and_its_promote_button_finishes_it_local() {
    the_page_follows_a_real_deploy_and_its_promote_button_finishes_it(Fixture::new(""));
}

#[test]
fn the_page_follows_a_real_deploy_and_its_promote_button_finishes_it_as_cf() {
    the_page_follows_a_real_deploy_and_its_promote_button_finishes_it(Fixture::new_cf(""));
}

/// Through plain HTTP (no browser): a POST must carry the page's token and
/// name this server, else 403 and no command reaches the deploy; with both,
/// the button's POST aborts it as `bluegreen abort` does.
fn a_post_without_the_token_is_refused_and_changes_nothing(f: Fixture) {
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    write_file(&f, "", CANARY);
    let (_dash, url) = dashboard(&f);
    let origin = url.trim_end_matches('/').to_string();
    let http = Http::new();
    let deploy = Proc::start(&f, &["deploy", "--release", "v2", "--json"]);
    wait_until(
        "the dashboard sees the deploy paused",
        Duration::from_secs(120),
        || {
            let (_, s) = http.send("GET", &format!("{url}api/state"), &[], None);
            s["deploy"]["paused"] == "paused at 10%"
        },
    );
    let (status, page) = http.text(&url);
    assert_eq!(status, 200);
    let token = page
        .split("name=\"bluegreen-token\" content=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("the page embeds its token")
        .to_string();
    let promote = format!("{url}api/promote");
    let body = Some(json!({"reason": "sneaky"}));
    let other_host = format!("evil.example:{}", origin.rsplit(':').next().unwrap());
    let (o, t, zeros) = (origin.as_str(), token.as_str(), "0".repeat(64));
    for (why, headers) in [
        ("no token", vec![("origin", o)]),
        (
            "a wrong token",
            vec![("origin", o), ("x-bluegreen-token", &zeros)],
        ),
        (
            "another origin",
            vec![("origin", "http://evil.example"), ("x-bluegreen-token", t)],
        ),
        ("no origin", vec![("x-bluegreen-token", t)]),
        (
            "another host",
            vec![
                ("origin", o),
                ("x-bluegreen-token", t),
                ("host", &other_host),
            ],
        ),
    ] {
        let (status, answer) = http.send("POST", &promote, &headers, body.clone());
        assert_eq!(status, 403, "{why}: {answer}");
    }
    // Nothing reached the deploy: still paused, no command journaled.
    let (_, s) = http.send("GET", &format!("{url}api/state"), &[], None);
    assert_eq!(s["deploy"]["paused"], "paused at 10%", "{s:#}");
    let journal = std::fs::read_to_string(f.journal()).unwrap();
    assert!(!journal.contains("\"control\""), "{journal}");
    assert!(!journal.contains("sneaky"), "{journal}");
    // With the token and this origin it acts, as `bluegreen abort` does.
    let headers = [
        ("origin", origin.as_str()),
        ("x-bluegreen-token", token.as_str()),
    ];
    let abort = Some(json!({"reason": "error budget"}));
    let (status, answer) = http.send("POST", &format!("{url}api/abort"), &headers, abort);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["doing"], "rolling back", "{answer}");
    let (status, lines, err) = deploy.finish(Duration::from_secs(120));
    assert_eq!(status.code(), Some(1), "{lines:#?}\n{err}");
    assert!(
        err.contains("aborted by dashboard (") && err.contains("error budget"),
        "{err}"
    );
    f.assert_serving("v1");
    // No deploy now: a button says so (409), as the CLI's exit 6 does.
    let (status, answer) = http.send("POST", &promote, &headers, None);
    assert_eq!(status, 409, "{answer}");
}

#[test]
fn a_post_without_the_token_is_refused_and_changes_nothing_local() {
    a_post_without_the_token_is_refused_and_changes_nothing(Fixture::new(""));
}

#[test]
fn a_post_without_the_token_is_refused_and_changes_nothing_as_cf() {
    a_post_without_the_token_is_refused_and_changes_nothing(Fixture::new_cf(""));
}
