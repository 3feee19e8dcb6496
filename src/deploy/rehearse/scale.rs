//! How the copy's times scale to the real tables: linearly in rows, the
//! copy's lock time × (rows in the shared table ÷ rows in the copy).
//!
//! Rows in the shared table are its `pg_class.reltuples` (the planner's
//! estimate: reading it costs nothing, where a `count(*)` would scan
//! production); before its first ANALYZE (-1), the copy's rows scaled by the
//! two tables' sizes on disk. The lock time includes fixed costs (the
//! transaction, the commit), which this scales too, so a small copy
//! overestimates; index builds grow faster than linearly. An estimate within
//! a small factor, not a measurement, and the output says which source it
//! used.

use super::catalog::{Size, Table};
use super::show::count;
use std::collections::BTreeMap;

/// The shared table's rows and how that was known, from the copy's `rows`
/// and `bytes`.
pub(super) fn real_rows(size: Option<&Size>, rows: u64, bytes: i64) -> Option<(f64, &'static str)> {
    let s = size?;
    if s.reltuples >= 0.0 {
        return Some((s.reltuples, "pg_class.reltuples"));
    }
    if s.bytes == 0 {
        return Some((0.0, "an empty table"));
    }
    (rows > 0 && bytes > 0).then(|| {
        (
            rows as f64 * s.bytes as f64 / bytes as f64,
            "its size on disk",
        )
    })
}

/// How the copy's times scale to a table: (factor, "~N rows (source)"),
/// or why they do not.
pub(super) fn scale(
    copied: &BTreeMap<String, u64>,
    sizes: &BTreeMap<String, Size>,
    t: &Table,
) -> Result<(f64, String), String> {
    let name = t.qualified();
    let rows = copied.get(&name).copied().unwrap_or(0);
    let Some((real, how)) = real_rows(sizes.get(&name), rows, t.bytes) else {
        return Err(format!("{name}'s real size is unknown"));
    };
    if rows == 0 {
        return Err(match real as u64 {
            0 => format!("{name} is empty"),
            n => format!(
                "measured on an empty copy of {name}; it has ~{} rows ({how}), so the real \
                 time is not known",
                count(n)
            ),
        });
    }
    Ok((
        (real / rows as f64).max(1.0),
        format!("~{} rows ({how})", count(real as u64)),
    ))
}
