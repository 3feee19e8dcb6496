//! `bluegreen-plugin`: write a bluegreen hook plugin in Rust without the
//! wit-bindgen set-up. One module per hook: implement its `Guest` trait and
//! call its `export!` macro. The component then exports exactly the hooks
//! you exported, so the host calls it there and nowhere else. A plugin that
//! handles several hooks implements several modules' `Guest` traits and
//! calls each `export!` (the worlds merge into one component).
//!
//! ```ignore
//! use bluegreen_plugin::pre_deploy::{Deploy, Guest, Outcome};
//! struct Freeze;
//! impl Guest for Freeze {
//!     fn handle(d: Deploy) -> Result<Outcome, String> {
//!         Ok(match d.setting("frozen") {
//!             Some("true") => Outcome::block("deploys are frozen"),
//!             _ => Outcome::proceed(),
//!         })
//!     }
//! }
//! bluegreen_plugin::pre_deploy::export!(Freeze);
//! ```
//!
//! Every module re-exports the WIT types (`Deploy`, `Target`, `Outcome`,
//! `Verdict`, `Finding`, `Severity`, `Color`, ...) with the helpers below,
//! and `log::log` for the host's plugin log.

/// Helpers on the generated types, the same in every module.
#[doc(hidden)]
#[macro_export]
macro_rules! __helpers {
    () => {
        impl Outcome {
            /// Let the deploy go on.
            pub fn proceed() -> Outcome {
                Outcome { verdict: Verdict::Proceed, findings: Vec::new() }
            }
            /// Stop the deploy on purpose, saying why.
            pub fn block(reason: impl Into<String>) -> Outcome {
                Outcome { verdict: Verdict::Block(reason.into()), findings: Vec::new() }
            }
            /// Ask to be called again after `ms` (health checks poll).
            pub fn retry_after_ms(ms: u32) -> Outcome {
                Outcome { verdict: Verdict::RetryAfterMs(ms), findings: Vec::new() }
            }
            /// Adds a finding.
            pub fn with(mut self, finding: Finding) -> Outcome {
                self.findings.push(finding);
                self
            }
        }

        impl Finding {
            pub fn new(
                severity: Severity,
                rule: impl Into<String>,
                message: impl Into<String>,
            ) -> Finding {
                Finding {
                    severity,
                    rule: rule.into(),
                    message: message.into(),
                    file: None,
                    line: None,
                    fix: None,
                }
            }
            pub fn error(rule: impl Into<String>, message: impl Into<String>) -> Finding {
                Finding::new(Severity::Error, rule, message)
            }
            pub fn warning(rule: impl Into<String>, message: impl Into<String>) -> Finding {
                Finding::new(Severity::Warning, rule, message)
            }
            pub fn info(rule: impl Into<String>, message: impl Into<String>) -> Finding {
                Finding::new(Severity::Info, rule, message)
            }
            /// Where: a file relative to the app directory, and a 1-based line.
            pub fn at(mut self, file: impl Into<String>, line: Option<u32>) -> Finding {
                self.file = Some(file.into());
                self.line = line;
                self
            }
            /// How to do it safely.
            pub fn fix(mut self, fix: impl Into<String>) -> Finding {
                self.fix = Some(fix.into());
                self
            }
        }

        impl Deploy {
            /// This plugin's setting `key` from the deploy file, if set.
            pub fn setting(&self, key: &str) -> Option<&str> {
                self.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
            }
        }

        impl Color {
            pub fn name(self) -> &'static str {
                match self {
                    Color::Blue => "blue",
                    Color::Green => "green",
                }
            }
        }
    };
}

/// The `pre-deploy` hook: implement [`pre_deploy::Guest`], then `pre_deploy::export!(YourType);`.
pub mod pre_deploy {
    wit_bindgen::generate!({
        world: "pre-deploy-plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "bluegreen_plugin::pre_deploy",
    });
    pub use self::bluegreen::hooks::log;
    pub use self::bluegreen::hooks::types::*;
    pub use self::exports::bluegreen::hooks::pre_deploy::Guest;
    crate::__helpers!();
}

/// The `migration-safety-check` hook: implement [`migration_safety_check::Guest`], then `migration_safety_check::export!(YourType);`.
pub mod migration_safety_check {
    wit_bindgen::generate!({
        world: "migration-safety-check-plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "bluegreen_plugin::migration_safety_check",
    });
    pub use self::bluegreen::hooks::log;
    pub use self::bluegreen::hooks::types::*;
    pub use self::exports::bluegreen::hooks::migration_safety_check::Guest;
    pub use self::exports::bluegreen::hooks::migration_safety_check::Migration;
    crate::__helpers!();
}

/// The `pre-unmap` hook: implement [`pre_unmap::Guest`], then `pre_unmap::export!(YourType);`.
pub mod pre_unmap {
    wit_bindgen::generate!({
        world: "pre-unmap-plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "bluegreen_plugin::pre_unmap",
    });
    pub use self::bluegreen::hooks::log;
    pub use self::bluegreen::hooks::types::*;
    pub use self::exports::bluegreen::hooks::pre_unmap::Guest;
    crate::__helpers!();
}

/// The `pre-push` hook: implement [`pre_push::Guest`], then `pre_push::export!(YourType);`.
pub mod pre_push {
    wit_bindgen::generate!({
        world: "pre-push-plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "bluegreen_plugin::pre_push",
    });
    pub use self::bluegreen::hooks::log;
    pub use self::bluegreen::hooks::types::*;
    pub use self::exports::bluegreen::hooks::pre_push::Guest;
    crate::__helpers!();
}

/// The `health-check` hook: implement [`health_check::Guest`], then `health_check::export!(YourType);`.
pub mod health_check {
    wit_bindgen::generate!({
        world: "health-check-plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "bluegreen_plugin::health_check",
    });
    pub use self::bluegreen::hooks::log;
    pub use self::bluegreen::hooks::types::*;
    pub use self::exports::bluegreen::hooks::health_check::Guest;
    crate::__helpers!();
}

/// The `pre-map` hook: implement [`pre_map::Guest`], then `pre_map::export!(YourType);`.
pub mod pre_map {
    wit_bindgen::generate!({
        world: "pre-map-plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "bluegreen_plugin::pre_map",
    });
    pub use self::bluegreen::hooks::log;
    pub use self::bluegreen::hooks::types::*;
    pub use self::exports::bluegreen::hooks::pre_map::Guest;
    crate::__helpers!();
}

/// The `analyze` hook: implement [`analyze::Guest`], then `analyze::export!(YourType);`.
/// `handle` gets the window of live traffic (`Window`: the candidate's and
/// the baseline's `Metrics`) and the attempt. Its types derive `PartialEq`,
/// so a judgement can be unit-tested natively with `assert_eq!`.
pub mod analyze {
    wit_bindgen::generate!({
        world: "analyze-plugin",
        path: "wit",
        additional_derives: [PartialEq],
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "bluegreen_plugin::analyze",
    });
    pub use self::bluegreen::hooks::log;
    pub use self::bluegreen::hooks::types::*;
    pub use self::exports::bluegreen::hooks::analyze::{Guest, Metrics, Window};
    crate::__helpers!();

    impl Metrics {
        /// The share of requests answered 5xx (0.0-1.0); `None` when there
        /// were no requests, so "no traffic" never reads as "no errors".
        pub fn error_rate(&self) -> Option<f64> {
            (self.requests > 0).then(|| self.status_5xx as f64 / self.requests as f64)
        }
    }
}

/// The `post-map` hook: implement [`post_map::Guest`], then `post_map::export!(YourType);`.
pub mod post_map {
    wit_bindgen::generate!({
        world: "post-map-plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "bluegreen_plugin::post_map",
    });
    pub use self::bluegreen::hooks::log;
    pub use self::bluegreen::hooks::types::*;
    pub use self::exports::bluegreen::hooks::post_map::Guest;
    crate::__helpers!();
}

/// The `post-deploy` hook: implement [`post_deploy::Guest`], then `post_deploy::export!(YourType);`.
pub mod post_deploy {
    wit_bindgen::generate!({
        world: "post-deploy-plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "bluegreen_plugin::post_deploy",
    });
    pub use self::bluegreen::hooks::log;
    pub use self::bluegreen::hooks::types::*;
    pub use self::exports::bluegreen::hooks::post_deploy::Guest;
    crate::__helpers!();
}

/// The `on-failure` hook: implement [`on_failure::Guest`], then `on_failure::export!(YourType);`.
pub mod on_failure {
    wit_bindgen::generate!({
        world: "on-failure-plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "bluegreen_plugin::on_failure",
    });
    pub use self::bluegreen::hooks::log;
    pub use self::bluegreen::hooks::types::*;
    pub use self::exports::bluegreen::hooks::on_failure::Guest;
    crate::__helpers!();
}

/// The `approval` hook, asked at each pause: implement [`approval::Guest`],
/// then `approval::export!(YourType);`. `handle` gets the `Pause` (why, where,
/// the promote/abort commands) and the attempt, and answers with an
/// `Answer`: `Answer::proceed`, `block`, `retry_after_ms` or `abstain`.
pub mod approval {
    wit_bindgen::generate!({
        world: "approval-plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "bluegreen_plugin::approval",
    });
    pub use self::bluegreen::hooks::log;
    pub use self::bluegreen::hooks::types::*;
    pub use self::exports::bluegreen::hooks::approval::{
        Answer, Decision, Guest, Pause, PauseReason,
    };
    crate::__helpers!();

    impl Answer {
        /// Approved; `message` says by whom (journaled with the plugin's name).
        pub fn proceed(message: impl Into<String>) -> Answer {
            Answer { decision: Decision::Proceed, message: message.into(), findings: Vec::new() }
        }
        /// Rejected: the deploy rolls back with `reason`.
        pub fn block(reason: impl Into<String>) -> Answer {
            let reason = reason.into();
            Answer {
                decision: Decision::Block(reason.clone()),
                message: reason,
                findings: Vec::new(),
            }
        }
        /// Not decided yet: ask again after `ms`; `message` says what it waits for.
        pub fn retry_after_ms(ms: u32, message: impl Into<String>) -> Answer {
            Answer {
                decision: Decision::RetryAfterMs(ms),
                message: message.into(),
                findings: Vec::new(),
            }
        }
        /// No say here (the plugin only told people); `message` says what it did.
        pub fn abstain(message: impl Into<String>) -> Answer {
            Answer { decision: Decision::Abstain, message: message.into(), findings: Vec::new() }
        }
        /// Adds a finding.
        pub fn with(mut self, finding: Finding) -> Answer {
            self.findings.push(finding);
            self
        }
    }
}
