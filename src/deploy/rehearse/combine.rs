//! The static guard's findings (from the `migration-safety-check` hook) read
//! again with the rehearsal's evidence: a static warning about a table the
//! rehearsal saw locked briefly, not rewritten, nothing dropped, is
//! downgraded to info with that evidence; one about a table the rehearsal
//! blocks on is confirmed; a rehearsal block on a table the guard said
//! nothing about is raised from the guard's silence.
//!
//! The match is by table name in the static finding's message (the guard
//! names the table it is about); a finding that names no table the copy has
//! stands as it was, and the output says so. This only changes what is
//! reported: the hook's own verdict was applied when it ran, and the
//! rehearsal's errors block on their own.

use super::evidence::Finding;
use crate::plugin::context::{Finding as Static, Severity};

/// Whether `text` mentions `table` as a whole word (or `schema.table`).
pub(super) fn mentions(text: &str, table: &str) -> bool {
    let bare = table.rsplit('.').next().unwrap_or(table);
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(bare).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + bare.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// One line per static finding (and per unmatched rehearsal block) saying
/// how the two readings combine. `tables`: the copy's tables before.
pub fn combine(statics: &[Static], rehearsal: &[Finding], tables: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    for s in statics.iter().filter(|s| s.severity != Severity::Info) {
        let at = match (&s.file, s.line) {
            (Some(f), Some(l)) => format!(" ({f}:{l})"),
            (Some(f), None) => format!(" ({f})"),
            _ => String::new(),
        };
        let named: Vec<&String> = tables.iter().filter(|t| mentions(&s.message, t)).collect();
        let label = format!("static `{}`{at}", crate::output::printable(&s.rule));
        if named.is_empty() {
            lines.push(format!(
                "{label} names no table of the copy, so no evidence is matched to it: it stands \
                 as the guard said"
            ));
            continue;
        }
        let about: Vec<&Finding> = rehearsal
            .iter()
            .filter(|f| named.iter().any(|t| **t == f.table))
            .collect();
        if let Some(block) = about.iter().find(|f| f.severity == Severity::Error) {
            lines.push(format!(
                "{label} confirmed by the rehearsal: {}",
                block.message
            ));
        } else if s.severity == Severity::Warning {
            let seen = match about.first() {
                Some(f) => f.message.clone(),
                None => format!(
                    "{}: no blocking lock, no rewrite, nothing dropped or renamed",
                    named
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            lines.push(format!(
                "{label} downgraded to info by the rehearsal: {seen}"
            ));
        } else {
            lines.push(format!(
                "{label} (overridden) not confirmed: the rehearsal saw nothing blocking on {}",
                named
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    for f in rehearsal.iter().filter(|f| f.severity == Severity::Error) {
        let said = statics
            .iter()
            .any(|s| s.severity != Severity::Info && mentions(&s.message, &f.table));
        if !said {
            lines.push(format!(
                "raised to block by the rehearsal (no static finding names {}): {}",
                f.table, f.message
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(severity: Severity, rule: &str, message: &str) -> Static {
        Static {
            severity,
            rule: rule.into(),
            message: message.into(),
            file: Some("db/migrate/2_x.rb".into()),
            line: Some(3),
            fix: None,
        }
    }

    fn seen(severity: Severity, table: &str, message: &str) -> Finding {
        Finding {
            severity,
            rule: "rehearsal-lock",
            table: table.into(),
            message: message.into(),
        }
    }

    #[test]
    fn warnings_go_down_or_are_confirmed_and_silence_is_raised() {
        let tables = vec!["products".to_string(), "orders".to_string()];
        let statics = [
            stat(
                Severity::Warning,
                "add-index",
                "index on products without CONCURRENTLY",
            ),
            stat(
                Severity::Warning,
                "unresolved",
                "`Helpers.retire` on orders: not read",
            ),
            stat(Severity::Warning, "dynamic", "SQL built at run time"),
        ];
        let rehearsal = [
            seen(
                Severity::Info,
                "products",
                "CREATE INDEX: SHARE on products held 2ms",
            ),
            seen(Severity::Error, "orders", "column orders.note was dropped"),
            seen(
                Severity::Error,
                "line_items",
                "table line_items was rewritten",
            ),
        ];
        let lines = combine(&statics, &rehearsal, &tables);
        assert!(
            lines[0].starts_with("static `add-index` (db/migrate/2_x.rb:3) downgraded to info"),
            "{lines:?}"
        );
        assert!(lines[0].ends_with("SHARE on products held 2ms"));
        assert!(
            lines[1].contains("`unresolved`")
                && lines[1].contains("confirmed by the rehearsal: column orders.note")
        );
        assert!(lines[2].contains("names no table of the copy, so no evidence is matched"));
        assert!(
            lines[3].starts_with(
                "raised to block by the rehearsal (no static finding names line_items)"
            )
        );
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(!mentions("products_archive", "products"));
        assert!(mentions("on public.products.", "products"));
    }
}
