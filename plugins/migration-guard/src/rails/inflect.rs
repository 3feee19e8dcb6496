//! A model's table name as Active Record derives it: the class name
//! underscored, its last word pluralized with Rails' default inflections
//! (`UnavailableDomain` → `unavailable_domains`, `Person` → `people`,
//! `Category` → `categories`). An app's own inflections are not known; a
//! model whose table is named in the file (`self.table_name = "..."`) uses
//! that name instead.

/// Words whose plural is the word itself (Rails' `uncountable` list).
const UNCOUNTABLE: &[&str] = &[
    "equipment",
    "information",
    "rice",
    "money",
    "species",
    "series",
    "fish",
    "sheep",
    "jeans",
    "police",
];

/// Rails' irregular plurals.
const IRREGULAR: &[(&str, &str)] = &[
    ("person", "people"),
    ("man", "men"),
    ("child", "children"),
    ("sex", "sexes"),
    ("move", "moves"),
    ("zombie", "zombies"),
];

/// `UnavailableDomain` → `unavailable_domain`; `HTTPLog` → `http_log`;
/// `Admin::User` → `user` (a module does not prefix the table by default).
pub fn underscore(class: &str) -> String {
    let class = class.rsplit("::").next().unwrap_or(class);
    let chars: Vec<char> = class.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The plural of a lower-case word by Rails' default rules (the last rule
/// that matches wins there; here the same rules are tried most specific
/// first).
pub fn pluralize(word: &str) -> String {
    if UNCOUNTABLE.contains(&word) {
        return word.to_string();
    }
    // Rails matches an irregular word at the end (`salesperson`).
    if let Some((s, p)) = IRREGULAR.iter().find(|(s, _)| word.ends_with(s)) {
        return format!("{}{p}", &word[..word.len() - s.len()]);
    }
    if IRREGULAR.iter().any(|(_, p)| word.ends_with(p)) {
        return word.to_string();
    }
    let ends = |s: &str| word.ends_with(s);
    let stem = |n: usize| &word[..word.len() - n];
    let before = |n: usize| word[..word.len() - n].chars().next_back();
    let vowel = |c: Option<char>| c.is_some_and(|c| "aeiou".contains(c));
    if ends("quiz") {
        return format!("{word}zes");
    }
    if word == "ox" {
        return "oxen".into();
    }
    if ends("mouse") || ends("louse") {
        return format!("{}ice", stem(4));
    }
    for x in ["matrix", "vertex", "index"] {
        if ends(x) {
            return format!("{}ices", stem(2));
        }
    }
    if ends("alias") || ends("status") || ends("bus") {
        return format!("{word}es");
    }
    if ends("octopus") || ends("virus") {
        return format!("{}i", stem(2));
    }
    if ends("axis") || ends("testis") {
        return format!("{}es", stem(2));
    }
    if ends("sis") {
        return format!("{}ses", stem(3));
    }
    if ends("buffalo") || ends("tomato") {
        return format!("{word}es");
    }
    if ends("ium") || ends("tum") {
        return format!("{}a", stem(2));
    }
    if ends("hive") {
        return format!("{word}s");
    }
    if ends("fe") && !ends("ffe") {
        return format!("{}ves", stem(2));
    }
    if (ends("lf") || ends("rf")) && !ends("ff") {
        return format!("{}ves", stem(1));
    }
    if ends("x") || ends("ch") || ends("ss") || ends("sh") {
        return format!("{word}es");
    }
    if ends("quy") || (ends("y") && !vowel(before(1)) && before(1) != Some('y')) {
        return format!("{}ies", stem(1));
    }
    if ends("s") {
        return word.to_string();
    }
    format!("{word}s")
}

/// `UnavailableDomain` → `unavailable_domains`: only the last word is
/// pluralized, as Rails' `tableize` does.
pub fn tableize(class: &str) -> String {
    let under = underscore(class);
    match under.rsplit_once('_') {
        Some((head, last)) => format!("{head}_{}", pluralize(last)),
        None => pluralize(&under),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_become_rails_table_names() {
        for (class, table) in [
            ("UnavailableDomain", "unavailable_domains"),
            ("User", "users"),
            ("Person", "people"),
            ("SalesPerson", "sales_people"),
            ("Category", "categories"),
            ("Address", "addresses"),
            ("Status", "statuses"),
            ("Company", "companies"),
            ("Day", "days"),
            ("Box", "boxes"),
            ("Branch", "branches"),
            ("Wife", "wives"),
            ("Half", "halves"),
            ("Medium", "media"),
            ("Analysis", "analyses"),
            ("Equipment", "equipment"),
            ("Admin::AuditLog", "audit_logs"),
            ("HTTPRequest", "http_requests"),
            ("OAuthToken", "o_auth_tokens"),
            ("Index", "indices"),
            ("Quiz", "quizzes"),
            ("Series", "series"),
            ("News", "news"),
            ("Salesperson", "salespeople"),
            ("Child", "children"),
        ] {
            assert_eq!(tableize(class), table, "{class}");
        }
    }
}
