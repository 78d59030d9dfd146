//! What the plan knows about tables as it walks the migrations in order: which tables and
//! columns an earlier pending statement created (so they hold no rows, or no NULLs, from
//! before), which were renamed (so the live database knows them by their old name; an
//! applied rename is the live name), the values of the enums the history declared, and —
//! for each column — an SQL expression over the live table that gives its value on the rows
//! from before the plan (a constant default the plan added it with, a `USING` conversion),
//! so that a probe can ask the live rows about a column the live table does not have yet.

use std::collections::{HashMap, HashSet};

use super::classify::{ColumnDef, ConstraintKind, QName};
use crate::sql::Flavor;

/// What is known of a table's rows at a point of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// As in the live database (the table existed before the plan).
    Live,
    /// Created or emptied by an earlier pending statement, and not written since: no rows.
    Empty,
    /// Created or emptied by the plan, then written by it: unknown without running it.
    PlanData,
}

/// What is known of a column at a point of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name in the live database; `None` when a pending statement added it.
    pub live: Option<String>,
    /// The type as written (unquoted enum names as they are).
    pub type_name: String,
    /// For a column added by the plan: whether every existing row got a value (a default, an
    /// identity, a generated expression). `None` once the plan updated the table since.
    pub filled_when_added: Option<bool>,
    /// Its value on the live rows, as SQL over the live table (`"email"`, `('x')`, `NULL`,
    /// `("flag" IS NOT NULL)`); `None` when only running the plan could tell.
    pub value: Option<String>,
    /// Added by a pending `ADD COLUMN` that costs only a catalog change (PostgreSQL ≥ 11, no
    /// volatile default, no constraint): a rehearsal may run that statement, after which
    /// the column is its own name.
    pub cheap_add: bool,
}

/// The parts of a table that the rules ask about (cheap to copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableView {
    /// Its name in the live database; `None` when a pending statement created it.
    pub live: Option<QName>,
    pub rows: Rows,
}

#[derive(Debug, Clone)]
struct Table {
    live: Option<QName>,
    rows: Rows,
    columns: HashMap<String, Column>,
}

/// A constraint added `NOT VALID` by a pending statement, validated later.
#[derive(Debug, Clone)]
pub struct NotValid {
    pub table: QName,
    pub kind: ConstraintKind,
}

/// The state of the schema as far as the plan has walked.
#[derive(Debug)]
pub struct Model {
    flavor: Flavor,
    tables: HashMap<String, Table>,
    enums: HashMap<String, Vec<String>>,
    not_valid: HashMap<String, NotValid>,
    /// Tables changed since the last [`Model::treat_as_deployed`] (which then visits only
    /// those, not every table of a long history).
    dirty: HashSet<String>,
}

/// The key of a table or type: its unqualified, already-folded name.
fn key(name: &QName) -> &str {
    &name.name
}

/// `"a""b"` (PostgreSQL, SQLite) or `` `a` `` (MySQL).
pub fn quote(flavor: Flavor, name: &str) -> String {
    match flavor {
        Flavor::MySql => format!("`{}`", name.replace('`', "``")),
        _ => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

impl Model {
    pub fn new(flavor: Flavor) -> Model {
        Model {
            flavor,
            tables: HashMap::new(),
            enums: HashMap::new(),
            not_valid: HashMap::new(),
            dirty: HashSet::new(),
        }
    }

    fn quote(&self, name: &str) -> String {
        quote(self.flavor, name)
    }

    /// The table as known now. A table the plan never mentioned is taken to be live under
    /// the name written.
    pub fn table(&self, name: &QName) -> TableView {
        match self.tables.get(key(name)) {
            Some(t) => TableView {
                live: t.live.clone(),
                rows: t.rows,
            },
            None => TableView {
                live: Some(name.clone()),
                rows: Rows::Live,
            },
        }
    }

    /// The live name of a table the history created and the plan has not (a table the
    /// history never mentioned is not known: a name in a query may be anything).
    pub fn known_live(&self, name: &str) -> Option<QName> {
        self.tables.get(name).and_then(|t| t.live.clone())
    }

    pub fn column(&self, table: &QName, column: &str) -> Column {
        let t = self.tables.get(key(table));
        if let Some(c) = t.and_then(|t| t.columns.get(column)) {
            return c.clone();
        }
        let live = t.is_none_or(|t| t.live.is_some());
        Column {
            live: live.then(|| column.to_owned()),
            type_name: String::new(),
            filled_when_added: None,
            value: live.then(|| self.quote(column)),
            cheap_add: false,
        }
    }

    pub fn enum_values(&self, name: &str) -> Option<&[String]> {
        self.enums.get(name).map(Vec::as_slice)
    }

    /// `CREATE TABLE`: by a pending migration it holds no rows; by an applied one it is live.
    pub fn create_table(
        &mut self,
        name: &QName,
        columns: &[ColumnDef],
        pending: bool,
        copied: bool,
    ) {
        let columns = columns
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    Column {
                        live: (!pending).then(|| c.name.clone()),
                        type_name: c.type_name.clone(),
                        filled_when_added: pending.then_some(true),
                        value: (!pending).then(|| self.quote(&c.name)),
                        cheap_add: false,
                    },
                )
            })
            .collect();
        let rows = match (pending, copied) {
            (false, _) => Rows::Live,
            (true, false) => Rows::Empty,
            (true, true) => Rows::PlanData,
        };
        self.dirty.insert(key(name).to_owned());
        self.tables.insert(
            key(name).to_owned(),
            Table {
                live: (!pending).then(|| name.clone()),
                rows,
                columns,
            },
        );
    }

    /// `ADD COLUMN`; `value` is what the live rows hold in it (see [`Column::value`]).
    pub fn add_column(
        &mut self,
        table: &QName,
        column: &ColumnDef,
        pending: bool,
        value: Option<String>,
        cheap_add: bool,
    ) {
        let filled = column.not_null
            || column.default.is_some()
            || column.auto_value
            || column.generated_stored;
        let value = if pending {
            value
        } else {
            Some(self.quote(&column.name))
        };
        let entry = self.entry(table);
        entry.columns.insert(
            column.name.clone(),
            Column {
                live: (!pending).then(|| column.name.clone()),
                type_name: column.type_name.clone(),
                filled_when_added: pending.then_some(filled),
                value,
                cheap_add: pending && cheap_add,
            },
        );
    }

    pub fn drop_column(&mut self, table: &QName, column: &str) {
        self.entry(table).columns.remove(column);
    }

    /// A rename by an applied migration is the live name; by a pending one the live
    /// database still knows the old one.
    pub fn rename_column(&mut self, table: &QName, from: &str, to: &str, pending: bool) {
        let mut column = self.column(table, from);
        if !pending {
            column.live = Some(to.to_owned());
            column.value = Some(self.quote(to));
        }
        let entry = self.entry(table);
        entry.columns.remove(from);
        entry.columns.insert(to.to_owned(), column);
    }

    /// `ALTER COLUMN … TYPE`: the column's value on the live rows becomes `value` (pending),
    /// or stays the live column (applied).
    pub fn set_column_type(
        &mut self,
        table: &QName,
        column: &str,
        type_name: &str,
        value: Option<String>,
        pending: bool,
    ) {
        let mut col = self.column(table, column);
        col.type_name = type_name.to_owned();
        if pending {
            col.value = value;
        }
        self.entry(table).columns.insert(column.to_owned(), col);
    }

    pub fn rename_table(&mut self, from: &QName, to: &str, pending: bool) {
        let mut table = self.tables.remove(key(from)).unwrap_or_else(|| Table {
            live: Some(from.clone()),
            rows: Rows::Live,
            columns: HashMap::new(),
        });
        if !pending {
            table.live = Some(QName {
                schema: from.schema.clone(),
                name: to.to_owned(),
            });
        }
        self.dirty.insert(to.to_owned());
        self.tables.insert(to.to_owned(), table);
    }

    pub fn drop_table(&mut self, name: &QName) {
        self.tables.remove(key(name));
    }

    /// `TRUNCATE` or a `DELETE` without `WHERE` by a pending statement: no rows after it.
    pub fn empty(&mut self, name: &QName) {
        self.entry(name).rows = Rows::Empty;
    }

    /// `INSERT`/`COPY`/`UPDATE` by a pending statement: what the plan put there is unknown
    /// (without rehearsing it).
    pub fn written(&mut self, name: &QName, update: bool) {
        let entry = self.entry(name);
        if entry.rows == Rows::Empty && !update {
            entry.rows = Rows::PlanData;
        }
        if update {
            for column in entry.columns.values_mut() {
                if column.live.is_none() {
                    column.filled_when_added = None;
                    column.value = None;
                }
            }
        }
    }

    pub fn create_enum(&mut self, name: &QName, values: &[String]) {
        self.enums.insert(key(name).to_owned(), values.to_vec());
    }

    pub fn add_enum_value(&mut self, name: &QName, value: &str) {
        let values = self.enums.entry(key(name).to_owned()).or_default();
        if !values.iter().any(|v| v == value) {
            values.push(value.to_owned());
        }
    }

    pub fn rename_enum(&mut self, from: &QName, to: &str) {
        if let Some(values) = self.enums.remove(key(from)) {
            self.enums.insert(to.to_owned(), values);
        }
        for table in self.tables.values_mut() {
            for column in table.columns.values_mut() {
                if enum_name(&column.type_name).0 == from.name {
                    column.type_name = to.to_owned();
                }
            }
        }
    }

    pub fn drop_enum(&mut self, name: &QName) {
        self.enums.remove(key(name));
    }

    pub fn add_not_valid(&mut self, name: &str, table: &QName, kind: &ConstraintKind) {
        self.not_valid.insert(
            name.to_owned(),
            NotValid {
                table: table.clone(),
                kind: kind.clone(),
            },
        );
    }

    /// The constraint a pending statement added `NOT VALID` under this name, now validated.
    pub fn take_not_valid(&mut self, name: &str) -> Option<NotValid> {
        self.not_valid.remove(name)
    }

    /// Lint's view: everything before this migration is taken as deployed to a database
    /// whose rows are unknown.
    pub fn treat_as_deployed(&mut self) {
        let flavor = self.flavor;
        for name in std::mem::take(&mut self.dirty) {
            let Some(table) = self.tables.get_mut(&name) else {
                continue;
            };
            if table.live.is_none() {
                table.live = Some(QName {
                    schema: None,
                    name: name.clone(),
                });
            }
            table.rows = Rows::Live;
            for (column_name, column) in &mut table.columns {
                column.live.get_or_insert_with(|| column_name.clone());
                column.filled_when_added = None;
                column.value = Some(quote(flavor, column_name));
                column.cheap_add = false;
            }
        }
        self.not_valid.clear();
    }

    fn entry(&mut self, name: &QName) -> &mut Table {
        self.dirty.insert(key(name).to_owned());
        self.tables
            .entry(key(name).to_owned())
            .or_insert_with(|| Table {
                live: Some(name.clone()),
                rows: Rows::Live,
                columns: HashMap::new(),
            })
    }
}

/// A type as the classifier wrote it (`public . Role_new [ ]`, `Role`): the enum's
/// unqualified name and whether the column is an array of it.
pub fn enum_name(type_name: &str) -> (String, bool) {
    let compact: String = type_name.chars().filter(|c| !c.is_whitespace()).collect();
    let array = compact.ends_with("[]");
    let base = compact.trim_end_matches("[]");
    let name = base.rsplit('.').next().unwrap_or(base).trim_matches('"');
    (name.to_owned(), array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_lose_schema_and_array_marks() {
        assert_eq!(enum_name("public . Role_new"), ("Role_new".into(), false));
        assert_eq!(enum_name("Perm_new [ ]"), ("Perm_new".into(), true));
        assert_eq!(enum_name("Role"), ("Role".into(), false));
    }

    #[test]
    fn applied_renames_are_the_live_names() {
        let mut m = Model::new(Flavor::Postgres);
        let old = QName {
            schema: None,
            name: "Old".into(),
        };
        m.rename_table(&old, "New", false);
        let new = QName {
            schema: None,
            name: "New".into(),
        };
        assert_eq!(m.table(&new).live.map(|q| q.name), Some("New".into()));
        m.rename_column(&new, "a", "b", false);
        assert_eq!(m.column(&new, "b").live.as_deref(), Some("b"));
        m.rename_column(&new, "b", "c", true);
        assert_eq!(m.column(&new, "c").live.as_deref(), Some("b"));
    }
}
