//! Parsed statements to operations: tables, columns, indexes, constraints
//! and data changes, with MySQL's `ALGORITHM=`/`LOCK=` clauses.

use super::Sql;
use super::words::word_after;
use crate::ops::{Default, Op, table_name, volatile_fn};
use crate::schema::not_null_column;
use sqlparser::ast::{
    AlterColumnOperation, AlterTableAlgorithm, AlterTableLock, AlterTableOperation, ColumnDef,
    ColumnOption, DataType, Expr, GeneratedExpressionMode, ObjectType, RenameTableNameKind,
    Statement, TableConstraint,
};
use sqlparser::tokenizer::TokenWithSpan;

fn default_kind(expr: &Expr) -> Default {
    match expr {
        Expr::Nested(e) => default_kind(e),
        Expr::Function(f) if volatile_fn(&f.name.to_string()) => Default::Volatile,
        _ => Default::Constant,
    }
}

/// The operations of one statement, and whether MySQL was told to refuse
/// rather than block (`ALGORITHM=INSTANT`, `LOCK=NONE`).
pub(super) fn ops(
    statement: &Statement,
    words: &[&TokenWithSpan],
    sql: Sql,
    fk_checks: bool,
) -> (Vec<Op>, bool) {
    let mut out = Vec::new();
    let mut online = false;
    // An explicit COPY or blocking LOCK is not undone by the other clause.
    let mut explicit = false;
    match statement {
        Statement::CreateTable(ct) => {
            out.push(Op::CreateTable { table: table_name(&ct.name.to_string()), force: false })
        }
        Statement::CreateIndex(ci) => out.push(Op::AddIndex {
            table: table_name(&ci.table_name.to_string()),
            concurrently: ci.concurrently,
            unique: ci.unique,
        }),
        Statement::Drop { object_type: ObjectType::Table, names, .. } => {
            for n in names {
                out.push(Op::DropTable { table: table_name(&n.to_string()) });
            }
        }
        Statement::Drop { object_type: ObjectType::Index, .. } => {
            out.push(Op::DropIndex { concurrently: false })
        }
        Statement::Truncate(t) => {
            for n in &t.table_names {
                out.push(Op::Truncate { table: table_name(&n.name.to_string()) });
            }
        }
        Statement::Delete(d) if d.selection.is_none() => {
            out.push(Op::DeleteAll { table: table_name(&word_after(words, "FROM")) })
        }
        Statement::Update(u) if u.selection.is_none() => {
            out.push(Op::UpdateAll { table: table_name(&u.table.relation.to_string()) })
        }
        Statement::RenameTable(renames) => {
            for r in renames {
                out.push(Op::RenameTable {
                    from: table_name(&r.old_name.to_string()),
                    to: table_name(&r.new_name.to_string()),
                })
            }
        }
        Statement::AlterTable(at) => {
            let table = table_name(&at.name.to_string());
            let mysql = sql == Sql::MySql;
            for op in &at.operations {
                match op {
                    AlterTableOperation::Algorithm { algorithm, .. } if mysql => match algorithm {
                        AlterTableAlgorithm::Instant => online = true,
                        AlterTableAlgorithm::Copy => {
                            explicit = true;
                            out.push(Op::BlocksWrites {
                                table: Some(table.clone()),
                                what: format!("ALTER TABLE {table} ... ALGORITHM=COPY"),
                            })
                        }
                        _ => {}
                    },
                    AlterTableOperation::Lock { lock, .. } if mysql => match lock {
                        AlterTableLock::None => online = true,
                        AlterTableLock::Shared | AlterTableLock::Exclusive => {
                            explicit = true;
                            out.push(Op::BlocksWrites {
                                table: Some(table.clone()),
                                what: format!("ALTER TABLE {table} ... LOCK={lock}"),
                            })
                        }
                        AlterTableLock::Default => {}
                    },
                    _ => alter(&table, op, sql, fk_checks, &mut out),
                }
            }
        }
        _ => {}
    }
    (out, online && !explicit)
}

fn add_column(table: &str, c: &ColumnDef, sql: Sql, fk_checks: bool, out: &mut Vec<Op>) {
    let t = || table.to_string();
    let mut not_null = false;
    let mut default = Default::None;
    let mut extra = Vec::new();
    for o in &c.options {
        match &o.option {
            ColumnOption::NotNull => not_null = true,
            ColumnOption::Default(e) => default = default_kind(e),
            // An expression is stored unless it says VIRTUAL (Postgres
            // before 18 knows only STORED); an identity fills every row from
            // a sequence.
            ColumnOption::Generated { generation_expr, generation_expr_mode, .. } => {
                default = match (generation_expr, generation_expr_mode) {
                    (Some(_), Some(GeneratedExpressionMode::Virtual)) => default,
                    (Some(_), None) if sql == Sql::MySql => default,
                    (Some(_), _) => Default::Stored,
                    (None, _) => Default::AutoIncrement,
                }
            }
            ColumnOption::DialectSpecific(tokens)
                if tokens.iter().any(|t| t.to_string().eq_ignore_ascii_case("AUTO_INCREMENT")) =>
            {
                default = Default::AutoIncrement
            }
            ColumnOption::ForeignKey(_) => {
                extra.push(Op::AddForeignKey { table: t(), validated: fk_checks })
            }
            ColumnOption::Unique(_) | ColumnOption::PrimaryKey(_) => {
                extra.push(Op::AddUnique { table: t() })
            }
            ColumnOption::Check(_) => {
                extra.push(Op::AddCheck { table: t(), validated: true, not_null: None })
            }
            _ => {}
        }
    }
    out.push(Op::AddColumn {
        table: t(),
        column: c.name.value.clone(),
        not_null,
        default,
        ty: c.data_type.to_string(),
    });
    out.extend(extra);
}

/// MySQL's `MODIFY`/`CHANGE`: the type, and NOT NULL when restated.
fn restate(table: &str, column: &str, ty: &DataType, options: &[ColumnOption], out: &mut Vec<Op>) {
    let (table, column) = (table.to_string(), column.to_string());
    out.push(Op::ChangeType { table: table.clone(), column: column.clone(), to: ty.to_string() });
    if options.contains(&ColumnOption::NotNull) {
        out.push(Op::SetNotNull { table, column });
    }
}

fn alter(table: &str, op: &AlterTableOperation, sql: Sql, fk_checks: bool, out: &mut Vec<Op>) {
    let t = || table.to_string();
    match op {
        AlterTableOperation::AddColumn { column_def, .. } => {
            add_column(table, column_def, sql, fk_checks, out)
        }
        AlterTableOperation::DropColumn { column_names, .. } => {
            for c in column_names {
                out.push(Op::RemoveColumn { table: t(), column: c.value.clone(), what: "column" });
            }
        }
        AlterTableOperation::RenameColumn { old_column_name, new_column_name } => {
            out.push(Op::RenameColumn {
                table: t(),
                from: old_column_name.value.clone(),
                to: new_column_name.value.clone(),
            })
        }
        AlterTableOperation::RenameTable { table_name: to } => {
            let to = match to {
                RenameTableNameKind::As(n) | RenameTableNameKind::To(n) => n.to_string(),
            };
            out.push(Op::RenameTable { from: t(), to: table_name(&to) })
        }
        AlterTableOperation::AlterColumn { column_name, op } => {
            let column = column_name.value.clone();
            match op {
                AlterColumnOperation::SetNotNull => out.push(Op::SetNotNull { table: t(), column }),
                AlterColumnOperation::SetDefault { .. } => {
                    out.push(Op::ChangeDefault { table: t(), column })
                }
                AlterColumnOperation::SetDataType { data_type, .. } => {
                    out.push(Op::ChangeType { table: t(), column, to: data_type.to_string() })
                }
                _ => {}
            }
        }
        // MySQL: `CHANGE old new type ...` renames when the names differ,
        // and restates the type and nullability.
        AlterTableOperation::ChangeColumn { old_name, new_name, data_type, options, .. } => {
            if !old_name.value.eq_ignore_ascii_case(&new_name.value) {
                out.push(Op::RenameColumn {
                    table: t(),
                    from: old_name.value.clone(),
                    to: new_name.value.clone(),
                });
            }
            restate(table, &old_name.value, data_type, options, out)
        }
        AlterTableOperation::ModifyColumn { col_name, data_type, options, .. } => {
            restate(table, &col_name.value, data_type, options, out)
        }
        AlterTableOperation::AddConstraint { constraint, not_valid } => match constraint {
            TableConstraint::ForeignKey(_) => out.push(Op::AddForeignKey {
                table: t(),
                validated: !not_valid && (sql == Sql::Postgres || fk_checks),
            }),
            TableConstraint::Check(c) => out.push(Op::AddCheck {
                table: t(),
                validated: !not_valid && c.enforced != Some(false),
                not_null: not_null_column(&c.expr),
            }),
            TableConstraint::Unique(_) | TableConstraint::PrimaryKey(_) => {
                out.push(Op::AddUnique { table: t() })
            }
            TableConstraint::Index(_) => {
                out.push(Op::AddIndex { table: t(), concurrently: false, unique: false })
            }
            TableConstraint::FulltextOrSpatial(_) => out.push(Op::BlocksWrites {
                table: Some(t()),
                what: format!("ADD FULLTEXT/SPATIAL INDEX on {table}"),
            }),
            TableConstraint::Exclude(_) => out.push(Op::AddExclusion { table: t() }),
            _ => {}
        },
        AlterTableOperation::DropPrimaryKey { .. } if sql == Sql::MySql => {
            out.push(Op::BlocksWrites {
                table: Some(t()),
                what: format!("DROP PRIMARY KEY on {table}"),
            })
        }
        AlterTableOperation::ValidateConstraint { .. } => out.push(Op::Validate { table: t() }),
        _ => {}
    }
}
