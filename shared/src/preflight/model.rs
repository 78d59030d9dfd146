//! What the plan knows about tables as it walks the migrations in order: which tables and
//! columns an earlier pending statement created (so they hold no rows, or no NULLs, from
//! before), which were renamed (so the live database knows them by their old name), and
//! the values of the enums the history declared.

use std::collections::HashMap;

use super::classify::{ColumnDef, QName};

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
}

#[derive(Debug, Clone)]
pub struct Table {
    /// Its name in the live database; `None` when a pending statement created it.
    pub live: Option<QName>,
    pub rows: Rows,
    pub columns: HashMap<String, Column>,
}

/// The state of the schema as far as the plan has walked.
#[derive(Debug, Default)]
pub struct Model {
    tables: HashMap<String, Table>,
    enums: HashMap<String, Vec<String>>,
}

/// The key of a table or type: its unqualified, already-folded name.
fn key(name: &QName) -> String {
    name.name.clone()
}

impl Model {
    /// The table as known now. A table the plan never mentioned is taken to be live under
    /// the name written.
    pub fn table(&self, name: &QName) -> Table {
        self.tables
            .get(&key(name))
            .cloned()
            .unwrap_or_else(|| Table {
                live: Some(name.clone()),
                rows: Rows::Live,
                columns: HashMap::new(),
            })
    }

    pub fn column(&self, table: &QName, column: &str) -> Column {
        let t = self.table(table);
        t.columns.get(column).cloned().unwrap_or_else(|| Column {
            live: t.live.as_ref().map(|_| column.to_owned()),
            type_name: String::new(),
            filled_when_added: None,
        })
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
                    },
                )
            })
            .collect();
        let rows = match (pending, copied) {
            (false, _) => Rows::Live,
            (true, false) => Rows::Empty,
            (true, true) => Rows::PlanData,
        };
        self.tables.insert(
            key(name),
            Table {
                live: (!pending).then(|| name.clone()),
                rows,
                columns,
            },
        );
    }

    pub fn add_column(&mut self, table: &QName, column: &ColumnDef, pending: bool) {
        let filled = column.not_null
            || column.default.is_some()
            || column.auto_value
            || column.generated_stored;
        let entry = self.entry(table);
        entry.columns.insert(
            column.name.clone(),
            Column {
                live: (!pending).then(|| column.name.clone()),
                type_name: column.type_name.clone(),
                filled_when_added: pending.then_some(filled),
            },
        );
    }

    pub fn drop_column(&mut self, table: &QName, column: &str) {
        self.entry(table).columns.remove(column);
    }

    pub fn rename_column(&mut self, table: &QName, from: &str, to: &str) {
        let entry = self.entry(table);
        let column = entry.columns.remove(from).unwrap_or_else(|| Column {
            live: entry.live.as_ref().map(|_| from.to_owned()),
            type_name: String::new(),
            filled_when_added: None,
        });
        entry.columns.insert(to.to_owned(), column);
    }

    pub fn set_column_type(&mut self, table: &QName, column: &str, type_name: &str) {
        let live = self.table(table).live.map(|_| column.to_owned());
        let entry = self.entry(table);
        let col = entry.columns.entry(column.to_owned()).or_insert(Column {
            live,
            type_name: String::new(),
            filled_when_added: None,
        });
        col.type_name = type_name.to_owned();
    }

    pub fn rename_table(&mut self, from: &QName, to: &str) {
        let table = self.table(from);
        self.tables.remove(&key(from));
        self.tables.insert(to.to_owned(), table);
    }

    pub fn drop_table(&mut self, name: &QName) {
        self.tables.remove(&key(name));
    }

    /// `TRUNCATE` or a `DELETE` without `WHERE` by a pending statement: no rows after it.
    pub fn empty(&mut self, name: &QName) {
        self.entry(name).rows = Rows::Empty;
    }

    /// `INSERT`/`COPY`/`UPDATE` by a pending statement: what the plan put there is unknown.
    pub fn written(&mut self, name: &QName, update: bool) {
        let entry = self.entry(name);
        if entry.rows == Rows::Empty && !update {
            entry.rows = Rows::PlanData;
        }
        if update {
            for column in entry.columns.values_mut() {
                if column.live.is_none() {
                    column.filled_when_added = None;
                }
            }
        }
    }

    pub fn create_enum(&mut self, name: &QName, values: &[String]) {
        self.enums.insert(key(name), values.to_vec());
    }

    pub fn rename_enum(&mut self, from: &QName, to: &str) {
        if let Some(values) = self.enums.remove(&key(from)) {
            self.enums.insert(to.to_owned(), values);
        }
        for table in self.tables.values_mut() {
            for column in table.columns.values_mut() {
                if column.type_name == from.name {
                    column.type_name = to.to_owned();
                }
            }
        }
    }

    pub fn drop_enum(&mut self, name: &QName) {
        self.enums.remove(&key(name));
    }

    /// Lint's view: everything before this migration is taken as deployed to a database
    /// whose rows are unknown.
    pub fn treat_as_deployed(&mut self) {
        for (name, table) in &mut self.tables {
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
            }
        }
    }

    fn entry(&mut self, name: &QName) -> &mut Table {
        let fallback = self.table(name);
        self.tables.entry(key(name)).or_insert(fallback)
    }
}
