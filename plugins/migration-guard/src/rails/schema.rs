//! `db/schema.rb`, as Rails dumps it: `create_table` blocks with typed
//! columns (`limit:`, `precision:`, `scale:`, `null: false`) and check
//! constraints (`validate: false` when not validated).

use super::options::*;
use crate::ops::table_name;
use crate::schema::{Schema, not_null_columns_of};
use lib_ruby_parser::{Node, Parser, ParserOptions};

pub fn read(source: &str, src: &str) -> Schema {
    let mut s = Schema { source: source.to_string(), ..Schema::default() };
    let parsed = Parser::new(src.as_bytes().to_vec(), ParserOptions::default()).do_parse();
    if let Some(ast) = parsed.ast {
        walk(&ast, &mut s);
    }
    s
}

fn walk(node: &Node, s: &mut Schema) {
    match node {
        Node::Begin(b) => b.statements.iter().for_each(|n| walk(n, s)),
        Node::Block(b) => {
            let Node::Send(call) = &*b.call else { return };
            if call.method_name == "define" {
                let v = opt(&options(&call.args), "version").and_then(|n| match n {
                    Node::Int(i) => crate::schema::version_number(&i.value),
                    _ => None,
                });
                s.version = s.version.or(v);
            }
            if call.method_name == "create_table"
                && let Some(table) = call.args.first().and_then(name)
            {
                table_block(&table_name(&table), call, b.body.as_deref(), s);
            } else if let Some(body) = &b.body {
                walk(body, s);
            }
        }
        _ => {}
    }
}

fn table_block(
    table: &str,
    call: &lib_ruby_parser::nodes::Send,
    body: Option<&Node>,
    s: &mut Schema,
) {
    s.tables.insert(table.to_string());
    // The primary key Rails adds unless `id: false`.
    let id = options(&call.args);
    match opt(&id, "id") {
        Some(Node::False(_)) => {}
        Some(n) => s.column(table, "id", name(n).unwrap_or_else(|| "bigint".into()), true),
        None => s.column(table, "id", "bigint".into(), true),
    }
    let stmts: Vec<&Node> = match body {
        Some(Node::Begin(b)) => b.statements.iter().collect(),
        Some(n) => vec![n],
        None => Vec::new(),
    };
    for st in stmts {
        let Node::Send(c) = st else { continue };
        let opts = options(&c.args);
        let names: Vec<String> = c.args.iter().filter_map(name).collect();
        match c.method_name.as_str() {
            "index" | "foreign_key" | "timestamps" => {}
            "check_constraint" => {
                let validated = !is_false(opt(&opts, "validate"));
                for col in names.first().map(|e| not_null_columns_of(e)).unwrap_or_default() {
                    s.checks.insert((table.to_string(), col), validated);
                }
            }
            method => {
                let (ty, cols) = if method == "column" {
                    (names.get(1).cloned().unwrap_or_default(), &names[..names.len().min(1)])
                } else {
                    (method.to_string(), &names[..])
                };
                let ty = column_type(&ty, &opts);
                let not_null = is_false(opt(&opts, "null"));
                for col in cols {
                    s.column(table, col, ty.clone(), not_null);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_rb_gives_types_nullability_and_checks() {
        let src = r#"
ActiveRecord::Schema[7.1].define(version: 2024_05_01_000000) do
  enable_extension "plpgsql"
  create_table "users", force: :cascade do |t|
    t.string "email", limit: 50, null: false
    t.decimal "price", precision: 10, scale: 2
    t.text "bio"
    t.check_constraint "bio IS NOT NULL", name: "bio_present", validate: false
    t.index ["email"], name: "index_users_on_email", unique: true
  end
end
"#;
        let s = super::read("db/schema.rb", src);
        let k = |c: &str| ("users".to_string(), c.to_string());
        assert_eq!(s.columns.get(&k("email")).map(String::as_str), Some("varchar(50)"));
        assert_eq!(s.columns.get(&k("price")).map(String::as_str), Some("numeric(10,2)"));
        assert!(s.not_null.contains(&k("email")) && !s.not_null.contains(&k("bio")));
        assert_eq!(s.checks.get(&k("bio")), Some(&false));
        assert!(s.tables.contains("users"));
    }
}
