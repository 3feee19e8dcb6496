//! One integration-test binary (as ripgrep does): the real plugins built from
//! `plugins/`, a real engine and cache, real HTTP servers on 127.0.0.1.

mod analyze;
mod cache;
mod canary;
mod cli;
mod concurrency;
mod config;
mod contract;
mod crash;
mod deploy;
mod events;
mod examples;
mod faults;
mod fuzz;
mod guard;
mod hardening;
mod hostile;
mod init;
mod languages;
mod lock;
mod manifest;
mod notify;
mod order;
mod platform;
mod plugins;
mod policy;
mod probe;
mod promises;
mod rails;
mod retention;
mod router;
mod sandbox;
mod services;
mod terminal;
mod uploads;
mod util;
