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
        /// The type as written (`types::normalize`d by the rules); empty when
        /// unknown.
        ty: String,
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
    /// A column's type restated: `ALTER COLUMN .. TYPE`, `change_column`,
    /// MySQL's `MODIFY`/`CHANGE` (a `NOT NULL` they restate is a
    /// `SetNotNull` of its own).
    ChangeType {
        table: String,
        column: String,
        /// The new type as written; empty when unknown.
        to: String,
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
        /// The columns when the check is `col IS NOT NULL` (or several
        /// joined by AND): once validated, Postgres 12+ sets them NOT NULL
        /// without scanning the table.
        not_null: Vec<String>,
    },
    AddExclusion {
        table: String,
    },
    AddUnique {
        table: String,
    },
    Validate {
        table: String,
        /// The constraint's name, when given.
        name: Option<String>,
    },
    /// What a named check constraint requires, as the migration states it
    /// without adding it (the `add_check_constraint` a Rails `down` would
    /// run, or a `remove_check_constraint` with its expression): lets a
    /// validation by name tell which columns it proves NOT NULL.
    DeclaresCheck {
        table: String,
        name: String,
        not_null: Vec<String>,
    },
    Truncate {
        table: String,
    },
    DeleteAll {
        table: String,
    },
    UpdateAll {
        table: String,
        /// The columns it writes, when known (`update_all(col: v)`).
        columns: Option<Vec<String>>,
        /// Run batch by batch (`in_batches`): each batch locks only its rows.
        batched: bool,
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
        /// The table or materialized view it locks, when named.
        table: Option<String>,
    },
    /// A schema, view, sequence, function or type renamed.
    RenameObject {
        kind: &'static str,
        name: String,
    },
    /// `ALTER TYPE ... RENAME VALUE`.
    RenameEnumValue {
        ty: String,
    },
    /// MySQL: an operation it does by copying the table or with a lock that
    /// stops writes (an explicit `ALGORITHM=COPY`, `LOCK=SHARED`, a first
    /// FULLTEXT index, a character set conversion, ...).
    BlocksWrites {
        /// The table it copies or locks, when one is named.
        table: Option<String>,
        what: String,
    },
    /// `SET lock_timeout` in the migration itself.
    LockTimeout,
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
    /// serial, identity, AUTO_INCREMENT: a sequence value written to every
    /// existing row.
    AutoIncrement,
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
    /// MySQL was told `ALGORITHM=INSTANT` or `LOCK=NONE`: it refuses the
    /// statement rather than block writes, so no lock rule applies.
    pub online: bool,
}

/// Functions whose value differs per row: as a column default they force a
/// table rewrite (`now()` is stable within a statement, so it does not).
const VOLATILE: &[&str] = &[
    "random",
    "gen_random_uuid",
    "uuid_generate_v4",
    "uuid_generate_v1",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "uuid",
    "rand",
];

/// Whether a function name (any schema) is volatile.
pub fn volatile_fn(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    VOLATILE.contains(&name.rsplit('.').next().unwrap_or(&name))
}

/// Whether SQL text calls a volatile function.
pub fn volatile_sql(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    VOLATILE.iter().any(|f| {
        lower.match_indices(f).any(|(i, _)| {
            let before = lower[..i].chars().next_back();
            let after = lower[i + f.len()..].trim_start().starts_with('(');
            after && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    })
}

/// Byte offset → 1-based line.
pub fn line_of(src: &str, offset: usize) -> u32 {
    src.as_bytes()[..offset.min(src.len())].iter().filter(|b| **b == b'\n').count() as u32 + 1
}

/// `users` from `"public"."Users"`-style names: the last part, unquoted,
/// lower-cased unless it was quoted. A name holding a Ruby value the reader
/// could not know is `?`.
pub fn table_name(raw: &str) -> String {
    if raw.contains(crate::rails::UNKNOWN) {
        return "?".into();
    }
    let last = raw.rsplit('.').next().unwrap_or(raw).trim();
    if last.starts_with('"') || last.starts_with('`') {
        last.trim_matches(|c| c == '"' || c == '`').to_string()
    } else {
        last.to_ascii_lowercase()
    }
}
