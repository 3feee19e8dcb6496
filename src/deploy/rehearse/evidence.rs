//! From what the rehearsal saw to findings and a verdict (pure, so every
//! rule is tested without a database).
//!
//! A table "the old release uses" is one that existed before the migration,
//! other than a migration tool's bookkeeping. What blocks: a rewrite of such
//! a table; a dropped or renamed table or column of one; a lock that stops
//! its reads or writes (ACCESS EXCLUSIVE, EXCLUSIVE, SHARE ROW EXCLUSIVE,
//! SHARE) held longer than `max_exclusive`, as measured on the copy or as
//! extrapolated to the real table size where the statement touched rows.
//!
//! How times scale to the real table sizes: `scale.rs`.

use super::catalog::{Size, Snapshot, Table};
use super::sampler::Watch;
use super::scale::scale;
use super::scratch::BOOKKEEPING;
use super::show::{about, count, lock_name, ms, short};
use crate::plugin::context::Severity;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    pub rule: &'static str,
    /// The table it is about (qualified), for matching static findings.
    pub table: String,
    pub message: String,
}

pub struct Inputs<'a> {
    pub before: &'a Snapshot,
    pub after: &'a Snapshot,
    pub watch: &'a Watch,
    /// Rows copied into the scratch database, by qualified name.
    pub copied: &'a BTreeMap<String, u64>,
    /// The shared database's tables.
    pub sizes: &'a BTreeMap<String, Size>,
    pub max_exclusive: Duration,
}

/// Modes that stop the old release's writes (and for ACCESS EXCLUSIVE,
/// its reads) while held.
fn blocks_traffic(mode: &str) -> bool {
    matches!(
        mode,
        "AccessExclusiveLock" | "ExclusiveLock" | "ShareRowExclusiveLock" | "ShareLock"
    )
}

/// The longest hold per table and mode: (held, samples, statement).
type Holds = BTreeMap<(i64, String), (Duration, u32, String)>;

fn longest_holds(i: &Inputs) -> Holds {
    let mut holds = Holds::new();
    for ((pid, xact, ..), h) in i.watch.holds.iter().filter(|(_, h)| h.granted) {
        let held = Duration::from_secs_f64((h.last_ms - h.first_ms).max(0.0) / 1e3);
        // The statement that took it: of its transaction, naming the table
        // (a tool may run catalog queries while it holds the lock).
        let named = i.before.get(&h.relation).and_then(|t| {
            i.watch
                .statements
                .iter()
                .filter(|((p, start), _)| {
                    p == pid && *start >= *xact && (*start as f64) <= h.last_ms
                })
                .map(|(_, s)| s)
                .find(|s| super::combine::mentions(&s.text, &t.name))
        });
        let statement = named.map_or(h.statement.clone(), |s| s.text.clone());
        let e = holds.entry((h.relation, h.mode.clone())).or_insert((
            held,
            h.samples,
            statement.clone(),
        ));
        if held > e.0 {
            *e = (held, h.samples, statement);
        }
    }
    holds
}

/// Renamed tables, dropped or renamed columns, changed types: `t` before,
/// `now` after.
fn changes(name: &str, t: &Table, now: &Table, out: &mut Vec<Finding>) {
    let find = |severity, rule, message: String| Finding {
        severity,
        rule,
        table: name.to_string(),
        message,
    };
    if now.qualified() != name {
        out.push(find(
            Severity::Error,
            "rehearsal-renamed-table",
            format!(
                "table {name} was renamed to {}; the old release still reads {name}",
                now.qualified()
            ),
        ));
    }
    for (num, c) in t.columns.iter().filter(|(_, c)| !c.dropped) {
        match now.columns.get(num) {
            Some(n) if n.dropped => out.push(find(
                Severity::Error,
                "rehearsal-dropped-column",
                format!(
                    "column {name}.{} was dropped; the old release still reads it",
                    c.name
                ),
            )),
            None => out.push(find(
                Severity::Error,
                "rehearsal-dropped-column",
                format!(
                    "column {name}.{} was dropped; the old release still reads it",
                    c.name
                ),
            )),
            Some(n) if n.name != c.name => out.push(find(
                Severity::Error,
                "rehearsal-renamed-column",
                format!(
                    "column {name}.{} was renamed to {}; the old release still reads {}",
                    c.name, n.name, c.name
                ),
            )),
            Some(n) if n.type_name != c.type_name => out.push(find(
                Severity::Info,
                "rehearsal-type-change",
                format!(
                    "column {name}.{} changed type: {} → {}",
                    c.name, c.type_name, n.type_name
                ),
            )),
            Some(_) => {}
        }
    }
}

/// The findings, errors first.
pub fn judge(i: &Inputs) -> Vec<Finding> {
    let mut out = Vec::new();
    let used = |oid: &i64| {
        i.before
            .get(oid)
            .filter(|t| !BOOKKEEPING.contains(&t.name.as_str()))
    };
    let one = i.watch.interval().max(Duration::from_millis(1));
    let holds = longest_holds(i);
    for (oid, t) in i.before.iter().filter(|(o, _)| used(o).is_some()) {
        let name = t.qualified();
        let find = |severity, rule, message: String| Finding {
            severity,
            rule,
            table: name.clone(),
            message,
        };
        let Some(now) = i.after.get(oid) else {
            out.push(find(
                Severity::Error,
                "rehearsal-dropped-table",
                format!("table {name} was dropped; the old release still reads it"),
            ));
            continue;
        };
        changes(&name, t, now, &mut out);
        let rewrote = now.relfilenode != t.relfilenode;
        let (scans, read) = (now.seq_scan - t.seq_scan, now.seq_tup_read - t.seq_tup_read);
        let (updated, deleted) = (now.updated - t.updated, now.deleted - t.deleted);
        let touched = rewrote || read > 0 || updated > 0 || deleted > 0;
        let scaled = scale(i.copied, i.sizes, t);
        let exclusive = holds.get(&(*oid, "AccessExclusiveLock".to_string()));
        if rewrote {
            let (held, statement) = match exclusive {
                Some((d, n, s)) if *n > 1 => (format!("held {}", ms(*d)), short(s)),
                Some((_, _, s)) => (format!("held under {}", ms(one)), short(s)),
                None => (
                    format!("too brief to sample (under {})", ms(one)),
                    about(i.watch, &t.name),
                ),
            };
            let real = match (&scaled, exclusive) {
                (Ok((f, rows)), Some((d, _, _))) => format!(
                    "; at {rows} ~{} under that lock, scaling linearly by rows",
                    ms(d.mul_f64(*f))
                ),
                (Err(why), _) => format!("; {why}"),
                _ => String::new(),
            };
            let what = if statement.is_empty() {
                String::new()
            } else {
                format!("{statement}: ")
            };
            out.push(find(
                Severity::Error,
                "rehearsal-rewrite",
                format!(
                    "{what}table {name} was rewritten (new relfilenode), ACCESS EXCLUSIVE {held} \
                     on {} copied rows{real}",
                    count(i.copied.get(&name).copied().unwrap_or(0))
                ),
            ));
        }
        for ((rel, mode), (held, samples, statement)) in holds.range((*oid, String::new())..) {
            if rel != oid {
                break;
            }
            if !blocks_traffic(mode) {
                out.push(find(
                    Severity::Info,
                    "rehearsal-lock",
                    format!(
                        "{}: {} on {name} held {}, which blocks neither reads nor writes",
                        short(statement),
                        lock_name(mode),
                        ms(*held)
                    ),
                ));
                continue;
            }
            let estimate = match (&scaled, touched) {
                (Ok((f, rows)), true) if *f > 1.0 => Some((held.mul_f64(*f), rows.clone())),
                _ => None,
            };
            let worst = estimate.as_ref().map_or(*held, |(d, _)| (*d).max(*held));
            let measured = match samples {
                1 => format!("held under {}", ms(one)),
                _ => format!("held {}", ms(*held)),
            };
            let mut message = format!(
                "{}: {} on {name} {measured}{}",
                short(statement),
                lock_name(mode),
                if rewrote { ", rewrite" } else { ", no rewrite" }
            );
            if let Some((d, rows)) = &estimate {
                message += &format!("; at {rows} ~{}, scaling linearly by rows", ms(*d));
            }
            if rewrote || worst <= i.max_exclusive {
                // A rewrite is its own finding; a brief lock is evidence only.
                if !rewrote {
                    out.push(find(Severity::Info, "rehearsal-lock", message));
                }
                continue;
            }
            let rule = match mode.as_str() {
                "AccessExclusiveLock" => "rehearsal-exclusive-lock",
                _ => "rehearsal-write-lock",
            };
            message += &format!(
                " (over max_exclusive {}: the old release's {} queue meanwhile)",
                ms(i.max_exclusive),
                if mode == "AccessExclusiveLock" {
                    "reads and writes"
                } else {
                    "writes"
                }
            );
            out.push(find(Severity::Error, rule, message));
        }
        if updated > 0 || deleted > 0 {
            out.push(find(
                Severity::Warning,
                "rehearsal-rows",
                format!(
                    "{name}: {} rows updated and {} deleted of {} copied",
                    count(updated as u64),
                    count(deleted as u64),
                    count(i.copied.get(&name).copied().unwrap_or(0))
                ),
            ));
        } else if scans > 0 && read > 0 && !rewrote {
            out.push(find(
                Severity::Info,
                "rehearsal-scan",
                format!(
                    "{name}: {scans} full scan(s) read {} rows (a validation or backfill)",
                    count(read as u64)
                ),
            ));
        }
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity as u8));
    out
}

#[cfg(test)]
#[path = "evidence_tests.rs"]
mod tests;
