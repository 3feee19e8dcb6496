//! Where a field is written in a deploy file, so an error from the checks
//! after parsing (a bad value, a rule between fields) names its line and
//! column as the parser's own errors do. The YAML parser keeps no positions
//! for values once parsed; the field's dotted path is found key by key in
//! the text instead, each key after the one before it (block or flow style,
//! quoted or not, never inside a comment). A field not written (a default)
//! has no place, and the error names the file only.

/// 1-based line and column of the last key of `field` (`migrate.lock_timeout`).
/// A list item (`services[1].type`) is its key's after as many earlier
/// items' same key.
pub fn locate(text: &str, field: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    let mut at = None;
    let mut skip = 0;
    for segment in field.split('.') {
        let (key, index) = match segment.split_once('[') {
            Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        for _ in 0..=skip {
            let i = find_key(&text[from..], key)?;
            at = Some(from + i);
            from += i + key.len();
        }
        skip = index.unwrap_or(0);
    }
    let at = at?;
    let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
    let line = text[..at].matches('\n').count() + 1;
    Some((line, text[line_start..at].chars().count() + 1))
}

/// Where `key:` (or `"key":`, `'key':`) starts in `s`.
fn find_key(s: &str, key: &str) -> Option<usize> {
    let mut start = 0;
    while let Some(i) = s[start..].find(key) {
        let at = start + i;
        start = at + key.len();
        let line_start = s[..at].rfind('\n').map_or(0, |n| n + 1);
        if s[line_start..at].contains('#') {
            continue;
        }
        let (open, close) = match s[..at].chars().last() {
            Some(q @ ('"' | '\'')) => (Some(q), Some(q)),
            _ => (None, None),
        };
        let before = s[..at - open.map_or(0, char::len_utf8)].chars().last();
        if !before.is_none_or(|c| c.is_whitespace() || matches!(c, '{' | ',' | '-')) {
            continue;
        }
        let mut rest = &s[at + key.len()..];
        if let Some(q) = close {
            let Some(r) = rest.strip_prefix(q) else {
                continue;
            };
            rest = r;
        }
        if rest.trim_start_matches(' ').starts_with(':') {
            return Some(at - open.map_or(0, char::len_utf8));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::locate;

    #[test]
    fn a_field_is_found_key_by_key_in_block_and_flow_style() {
        let text = "app: shop\n# migrate: {lock_timeout: 1s}\nmigrate:\n  command: x\n  lock_timeout: 0s\n\
                    health: { path: /up, timeout: 0s }\n\"route\": Bad\n";
        assert_eq!(locate(text, "migrate.lock_timeout"), Some((5, 3)));
        assert_eq!(locate(text, "health.timeout"), Some((6, 22)));
        assert_eq!(locate(text, "route"), Some((7, 1)));
        assert_eq!(locate(text, "app"), Some((1, 1)));
        // Not written: no place. And the inputs that would fool a plain
        // search: a key inside a comment, one that ends another's name
        // (`timeout` in `lock_timeout`), one that is a value.
        assert_eq!(locate(text, "analysis.duration"), None);
        assert_eq!(locate("x: timeout\ntimeout: 1\n", "timeout"), Some((2, 1)));
        assert_eq!(locate("lock_timeout: 1\n", "timeout"), None);
        let list = "services:\n  - { name: a, type: postgres }\n  - { name: b, type: mysql }\n";
        assert_eq!(locate(list, "services[1].type"), Some((3, 16)));
        assert_eq!(locate(list, "services[0].type"), Some((2, 16)));
    }
}
