//! What a migration does, whatever it was written in: the Rails reader and
//! the SQL reader both produce these, and the rules judge only these.

/// The schema changes and data changes the rules know about.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    CreateTable {
        table: String,
        force: bool,
    },
    DropTable {
        table: String,
    },
    RenameTable {
        from: String,
        to: String,
    },
    AddColumn {
        table: String,
        column: String,
        not_null: bool,
        default: Default,
    },
    RemoveColumn {
        table: String,
        column: String,
        what: &'static str,
    },
    RenameColumn {
        table: String,
        from: String,
        to: String,
    },
    ChangeType {
        table: String,
        column: String,
    },
    SetNotNull {
        table: String,
        column: String,
    },
    ChangeDefault {
        table: String,
        column: String,
    },
    AddIndex {
        table: String,
        concurrently: bool,
        unique: bool,
    },
    DropIndex {
        concurrently: bool,
    },
    AddForeignKey {
        table: String,
        validated: bool,
    },
    AddCheck {
        table: String,
        validated: bool,
    },
    AddUnique {
        table: String,
    },
    Validate {
        table: String,
    },
    Truncate {
        table: String,
    },
    DeleteAll {
        table: String,
    },
    UpdateAll {
        table: String,
    },
    /// `CREATE INDEX CONCURRENTLY` and friends inside a transaction.
    ConcurrentlyInTransaction,
    /// SQL built at run time (interpolation, a variable): cannot be read.
    Dynamic {
        why: String,
    },
    /// Not understood by any parser: never silently safe.
    Unparsed {
        why: String,
    },
    /// `revert SomeMigration`: what it undoes is in another file.
    RevertOther {
        name: String,
    },
    /// A view, materialized view, sequence, type, function, trigger or
    /// schema dropped.
    DropObject {
        kind: &'static str,
        name: String,
    },
    /// Maintenance that holds a heavy lock for its whole run (`VACUUM FULL`,
    /// `CLUSTER`, `REINDEX`, `REFRESH MATERIALIZED VIEW`, each without
    /// `CONCURRENTLY` where it has one).
    Maintenance {
        what: String,
        lock: &'static str,
    },
    /// `ALTER TYPE ... RENAME VALUE`.
    RenameEnumValue {
        ty: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Default {
    None,
    Constant,
    /// A function call or lambda: evaluated per row on some databases.
    Volatile,
    /// `GENERATED ALWAYS AS (...) STORED`: computed and written for every
    /// existing row.
    Stored,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Runs while the old release still serves: must not break it.
    Expand,
    /// Runs after both colors serve the new release.
    Contract,
}

/// An operation where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    pub op: Op,
    pub file: String,
    pub line: u32,
    pub phase: Phase,
    /// Whether the file runs in one transaction.
    pub in_transaction: bool,
    /// Rules overridden in the migration itself, each with its reason.
    pub allowed: Vec<(String, String)>,
}

/// Byte offset → 1-based line.
pub fn line_of(src: &str, offset: usize) -> u32 {
    src.as_bytes()[..offset.min(src.len())].iter().filter(|b| **b == b'\n').count() as u32 + 1
}

/// `users` from `"public"."Users"`-style names: the last part, unquoted,
/// lower-cased unless it was quoted.
pub fn table_name(raw: &str) -> String {
    let last = raw.rsplit('.').next().unwrap_or(raw).trim();
    if last.starts_with('"') || last.starts_with('`') {
        last.trim_matches(|c| c == '"' || c == '`').to_string()
    } else {
        last.to_ascii_lowercase()
    }
}
