//! The constructs real applications' migrations use that the guard once
//! read past, each written fresh with its verdict (the labelled corpus in
//! `tests/fixtures/migrations` runs them through the host as well).

use super::*;
use rules::Level;

fn options(settings: &[(&str, &str)]) -> Options {
    let d = Deploy {
        id: String::new(),
        app: String::new(),
        release: String::new(),
        previous_release: None,
        route_url: String::new(),
        settings: settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    Options::from(&d).unwrap()
}

/// Files of one batch (`post_` names are in the contract phase), judged
/// with `settings` and a lock timeout, as a deploy runs them.
fn judge_batch(files: &[(&str, &str)], settings: &[(&str, &str)]) -> Vec<rules::Finding> {
    let mut all = vec![("bluegreen.lock-timeout", "5s")];
    all.extend_from_slice(settings);
    let pending: Vec<Migration> = files
        .iter()
        .enumerate()
        .map(|(i, (path, contents))| Migration {
            path: format!("db/migrate/{path}"),
            version: (i + 1).to_string(),
            phase: if path.starts_with("post_") { "contract" } else { "expand" }.into(),
            contents: contents.to_string(),
        })
        .collect();
    judge(&pending, &options(&all), None)
}

fn level_of(found: &[rules::Finding], level: Level) -> Vec<&'static str> {
    found.iter().filter(|f| f.level == level).map(|f| f.rule).collect()
}

#[track_caller]
fn blocks(files: &[(&str, &str)], rule: &str) {
    blocks_with(files, &[], rule)
}

#[track_caller]
fn blocks_with(files: &[(&str, &str)], settings: &[(&str, &str)], rule: &str) {
    let found = judge_batch(files, settings);
    assert!(level_of(&found, Level::Block).contains(&rule), "expected block {rule}: {found:#?}");
}

#[track_caller]
fn warns_with(files: &[(&str, &str)], settings: &[(&str, &str)], rule: &str) {
    let found = judge_batch(files, settings);
    assert!(level_of(&found, Level::Block).is_empty(), "expected no block: {found:#?}");
    assert!(level_of(&found, Level::Warn).contains(&rule), "expected warn {rule}: {found:#?}");
}

#[track_caller]
fn warns(files: &[(&str, &str)], rule: &str) {
    warns_with(files, &[], rule)
}

#[track_caller]
fn safe(files: &[(&str, &str)]) {
    let found = judge_batch(files, &[]);
    let bad: Vec<_> = found.iter().filter(|f| f.level != Level::Info).collect();
    assert!(bad.is_empty(), "expected safe: {bad:#?}");
}

fn rails(body: &str) -> String {
    format!("class Step < ActiveRecord::Migration[7.1]\n{body}\nend\n")
}

#[test]
fn begin_rescue_ensure_bodies_are_read() {
    let src = rails(
        "  def up
    begin
      remove_column :invoices, :legacy_ref
    rescue ActiveRecord::StatementInvalid => e
      say \"skipped: #{e.message}\"
    ensure
      rename_table :ledger_lines, :ledger_entries
    end
  end",
    );
    let found = judge_batch(&[("1_a.rb", &src)], &[]);
    let blocked = level_of(&found, Level::Block);
    assert!(blocked.contains(&"remove-column") && blocked.contains(&"rename-table"), "{found:#?}");
    // A `def` body with its own `rescue`, and the rescue branch itself.
    blocks(
        &[(
            "1_b.rb",
            &rails(
                "  def up
    add_column :carts, :token, :string
  rescue StandardError
    execute \"DELETE FROM carts\"
  end",
            ),
        )],
        "delete-without-where",
    );
    // `else` runs when nothing was raised.
    blocks(
        &[(
            "1_c.rb",
            &rails(
                "  def change
    begin
      add_column :carts, :token, :string
    rescue ArgumentError
      nil
    else
      drop_table :cart_snapshots
    end
  end",
            ),
        )],
        "drop-table",
    );
}

#[test]
fn common_sql_entry_points_are_read() {
    for call in [
        "connection.execute(\"DELETE FROM audit_trails\")",
        "ActiveRecord::Base.connection.execute(\"DELETE FROM audit_trails\")",
        "ActiveRecord::Base.lease_connection.exec_update(\"DELETE FROM audit_trails\")",
        "connection.raw_connection.exec(\"DELETE FROM audit_trails\")",
        "DB.exec(\"DELETE FROM audit_trails\")",
        "DB.run \"DELETE FROM audit_trails\"",
        "self.execute(\"DELETE FROM audit_trails\")",
    ] {
        blocks(
            &[("2_a.rb", &rails(&format!("  def up\n    {call}\n  end")))],
            "delete-without-where",
        );
    }
    // A connection held in a variable or a block parameter.
    blocks(
        &[(
            "2_b.rb",
            &rails(
                "  def up
    conn = ActiveRecord::Base.connection
    conn.execute(\"TRUNCATE shipping_quotes\")
  end",
            ),
        )],
        "truncate",
    );
    blocks(
        &[(
            "2_c.rb",
            &rails(
                "  def up
    ActiveRecord::Base.connection_pool.with_connection do |c|
      c.execute(\"ALTER TABLE coupons RENAME COLUMN code TO coupon_code\")
    end
  end",
            ),
        )],
        "rename-column",
    );
}

#[test]
fn the_settings_name_an_apps_own_entry_points() {
    let src = rails(
        "  def up
    Warehouse.sql(\"DROP TABLE stock_snapshots\")
  end",
    );
    // Unnamed: reported as unchecked, never passed.
    warns(&[("3_a.rb", &src)], "unparsed");
    // Named (as the deploy file or policy writes it): its SQL is read.
    blocks_with(&[("3_a.rb", &src)], &[("sql_methods", "Warehouse.sql")], "drop-table");
    blocks_with(&[("3_a.rb", &src)], &[("sql_methods", "[DB.exec, Warehouse.sql]")], "drop-table");
    // A receiver-less helper the app mixes in.
    let bare = rails("  def up\n    run_sql \"DELETE FROM stock_snapshots\"\n  end");
    warns(&[("3_b.rb", &bare)], "unparsed");
    blocks_with(&[("3_b.rb", &bare)], &[("sql_methods", "run_sql")], "delete-without-where");
    // A helper module from lib/ stays unknown: `?`, a warning.
    warns(
        &[("3_c.rb", &rails("  def up\n    SchemaHelpers.retire_table(:stock_snapshots)\n  end"))],
        "unparsed",
    );
    // A bad entry is a settings error.
    let d = Deploy {
        id: String::new(),
        app: String::new(),
        release: String::new(),
        previous_release: None,
        route_url: String::new(),
        settings: vec![("sql_methods".into(), "DB.exec(x)".into())],
    };
    assert!(Options::from(&d).is_err());
}

#[test]
fn heredocs_with_a_method_are_literals() {
    blocks(
        &[(
            "4_a.rb",
            &rails(
                "  def up
    execute <<~SQL.squish
      ALTER TABLE parcels DROP COLUMN weight_grams
    SQL
  end",
            ),
        )],
        "remove-column",
    );
    safe(&[(
        "4_b.rb",
        &rails(
            "  def up
    execute(<<~SQL.strip)
      UPDATE parcels SET carrier = 'post' WHERE carrier IS NULL AND id < 1000
    SQL
  end",
        ),
    )]);
    // A local holding the SQL, and a constant with `.squish`.
    blocks(
        &[(
            "4_c.rb",
            &rails(
                "  PURGE = <<~SQL.squish.freeze
    DELETE FROM parcel_events
  SQL

  def up
    sql = <<~SQL.strip
      TRUNCATE parcel_labels
    SQL
    execute sql
    execute PURGE
  end",
            ),
        )],
        "truncate",
    );
}

#[test]
fn an_interpolated_name_does_not_hide_an_index_build() {
    let src = rails(
        "  def up
    %w[region carrier].each do |column|
      execute \"CREATE INDEX index_parcels_on_#{column} ON parcels (#{column})\"
    end
    execute \"CREATE INDEX #{index_name} ON #{table} (#{columns.join(', ')})\"
  end",
    );
    blocks(&[("5_a.rb", &src)], "add-index-non-concurrently");
    // Concurrently, outside a transaction: the shape is safe.
    safe(&[(
        "5_b.rb",
        &rails(
            "  disable_ddl_transaction!
  def up
    execute \"CREATE INDEX CONCURRENTLY #{index_name} ON parcels (#{column})\"
  end",
        ),
    )]);
    // What the interpolation may turn into a clause stays dynamic.
    warns(
        &[(
            "5_c.rb",
            &rails("  def up\n    execute \"UPDATE parcels SET state = 'lost' #{scope}\"\n  end"),
        )],
        "dynamic-sql",
    );
}

#[test]
fn not_null_on_a_column_added_in_the_batch_without_default() {
    blocks(
        &[
            ("6_a_add.rb", &rails("  def change\n    add_column :tickets, :queue, :string\n  end")),
            (
                "6_b_require.rb",
                &rails(
                    "  def change\n    change_column_null :tickets, :queue, false, 'main'\n  end",
                ),
            ),
        ],
        "add-column-not-null-no-default",
    );
    blocks(
        &[(
            "6_c.sql",
            "ALTER TABLE tickets ADD COLUMN queue text;\nUPDATE tickets SET queue = 'main' WHERE queue IS NULL;\nALTER TABLE tickets ALTER COLUMN queue SET NOT NULL;\n",
        )],
        "add-column-not-null-no-default",
    );
    // With a default the old release's inserts get it.
    safe(&[
        ("6_d_add.rb", &rails("  def change\n    add_column :tickets, :queue, :string\n  end")),
        (
            "6_e_default.rb",
            &rails(
                "  def change\n    change_column_default :tickets, :queue, from: nil, to: 'main'\n    change_column_null :tickets, :queue, false, 'main'\n  end",
            ),
        ),
    ]);
    // A table created in the batch has no old inserts.
    safe(&[
        ("6_f_create.rb", &rails("  def change\n    create_table :queues\n  end")),
        (
            "6_g.rb",
            &rails(
                "  def change\n    add_column :queues, :name, :string\n    change_column_null :queues, :name, false\n  end",
            ),
        ),
    ]);
}

#[test]
fn model_names_use_rails_inflection() {
    // `UnavailableDomain` is `unavailable_domains`, created in this batch.
    safe(&[
        ("7_a.rb", &rails("  def change\n    create_table :unavailable_domains\n  end")),
        ("7_b.rb", &rails("  def up\n    UnavailableDomain.delete_all\n  end")),
    ]);
    // `Person` is `people`, which exists.
    let found = judge_batch(
        &[("7_c.rb", &rails("  def up\n    Person.update_all(vip: false)\n  end"))],
        &[],
    );
    let f = found.iter().find(|f| f.rule == "update-without-where").unwrap();
    assert!(f.message.contains("`people`") && f.level == Level::Block, "{f:#?}");
    // A model that names its table.
    safe(&[
        ("7_d.rb", &rails("  def change\n    create_table :legacy_imports\n  end")),
        (
            "7_e.rb",
            "class Purge < ActiveRecord::Migration[7.1]\n  class Import < ActiveRecord::Base\n    self.table_name = \"legacy_imports\"\n  end\n\n  def up\n    Import.unscoped.delete_all\n  end\nend\n",
        ),
    ]);
}

#[test]
fn mysql_copy_and_shared_locks_block() {
    let mysql = [("dialect", "mysql")];
    for sql in [
        "ALTER TABLE orders ADD COLUMN note varchar(40), ALGORITHM=COPY;",
        "ALTER TABLE orders ADD COLUMN note varchar(40), ALGORITHM = COPY, LOCK = SHARED;",
        "ALTER TABLE orders LOCK=SHARED, DROP INDEX idx_orders_note;",
        "CREATE INDEX idx_orders_note ON orders (note) ALGORITHM=COPY;",
        "CREATE INDEX idx_orders_note ON orders (note) LOCK = SHARED;",
        "DROP INDEX idx_orders_note ON orders ALGORITHM=COPY;",
    ] {
        blocks_with(&[("8_a.sql", sql)], &mysql, "mysql-blocks-writes");
    }
    safe_mysql("CREATE INDEX idx_orders_note ON orders (note) ALGORITHM=INPLACE LOCK=NONE;");
}

fn safe_mysql(sql: &str) {
    let found = judge_batch(&[("8_b.sql", sql)], &[("dialect", "mysql")]);
    let bad: Vec<_> = found.iter().filter(|f| f.level != Level::Info).collect();
    assert!(bad.is_empty(), "{sql}: {bad:#?}");
}

#[test]
fn a_where_true_for_every_row_is_no_where() {
    blocks(&[("9_a.sql", "DELETE FROM carts WHERE true;")], "delete-without-where");
    blocks(&[("9_b.sql", "UPDATE carts SET archived = false WHERE 1=1;")], "update-without-where");
    blocks(&[("9_c.sql", "DELETE FROM carts WHERE 1 = 1 OR id > 10;")], "delete-without-where");
    safe(&[("9_d.sql", "DELETE FROM carts WHERE updated_at < now() - interval '90 days';")]);
}

#[test]
fn down_and_undo_files_and_sections_are_not_judged() {
    for name in ["000042_drop_carts.down.sql", "U42__drop_carts.sql", "U1.2__undo.sql"] {
        safe(&[(name, "DROP TABLE carts;")]);
    }
    // A file that only looks like one is read.
    blocks(&[("Users__cleanup.sql", "DROP TABLE carts;")], "drop-table");
    for file in [
        "-- +goose Up\nCREATE TABLE carts_v2 (id bigint);\n-- +goose Down\nDROP TABLE carts;\n",
        "-- +goose Up\nCREATE TABLE carts_v2 (id bigint)\n-- +goose down\nDROP TABLE carts;\n",
        "-- migrate:up\nCREATE TABLE carts_v2 (id bigint);\n\n-- migrate:down\nDROP TABLE carts;\n",
        "-- +migrate Up\nCREATE TABLE carts_v2 (id bigint);\n-- +migrate Down\nDROP TABLE carts;\n",
    ] {
        safe(&[("10_sections.sql", file)]);
    }
}

#[test]
fn validate_then_set_not_null_across_two_migrations() {
    safe(&[
        (
            "11_a.rb",
            &rails(
                "  def change\n    add_check_constraint :invoices, \"issued_on IS NOT NULL\", name: \"invoices_issued_on_null\", validate: false\n  end",
            ),
        ),
        (
            "11_b.rb",
            &rails(
                "  def up\n    validate_check_constraint :invoices, name: \"invoices_issued_on_null\"\n    change_column_null :invoices, :issued_on, false\n    remove_check_constraint :invoices, name: \"invoices_issued_on_null\"\n  end",
            ),
        ),
    ]);
    // Without the validation the scan and the hazard remain.
    blocks(
        &[
            (
                "11_c.rb",
                &rails(
                    "  def change\n    add_check_constraint :invoices, \"issued_on IS NOT NULL\", name: \"invoices_issued_on_null\", validate: false\n  end",
                ),
            ),
            (
                "11_d.rb",
                &rails("  def up\n    change_column_null :invoices, :issued_on, false\n  end"),
            ),
        ],
        "set-not-null",
    );
}

#[test]
fn an_index_on_a_materialized_view_made_in_the_same_file() {
    safe(&[(
        "12_a.sql",
        "CREATE MATERIALIZED VIEW monthly_revenue AS SELECT date_trunc('month', paid_at) AS month, sum(amount) AS total FROM payments GROUP BY 1 WITH NO DATA;\nCREATE UNIQUE INDEX monthly_revenue_month ON monthly_revenue (month);\nREFRESH MATERIALIZED VIEW monthly_revenue;\n",
    )]);
    // An existing view still blocks.
    blocks(
        &[("12_b.sql", "CREATE UNIQUE INDEX monthly_revenue_month ON monthly_revenue (month);\n")],
        "add-index-non-concurrently",
    );
}

#[test]
fn a_batched_backfill_of_new_columns() {
    safe(&[
        ("13_a.rb", &rails("  def change\n    add_column :listings, :slug_v2, :string\n  end")),
        (
            "13_b.rb",
            &rails(
                "  disable_ddl_transaction!\n  def up\n    Listing.in_batches(of: 2_000) do |batch|\n      batch.update_all(slug_v2: nil)\n    end\n    Listing.unscoped.in_batches.update_all(slug_v2: 'x')\n  end",
            ),
        ),
    ]);
    // An old column, or one pass over every row, still blocks.
    blocks(
        &[
            ("13_c.rb", &rails("  def change\n    add_column :listings, :slug_v2, :string\n  end")),
            (
                "13_d.rb",
                &rails(
                    "  def up\n    Listing.in_batches.update_all(slug_v2: nil, title: '')\n  end",
                ),
            ),
        ],
        "update-without-where",
    );
    blocks(
        &[
            ("13_e.rb", &rails("  def change\n    add_column :listings, :slug_v2, :string\n  end")),
            ("13_f.rb", &rails("  def up\n    Listing.update_all(slug_v2: 'x')\n  end")),
        ],
        "update-without-where",
    );
}

#[test]
fn one_validated_check_covers_several_columns() {
    safe(&[
        (
            "14_a.sql",
            "ALTER TABLE shipments ADD CONSTRAINT shipments_addresses_present CHECK (origin_id IS NOT NULL AND destination_id IS NOT NULL) NOT VALID;\n",
        ),
        ("14_b.sql", "ALTER TABLE shipments VALIDATE CONSTRAINT shipments_addresses_present;\n"),
        (
            "14_c.sql",
            "ALTER TABLE shipments ALTER COLUMN origin_id SET NOT NULL, ALTER COLUMN destination_id SET NOT NULL;\n",
        ),
    ]);
}

#[test]
fn change_column_restating_the_current_type() {
    let schema = r#"
ActiveRecord::Schema[7.1].define(version: 2024_01_01_000000) do
  create_table "vouchers", force: :cascade do |t|
    t.string "code", limit: 40, null: false
    t.decimal "value", precision: 10, scale: 2
    t.string "tags", array: true
  end
end
"#;
    let judge_with = |body: &str, schema: Option<&str>| {
        let pending = vec![Migration {
            path: "db/migrate/2024_02_01_000000_restate.rb".into(),
            version: "2024_02_01_000000".into(),
            phase: "expand".into(),
            contents: rails(body),
        }];
        let s = schema.map(|s| rails::schema::read("db/schema.rb", s));
        judge(&pending, &options(&[("bluegreen.lock-timeout", "5s")]), s)
    };
    for body in [
        "  def up\n    change_column :vouchers, :code, :string, limit: 40, null: false\n  end",
        "  def up\n    change_column :vouchers, :value, :decimal, precision: 10, scale: 2\n  end",
        "  def up\n    change_column :vouchers, :tags, :string, array: true\n  end",
    ] {
        let found = judge_with(body, Some(schema));
        assert!(found.iter().all(|f| f.level == Level::Info), "{body}: {found:#?}");
        // Without the schema the current type is unknown: reported, blocked.
        let blind = judge_with(body, None);
        let f = blind.iter().find(|f| f.rule == "change-column-type").unwrap();
        assert!(f.level == Level::Block && f.message.contains("current type is unknown"), "{f:#?}");
    }
    // A real change still blocks with the schema.
    for body in [
        "  def up\n    change_column :vouchers, :value, :decimal, precision: 10, scale: 4\n  end",
        "  def up\n    change_column :vouchers, :tags, :string\n  end",
    ] {
        let found = judge_with(body, Some(schema));
        assert!(
            level_of(&found, Level::Block).contains(&"change-column-type"),
            "{body}: {found:#?}"
        );
    }
}

#[test]
fn a_check_from_an_earlier_release_validated_then_not_null() {
    // The check was added NOT VALID by the release serving; this batch
    // validates it, then sets NOT NULL; the second migration's `down`
    // states the check, so the validation is known to cover the column.
    let validate = rails(
        "  def change\n    validate_check_constraint :payouts, name: \"payouts_settled_at_null\"\n  end",
    );
    let not_null = rails(
        "  def up
    change_column_null :payouts, :settled_at, false
    remove_check_constraint :payouts, name: \"payouts_settled_at_null\"
  end

  def down
    add_check_constraint :payouts, \"settled_at IS NOT NULL\", name: \"payouts_settled_at_null\", validate: false
    change_column_null :payouts, :settled_at, true
  end",
    );
    safe(&[("15_a.rb", &validate), ("15_b.rb", &not_null)]);
    // Without the validation, or validating another check, it still blocks.
    blocks(&[("15_b.rb", &not_null)], "set-not-null");
    let other = rails(
        "  def change\n    validate_check_constraint :payouts, name: \"payouts_amount_positive\"\n  end",
    );
    blocks(&[("15_a.rb", &other), ("15_b.rb", &not_null)], "set-not-null");
}
