//! Column types, as SQL, Rails and the schema files write them, brought to
//! one form so a type change can be judged: the changes a database makes
//! without rewriting the table (strong_migrations' list of safe type
//! changes, MySQL's in-place VARCHAR extension) against the rest.

/// `character varying(100)` → `varchar` [100]; `numeric(10, 2)` →
/// `numeric` [10, 2]. Unknown names pass through lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ty {
    pub base: String,
    pub args: Vec<u32>,
}

pub fn normalize(raw: &str) -> Ty {
    let raw = raw.trim().to_ascii_lowercase();
    // An array (`text[]`, Rails' `array: true`) is its element type's array.
    if let Some(element) = raw.strip_suffix("[]") {
        let Ty { base, args } = normalize(element);
        return Ty { base: format!("{base}[]"), args };
    }
    let (name, args) = match raw.split_once('(') {
        Some((n, rest)) => {
            let inner = rest.split(')').next().unwrap_or_default();
            let args = inner.split(',').filter_map(|a| a.trim().parse().ok()).collect();
            // `timestamp(6) with time zone`: the words after the arguments.
            let tail = rest.split_once(')').map(|(_, t)| t).unwrap_or_default();
            (format!("{} {}", n.trim(), tail.trim()), args)
        }
        None => (raw.clone(), Vec::new()),
    };
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let base = match name.as_str() {
        "character varying" | "varchar" | "string" | "nvarchar" => "varchar",
        "character" | "char" | "bpchar" => "char",
        "int" | "int4" | "integer" => "integer",
        "int8" | "bigint" => "bigint",
        "int2" | "smallint" => "smallint",
        "decimal" | "numeric" => "numeric",
        "float8" | "double precision" | "float" | "double" => "double",
        "float4" | "real" => "real",
        "bool" | "boolean" | "tinyint(1)" => "boolean",
        "timestamp" | "timestamp without time zone" | "datetime" => "timestamp",
        "timestamptz" | "timestamp with time zone" => "timestamptz",
        "time without time zone" | "time" => "time",
        "bytea" | "binary" | "blob" => "bytea",
        "bit varying" | "varbit" => "varbit",
        "serial" | "serial4" => "serial",
        "bigserial" | "serial8" => "bigserial",
        "smallserial" | "serial2" => "smallserial",
        other => other,
    };
    Ty { base: base.to_string(), args }
}

/// A Rails type symbol with its `limit:`, `precision:` and `scale:` options,
/// as the database would declare it (Postgres names).
pub fn rails(ty: &str, limit: Option<u32>, precision: Option<u32>, scale: Option<u32>) -> String {
    let args = |v: &[Option<u32>]| {
        let v: Vec<String> = v.iter().flatten().map(u32::to_string).collect();
        if v.is_empty() { String::new() } else { format!("({})", v.join(",")) }
    };
    match ty {
        "string" => format!("varchar{}", args(&[limit])),
        "integer" if limit == Some(8) => "bigint".into(),
        "integer" if limit == Some(2) => "smallint".into(),
        "decimal" | "numeric" => format!("numeric{}", args(&[precision, scale])),
        "datetime" | "timestamp" => format!("timestamp{}", args(&[precision])),
        "timestamptz" => format!("timestamptz{}", args(&[precision])),
        "binary" => "bytea".into(),
        "float" => "double".into(),
        "primary_key" => "serial".into(),
        other => other.to_string(),
    }
}

pub fn is_auto_increment(ty: &Ty) -> bool {
    matches!(ty.base.as_str(), "serial" | "bigserial" | "smallserial")
}

/// Why changing `from` to `to` needs no table rewrite, or `None` when it
/// does (or may). `mysql`: InnoDB's rules instead of Postgres's.
pub fn widening(from: &Ty, to: &Ty, mysql: bool) -> Option<&'static str> {
    let (f, t) = (from.base.as_str(), to.base.as_str());
    let grows = |i: usize| match (from.args.get(i), to.args.get(i)) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(a), Some(b)) => b >= a,
    };
    if from == to {
        return Some("the type is unchanged");
    }
    if mysql {
        // InnoDB extends a VARCHAR in place while its length prefix keeps its
        // size: 1 byte up to 255 bytes, 2 above (utf8mb4: 4 bytes a
        // character, so 63 characters).
        return match (f, t, from.args.first(), to.args.first()) {
            ("varchar", "varchar", Some(&a), Some(&b)) if b >= a && (b <= 63) == (a <= 63) => {
                Some("a VARCHAR extended within the same length-prefix size is changed in place")
            }
            _ => None,
        };
    }
    match (f, t) {
        ("varchar", "varchar") if grows(0) => {
            Some("a longer (or unlimited) varchar needs no rewrite")
        }
        ("varchar", "text") | ("text", "varchar") if to.args.is_empty() => {
            Some("varchar and text share a representation")
        }
        ("numeric", "numeric")
            if grows(0) && (to.args.len() < 2 || from.args.get(1) == to.args.get(1)) =>
        {
            Some("a numeric with more precision and the same scale needs no rewrite")
        }
        ("timestamp", "timestamp")
        | ("timestamptz", "timestamptz")
        | ("interval", "interval")
        | ("time", "time")
            if grows(0) =>
        {
            Some("more fractional-second precision needs no rewrite")
        }
        ("varbit", "varbit") if grows(0) => Some("a longer bit varying needs no rewrite"),
        ("cidr", "inet") => Some("every cidr is an inet"),
        ("xml", "text") => Some("xml is stored as text"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(a: &str, b: &str) -> bool {
        widening(&normalize(a), &normalize(b), false).is_some()
    }

    #[test]
    fn postgres_widening_and_rewrites() {
        assert!(w("character varying(50)", "varchar(100)"));
        assert!(w("character varying(50)", "character varying"));
        assert!(w("varchar(255)", "text"));
        assert!(w("numeric(10,2)", "numeric(12,2)"));
        assert!(w("cidr", "inet"));
        assert!(w("timestamp(3) without time zone", "timestamp(6)"));
        assert!(!w("varchar(100)", "varchar(50)"), "shrinking checks every row");
        assert!(!w("text", "varchar(20)"), "a limit checks every row");
        assert!(!w("numeric(10,2)", "numeric(12,4)"), "a new scale rewrites");
        assert!(!w("integer", "bigint"), "integer to bigint rewrites");
        assert!(!w("timestamp", "timestamptz"), "depends on the session time zone");
    }

    #[test]
    fn mysql_varchar_extends_in_place_within_its_length_prefix() {
        let m = |a: &str, b: &str| widening(&normalize(a), &normalize(b), true).is_some();
        assert!(m("varchar(20)", "varchar(60)"));
        assert!(m("varchar(100)", "varchar(255)"));
        assert!(!m("varchar(60)", "varchar(100)"), "1-byte to 2-byte prefix copies");
        assert!(!m("varchar(255)", "text"));
        assert!(m("int", "integer"));
    }

    #[test]
    fn an_array_is_not_its_element_type() {
        assert_eq!(normalize("character varying[]"), normalize("varchar[]"));
        assert!(w("varchar[]", "varchar[]"));
        assert!(!w("varchar", "varchar[]"), "to an array rewrites");
        assert!(!w("text[]", "text"));
    }

    #[test]
    fn rails_types_become_database_types() {
        assert_eq!(normalize(&rails("string", Some(80), None, None)), normalize("varchar(80)"));
        assert_eq!(normalize(&rails("decimal", None, Some(8), Some(2))), normalize("numeric(8,2)"));
        assert_eq!(normalize(&rails("datetime", None, None, None)), normalize("timestamp"));
    }
}
