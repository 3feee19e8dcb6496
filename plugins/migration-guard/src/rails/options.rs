//! Reading a call's arguments: symbols and strings, the trailing options
//! hash in keyword or hash-rocket style, and what option values mean.

use crate::ops::{Default, Op};
use lib_ruby_parser::Node;

/// A symbol's or string's text.
pub(super) fn name(node: &Node) -> Option<String> {
    match node {
        Node::Sym(s) => Some(s.name.to_string_lossy()),
        Node::Str(s) => Some(s.value.to_string_lossy()),
        _ => None,
    }
}

/// The trailing options hash (keyword or hash-rocket style).
pub(super) fn options(args: &[Node]) -> Vec<(String, &Node)> {
    match args.last() {
        Some(Node::Kwargs(k)) => pairs(&k.pairs),
        Some(Node::Hash(h)) => pairs(&h.pairs),
        _ => Vec::new(),
    }
}

pub(super) fn pairs(pairs: &[Node]) -> Vec<(String, &Node)> {
    pairs
        .iter()
        .filter_map(|p| match p {
            Node::Pair(p) => name(&p.key).map(|k| (k, &*p.value)),
            _ => None,
        })
        .collect()
}

pub(super) fn opt<'n>(opts: &[(String, &'n Node)], key: &str) -> Option<&'n Node> {
    opts.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

pub(super) fn is_false(node: Option<&Node>) -> bool {
    matches!(node, Some(Node::False(_)))
}

pub(super) fn truthy(node: Option<&Node>) -> bool {
    !matches!(node, None | Some(Node::False(_)) | Some(Node::Nil(_)))
}

pub(super) fn concurrently(opts: &[(String, &Node)]) -> bool {
    opt(opts, "algorithm").and_then(name).as_deref() == Some("concurrently")
}

/// A lambda's SQL (`default: -> { "gen_random_uuid()" }`) is evaluated by
/// the database, per row when volatile; any other Ruby value is evaluated
/// once, by Ruby, and stored as a constant.
pub(super) fn default_of(opts: &[(String, &Node)]) -> Default {
    match opt(opts, "default") {
        None | Some(Node::Nil(_)) => Default::None,
        Some(Node::Block(b)) => match b.body.as_deref() {
            Some(Node::Str(s)) if !crate::ops::volatile_sql(&s.value.to_string_lossy()) => {
                Default::Constant
            }
            _ => Default::Volatile,
        },
        Some(Node::Lambda(_)) => Default::Volatile,
        Some(_) => Default::Constant,
    }
}

pub(super) fn number(node: Option<&Node>) -> Option<u32> {
    match node {
        Some(Node::Int(i)) => i.value.replace('_', "").parse().ok(),
        _ => None,
    }
}

/// A Rails column type with its `limit:`, `precision:`, `scale:` and
/// `array:`.
pub(super) fn column_type(ty: &str, opts: &[(String, &Node)]) -> String {
    let base = crate::types::rails(
        ty,
        number(opt(opts, "limit")),
        number(opt(opts, "precision")),
        number(opt(opts, "scale")),
    );
    if truthy(opt(opts, "array")) { format!("{base}[]") } else { base }
}

/// A string's text when every part is literal (no `#{...}`).
pub(super) fn literal_parts(parts: &[Node]) -> Option<String> {
    let mut s = String::new();
    for p in parts {
        match p {
            Node::Str(st) => s.push_str(&st.value.to_string_lossy()),
            _ => return None,
        }
    }
    Some(s)
}

/// What an operation does when run backwards inside `revert do ... end`.
pub(super) fn invert(op: Op) -> Option<Op> {
    Some(match op {
        Op::CreateTable { table, .. } => Op::DropTable { table },
        Op::AddColumn { table, column, .. } => Op::RemoveColumn { table, column, what: "column" },
        Op::AddIndex { .. } => Op::DropIndex { concurrently: false },
        Op::RenameColumn { table, from, to } => Op::RenameColumn { table, from: to, to: from },
        Op::RenameTable { from, to } => Op::RenameTable { from: to, to: from },
        _ => return None,
    })
}
