//! Parsed statements to operations: tables, columns, indexes, constraints
//! and data changes, with MySQL's `ALGORITHM=`/`LOCK=` clauses.

use super::Sql;
use super::words::word_after;
use crate::ops::{Default, Op, table_name, volatile_fn};
use crate::schema::not_null_columns;
use sqlparser::ast::{
    AlterColumnOperation, AlterTableAlgorithm, AlterTableLock, AlterTableOperation,
    AssignmentTarget, BinaryOperator, ColumnDef, ColumnOption, DataType, Expr,
    GeneratedExpressionMode, ObjectType, RenameTableNameKind, Statement, TableConstraint,
    UnaryOperator, Value,
};
use sqlparser::tokenizer::TokenWithSpan;

fn default_kind(expr: &Expr) -> Default {
    match expr {
        Expr::Nested(e) => default_kind(e),
        Expr::Function(f) if volatile_fn(&f.name.to_string()) => Default::Volatile,
        _ => Default::Constant,
    }
}

/// A constant a WHERE clause can be made of.
#[derive(PartialEq)]
enum Constant {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl Constant {
    /// Its truth as a condition (MySQL takes a number as one).
    fn truth(&self) -> Option<bool> {
        match self {
            Constant::Bool(b) => Some(*b),
            Constant::Number(n) => Some(*n != 0.0),
            Constant::Text(_) => None,
        }
    }
}

/// An expression's value when it uses no column: `true`, `1 = 1`,
/// `'a' = 'a'`, `NOT false`, `x OR true`.
fn constant(e: &Expr) -> Option<Constant> {
    match e {
        Expr::Nested(inner) => constant(inner),
        Expr::Value(v) => match &v.value {
            Value::Boolean(b) => Some(Constant::Bool(*b)),
            Value::Number(n, _) => n.parse().ok().map(Constant::Number),
            Value::SingleQuotedString(s) => Some(Constant::Text(s.clone())),
            _ => None,
        },
        Expr::UnaryOp { op: UnaryOperator::Not, expr } => {
            constant(expr)?.truth().map(|t| Constant::Bool(!t))
        }
        Expr::BinaryOp { left, op, right } => {
            let truth = |e: &Expr| constant(e).and_then(|c| c.truth());
            let (l, r) = (truth(left), truth(right));
            let b = match op {
                BinaryOperator::Or if l == Some(true) || r == Some(true) => true,
                BinaryOperator::Or => l? || r?,
                BinaryOperator::And if l == Some(false) || r == Some(false) => false,
                BinaryOperator::And => l? && r?,
                _ => {
                    let (l, r) = (constant(left)?, constant(right)?);
                    let order = match (&l, &r) {
                        (Constant::Number(a), Constant::Number(b)) => a.partial_cmp(b)?,
                        (Constant::Text(a), Constant::Text(b)) => a.cmp(b),
                        (Constant::Bool(a), Constant::Bool(b)) => a.cmp(b),
                        _ => return None,
                    };
                    use std::cmp::Ordering::*;
                    match op {
                        BinaryOperator::Eq => order == Equal,
                        BinaryOperator::NotEq => order != Equal,
                        BinaryOperator::Lt => order == Less,
                        BinaryOperator::LtEq => order != Greater,
                        BinaryOperator::Gt => order == Greater,
                        BinaryOperator::GtEq => order != Less,
                        _ => return None,
                    }
                }
            };
            Some(Constant::Bool(b))
        }
        _ => None,
    }
}

/// A WHERE clause that holds for every row (`WHERE true`, `WHERE 1=1`): the
/// statement touches the whole table, as without one.
fn every_row(selection: &Expr) -> bool {
    constant(selection).and_then(|c| c.truth()) == Some(true)
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
        Statement::Delete(d) if d.selection.as_ref().is_none_or(every_row) => {
            out.push(Op::DeleteAll { table: table_name(&word_after(words, "FROM")) })
        }
        Statement::Update(u) if u.selection.as_ref().is_none_or(every_row) => {
            let columns = u
                .assignments
                .iter()
                .map(|a| match &a.target {
                    AssignmentTarget::ColumnName(c) => Some(table_name(&c.to_string())),
                    AssignmentTarget::Tuple(_) => None,
                })
                .collect();
            out.push(Op::UpdateAll {
                table: table_name(&u.table.relation.to_string()),
                columns,
                batched: false,
            })
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
                extra.push(Op::AddCheck { table: t(), validated: true, not_null: Vec::new() })
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
                not_null: not_null_columns(&c.expr),
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
        AlterTableOperation::ValidateConstraint { name } => {
            out.push(Op::Validate { table: t(), name: Some(name.value.clone()) })
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;

    fn holds(condition: &str) -> bool {
        let e = sqlparser::parser::Parser::new(&PostgreSqlDialect {})
            .try_with_sql(condition)
            .unwrap()
            .parse_expr()
            .unwrap();
        every_row(&e)
    }

    #[test]
    fn a_where_true_for_every_row_is_seen() {
        for c in [
            "true",
            "TRUE",
            "1=1",
            "1 = 1",
            "(1 = 1)",
            "'a' = 'a'",
            "NOT false",
            "1",
            "id > 5 OR 1=1",
            "2 > 1",
        ] {
            assert!(holds(c), "{c}");
        }
        for c in
            ["false", "1=0", "id = 1", "id > 5 AND 1=1", "created_at < now()", "0", "'a' = 'b'"]
        {
            assert!(!holds(c), "{c}");
        }
    }
}
