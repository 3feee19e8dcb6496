//! The deploy file `bluegreen init` writes: YAML by hand, so that every
//! field carries a comment saying what it does and where its value came
//! from, plus the mapping the text must parse back to (init checks the
//! round trip before writing, so a quoting slip cannot reach the file).
//! Text from the app's files (a Procfile line, a manifest's names) may hold
//! any character: YAML allows no control characters, even in comments, and
//! reads NEL and U+2028/9 as line breaks, so those are always written as
//! escapes, in a double-quoted scalar ([`quoted`]) or in a comment.

use serde_yaml::{Mapping, Value};

/// One field init set, for the summary and `--json`.
pub struct Field {
    pub field: String,
    pub value: serde_json::Value,
    pub from: String,
}

#[derive(Default)]
pub struct Doc {
    pub text: String,
    pub expect: Mapping,
    pub fields: Vec<Field>,
    /// The open section (`migrate`, `plugins`) that `sub` writes into.
    section: Option<(String, Mapping)>,
}

const WIDTH: usize = 78;

impl Doc {
    /// `text` as `#` lines at `indent`, wrapped; `\n` starts a new line.
    pub fn comment(&mut self, indent: usize, text: &str) {
        let pad = " ".repeat(indent);
        let text: String = text
            .chars()
            .map(|c| if c == '\n' { c.to_string() } else { escaped(c) })
            .collect();
        for para in text.split('\n') {
            let mut line = String::new();
            // Two leading spaces keep a quoted line (a Procfile's) as it is.
            if para.starts_with("  ") {
                self.text
                    .push_str(&format!("{pad}#   {}\n", para.trim_start()));
                continue;
            }
            for word in para.split_whitespace() {
                if !line.is_empty() && indent + 2 + line.len() + 1 + word.len() > WIDTH {
                    self.text.push_str(&format!("{pad}# {line}\n"));
                    line.clear();
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
            self.text
                .push_str(&format!("{pad}# {}\n", line).replace("# \n", "#\n"));
        }
    }

    pub fn blank(&mut self) {
        self.end_section();
        self.text.push('\n');
    }

    /// A top-level `key: value`, its comment first.
    pub fn top(&mut self, key: &str, comment: &str, value: Value, from: &str) {
        self.end_section();
        self.comment(0, comment);
        self.text.push_str(&format!("{key}: {}\n", flow(&value)));
        self.record(key.to_string(), &value, from);
        self.expect.insert(key.into(), value);
    }

    /// Opens `key:` for nested fields.
    pub fn section(&mut self, key: &str) {
        self.end_section();
        self.text.push_str(&format!("{key}:\n"));
        self.section = Some((key.to_string(), Mapping::new()));
    }

    /// `  key: value` in the open section.
    pub fn sub(&mut self, key: &str, comment: &str, value: Value, from: &str) {
        self.comment(2, comment);
        self.text.push_str(&format!("  {key}: {}\n", flow(&value)));
        let (name, map) = self.section.as_mut().expect("an open section");
        let field = format!("{name}.{key}");
        map.insert(key.into(), value.clone());
        self.record(field, &value, from);
    }

    fn record(&mut self, field: String, value: &Value, from: &str) {
        self.fields.push(Field {
            field,
            value: serde_json::to_value(value).unwrap_or_default(),
            from: from.to_string(),
        });
    }

    fn end_section(&mut self) {
        if let Some((name, map)) = self.section.take() {
            self.expect.insert(name.into(), Value::Mapping(map));
        }
    }

    /// The text and the mapping it must parse to.
    pub fn finish(mut self) -> Doc {
        self.end_section();
        self
    }
}

/// A value in YAML flow style (`[a, b]`, `{ k: v }`), strings plain when
/// that reads back as the same string, else double-quoted.
pub fn flow(v: &Value) -> String {
    match v {
        Value::String(s) => scalar(s),
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Mapping(m) => {
            let pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", flow(k), flow(v)))
                .collect();
            format!("{{ {} }}", pairs.join(", "))
        }
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn scalar(s: &str) -> String {
    let reserved = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    ];
    let plain = !s.is_empty()
        && s.trim() == s
        && !s.starts_with(['-', ':', '?', '&', '*', '!', '|', '>', '%', '@', '`', '#'])
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && !s.contains(['{', '}', '[', ']', ',', '"', '\'', '\n', '\t', '\\'])
        && !reserved.contains(&s.to_lowercase().as_str())
        && s.chars().all(|c| !needs_escape(c))
        // Numbers, `.inf`, `0x1F` and the like read back as other types.
        && serde_yaml::from_str::<Vec<Value>>(&format!("[{s}]")).ok()
            == Some(vec![Value::String(s.into())]);
    if plain { s.to_string() } else { quoted(s) }
}

/// `s` as a YAML double-quoted scalar that reads back as `s` exactly.
/// (Not a JSON string: JSON leaves DEL, the C1 controls and U+2028/9 raw,
/// which YAML refuses or folds into a space.)
pub fn quoted(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push_str(&escaped(c)),
        }
    }
    out.push('"');
    out
}

/// Text from the app's files as a comment quotes it: as it is, or
/// double-quoted with escapes when it holds what YAML cannot carry raw.
pub fn shown(s: &str) -> String {
    if s.chars().any(needs_escape) {
        quoted(s)
    } else {
        s.to_string()
    }
}

/// What YAML cannot carry raw, anywhere: control characters (tab aside),
/// the characters it reads as line breaks, the BOM and the non-characters.
fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
        )
}

/// `c`, or its YAML escape (`\n`, `\e`, `\u0085`) where it needs one.
fn escaped(c: char) -> String {
    match c {
        c if !needs_escape(c) => c.to_string(),
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\x1b' => "\\e".into(),
        '\x07' => "\\a".into(),
        c => format!("\\u{:04X}", u32::from(c)),
    }
}

/// `{k: v, ...}` from pairs, in order.
pub fn map(pairs: &[(&str, Value)]) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(Value::String((*k).into()), v.clone());
    }
    Value::Mapping(m)
}

pub fn s(text: &str) -> Value {
    Value::String(text.into())
}

pub fn list(items: &[&str]) -> Value {
    Value::Sequence(items.iter().map(|i| s(i)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_read_back_as_themselves() {
        for text in [
            "exec puma -b tcp://127.0.0.1:$PORT -t 4:16 config.ru",
            "bin/rails db:migrate",
            "1",
            "5s",
            "yes",
            "a: b",
            "x #y",
            "[x]",
            "-x",
            "\"q\" and 'q'",
            "tab\there",
            "",
        ] {
            let yaml = format!("k: {}\n", flow(&s(text)));
            let back: Mapping = serde_yaml::from_str(&yaml).unwrap();
            assert_eq!(back.get("k"), Some(&s(text)), "{yaml}");
        }
        assert_eq!(flow(&s("bin/rails db:migrate")), "bin/rails db:migrate");
    }

    /// Defect 7 of «12 · Hardening, round two»: init wrote YAML it could
    /// not read back when a value held control characters.
    #[test]
    fn defect_7_init_writes_control_characters_as_yaml_escapes() {
        let hostile = "run \x07\x1b[31m\t\"q\" a: b #c \\ \u{7f}\u{85}\u{9b}\u{2028}\r\n.";
        let yaml = format!("k: {}\n", flow(&s(hostile)));
        assert!(!yaml.trim_end().chars().any(needs_escape), "{yaml:?}");
        let back: Mapping = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back.get("k"), Some(&s(hostile)), "{yaml}");

        let mut d = Doc::default();
        d.comment(0, &format!("quoted:\n  web: {}", shown(hostile)));
        let back: Option<Mapping> = serde_yaml::from_str(&d.text).unwrap();
        assert_eq!(back, None, "only comments: {:?}", d.text);
        assert!(d.text.contains("\\e[31m"), "{}", d.text);
    }

    #[test]
    fn comments_wrap_at_the_width() {
        let mut d = Doc::default();
        d.comment(2, &"word ".repeat(40));
        assert!(
            d.text
                .lines()
                .all(|l| l.len() <= WIDTH && l.starts_with("  # "))
        );
    }
}
