//! How the rehearsal's evidence reads: durations, counts, statements on
//! one line, lock modes as PostgreSQL's documentation names them.

use super::sampler::Watch;
use std::time::Duration;

pub(super) fn ms(d: Duration) -> String {
    crate::units::human_duration(d)
}

/// `1234567` as `1,234,567`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A statement as shown: one line, at most 80 characters.
pub fn short(sql: &str) -> String {
    let words = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let one = words.trim_end_matches([';', ' ']);
    match one.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &one[..i]),
        None => one.to_string(),
    }
}

pub(super) fn lock_name(mode: &str) -> String {
    let bare = mode.strip_suffix("Lock").unwrap_or(mode);
    let mut out = String::new();
    for c in bare.chars() {
        if c.is_uppercase() && !out.is_empty() {
            out.push(' ');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// A statement seen that names `table` (for a change whose lock was too
/// brief to sample), or nothing.
pub(super) fn about(w: &Watch, table: &str) -> String {
    w.statements
        .values()
        .find(|s| super::combine::mentions(&s.text, table))
        .map(|s| short(&s.text))
        .unwrap_or_default()
}

/// The statements seen, longest first (at most `n`), as lines.
pub fn statements(w: &Watch, n: usize) -> Vec<String> {
    let mut all: Vec<_> = w
        .statements
        .values()
        .map(|s| (s.took(), short(&s.text)))
        .collect();
    all.sort_by_key(|s| std::cmp::Reverse(s.0.0));
    all.into_iter()
        .take(n)
        .map(|((d, exact), text)| format!("{}{}: {text}", if exact { "" } else { "≥" }, ms(d)))
        .collect()
}
