//! Override comments in SQL migrations: our own `-- bluegreen:allow RULE
//! reason`, and the annotations of the tools teams switch from, so history
//! need not be rewritten: `-- squawk-ignore RULE[,RULE]` (and
//! `squawk-ignore-file`), `-- atlas:nolint [CHECK ...]`, and
//! `-- safety-assured:start` / `-- safety-assured:end` regions. Each covers
//! only the bluegreen rules its names map to (a bare `atlas:nolint` and a
//! region cover all); a name we do not map covers nothing, so an unknown
//! annotation fails closed. `inline-overrides: ignore` drops them all.

use sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace};

/// squawk rule → the bluegreen rules it stands for.
const SQUAWK: &[(&str, &[&str])] = &[
    ("ban-drop-column", &["remove-column"]),
    ("ban-drop-table", &["drop-table"]),
    ("ban-drop-database", &["drop-object"]),
    ("renaming-column", &["rename-column"]),
    ("renaming-table", &["rename-table"]),
    ("changing-column-type", &["change-column-type"]),
    ("adding-required-field", &["add-column-not-null-no-default"]),
    ("adding-not-nullable-field", &["set-not-null"]),
    (
        "adding-field-with-default",
        &[
            "add-column-volatile-default",
            "add-column-generated-stored",
            "add-auto-increment-column",
        ],
    ),
    ("adding-foreign-key-constraint", &["add-foreign-key-validated"]),
    (
        "constraint-missing-not-valid",
        &["add-foreign-key-validated", "add-check-validated", "validate-in-same-transaction"],
    ),
    ("disallowed-unique-constraint", &["unique-constraint"]),
    ("adding-serial-primary-key-field", &["unique-constraint"]),
    ("require-concurrent-index-creation", &["add-index-non-concurrently"]),
    ("require-concurrent-index-deletion", &["drop-index-non-concurrently"]),
    ("require-concurrent-reindex", &["heavy-lock-maintenance"]),
    ("prefer-repack", &["heavy-lock-maintenance"]),
    ("ban-concurrent-index-creation-in-transaction", &["concurrently-in-transaction"]),
    ("ban-truncate-cascade", &["truncate"]),
    ("require-lock-timeout", &["lock-timeout"]),
    ("require-timeout-settings", &["lock-timeout"]),
];

/// Atlas check codes and analyzer names → bluegreen rules.
const ATLAS: &[(&str, &[&str])] = &[
    ("destructive", &["drop-table", "remove-column", "drop-object"]),
    ("DS101", &["drop-object"]),
    ("DS102", &["drop-table"]),
    ("DS103", &["remove-column"]),
    ("incompatible", &["rename-table", "rename-column"]),
    ("BC101", &["rename-table"]),
    ("BC102", &["rename-column"]),
    ("data_depend", &["add-column-not-null-no-default", "set-not-null"]),
    ("MF103", &["add-column-not-null-no-default"]),
    ("MF104", &["set-not-null"]),
    ("PG101", &["add-index-non-concurrently"]),
    ("PG102", &["drop-index-non-concurrently"]),
    ("PG103", &["concurrently-in-transaction"]),
    ("PG104", &["unique-constraint"]),
    ("PG105", &["unique-constraint"]),
    ("PG301", &["change-column-type"]),
    ("PG302", &["add-column-volatile-default"]),
    ("PG303", &["set-not-null"]),
    ("PG305", &["add-check-validated"]),
    ("PG306", &["add-foreign-key-validated"]),
    ("MY130", &["change-column-type"]),
    ("MY131", &["add-foreign-key-validated"]),
    ("MY134", &["mysql-blocks-writes"]),
    ("MY136", &["mysql-blocks-writes"]),
];

/// An override: the rule it allows (`*` for all) and why.
pub type Allow = (String, String);

fn mapped(table: &[(&str, &[&str])], name: &str, why: String) -> Vec<Allow> {
    table
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, rules)| rules.iter().map(|r| (r.to_string(), why.clone())))
        .collect()
}

fn comment(t: &TokenWithSpan) -> Option<&str> {
    match &t.token {
        Token::Whitespace(Whitespace::SingleLineComment { comment, .. }) => Some(comment.trim()),
        Token::Whitespace(Whitespace::MultiLineComment(c)) => Some(c.trim()),
        _ => None,
    }
}

fn names(rest: &str) -> Vec<&str> {
    rest.split(|c: char| c == ',' || c.is_whitespace()).filter(|n| !n.is_empty()).collect()
}

/// The overrides a file grants its statements, read in order.
#[derive(Default)]
pub struct Overrides {
    /// `squawk-ignore-file`: for every statement of the file.
    file: Vec<Allow>,
    /// Inside a `safety-assured` region.
    assured: bool,
}

impl Overrides {
    /// File-wide annotations (squawk's apply wherever they sit).
    pub fn for_file(tokens: &[TokenWithSpan]) -> Overrides {
        let mut file = Vec::new();
        for rest in
            tokens.iter().filter_map(comment).filter_map(|c| c.strip_prefix("squawk-ignore-file"))
        {
            match names(rest).as_slice() {
                [] => file.push(("*".to_string(), "squawk-ignore-file".to_string())),
                list => {
                    for n in list {
                        file.extend(mapped(SQUAWK, n, format!("squawk-ignore-file {n}")));
                    }
                }
            }
        }
        Overrides { file, assured: false }
    }

    /// The overrides for one statement (its tokens, comments before it
    /// included); regions open and close as their comments are passed.
    pub fn for_statement(&mut self, stmt: &[TokenWithSpan]) -> Vec<Allow> {
        let mut out = self.file.clone();
        let mut started = false;
        for t in stmt {
            if !started && !matches!(t.token, Token::Whitespace(_)) {
                started = true;
                if self.assured {
                    out.push(("*".into(), "safety-assured region".into()));
                }
            }
            let Some(c) = comment(t) else { continue };
            if c.starts_with("safety-assured:start") {
                self.assured = true;
            } else if c.starts_with("safety-assured:end") {
                self.assured = false;
            } else if let Some(rest) = c.strip_prefix("bluegreen:allow") {
                let rest = rest.trim();
                let (rule, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                out.push((rule.to_string(), reason.trim().to_string()));
            } else if c.starts_with("squawk-ignore-file") {
                // Taken file-wide above.
            } else if let Some(rest) = c.strip_prefix("squawk-ignore") {
                for n in names(rest) {
                    out.extend(mapped(SQUAWK, n, format!("squawk-ignore {n}")));
                }
            } else if let Some(rest) = c.strip_prefix("atlas:nolint") {
                match names(rest).as_slice() {
                    [] => out.push(("*".into(), "atlas:nolint".into())),
                    list => {
                        for n in list {
                            out.extend(mapped(ATLAS, n, format!("atlas:nolint {n}")));
                        }
                    }
                }
            }
        }
        out
    }
}
