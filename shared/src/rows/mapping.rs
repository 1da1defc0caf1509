//! Column mapping: which file column becomes which typed attribute.
//!
//! A mapping is written inline in the config or comes from a manifest file (ours or
//! MoEngage's mapping-file JSON, as is). It is checked twice: on its own when the
//! config is validated ([`MappingSpec::problems`]) and against a file's header when
//! the file is read ([`CompiledMapping::new`]), which is where a missing identifier
//! column is found.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::codec::reader::{Row, RowError};
use crate::error::{Classify, ErrorClass};
use crate::model::config::{EventTimeZone, ImportConfig, ImportKind, Problem};
use crate::model::values::{AttrType, Value, ValueDateTimeFormat, ValueOptions, parse_value};

pub use crate::model::mapping_spec::{
    CATALOG, ColumnMapping, EVENT_TIME, MappingSpec, StandardAttribute, USER_ID, standard,
};

/// Attributes the service writes itself. A mapping cannot name them as custom
/// attributes; the standard ones among them (`user_id`, `event_time`) become the item's
/// key and event time, not ordinary attributes.
pub const RESERVED: &[&str] = &[
    "user_id",
    "anonymous_id",
    "event_key",
    "event_name",
    "event_time",
    "dataset",
    "record_key",
    "expires_at",
    "s3i_import_id",
    "s3i_file",
    "s3i_row",
    "s3i_updated_at",
];

/// Our attribute name for a MoEngage attribute key (`u_em` -> `email`); custom names pass through.
pub fn from_moengage_key(key: &str) -> &str {
    CATALOG
        .iter()
        .find(|a| a.moengage_key == key)
        .map_or(key, |a| a.name)
}

// Checking a spec needs the config's kind and its `Problem`, so it lives here rather
// than with the type in `mapping_spec`, which `config` imports.
impl MappingSpec {
    /// Problems with the mapping itself (a manifest is checked when it is read).
    pub fn problems(&self, kind: &ImportKind) -> Vec<Problem> {
        match self {
            Self::Columns { columns } => column_problems(columns, kind, "mapping.columns"),
            Self::Manifest { manifest } => {
                if manifest.trim().is_empty() || manifest.starts_with('/') {
                    vec![Problem::new(
                        "mapping.manifest",
                        "give the mapping file's name relative to the import's folder",
                    )]
                } else {
                    Vec::new()
                }
            }
        }
    }
}

/// Checks a list of column mappings; `field` prefixes the field names in problems.
pub fn column_problems(columns: &[ColumnMapping], kind: &ImportKind, field: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut attrs = BTreeSet::new();
    let mut cols = BTreeSet::new();
    for (i, m) in columns.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if m.column.trim().is_empty() {
            problems.push(Problem::new(format!("{at}.column"), "name the column"));
        } else if !cols.insert(m.column.as_str()) {
            problems.push(Problem::new(
                format!("{at}.column"),
                format!("column `{}` is mapped twice", m.column),
            ));
        }
        if m.skip {
            continue;
        }
        let Some(attr) = m.attribute.as_deref() else {
            problems.push(Problem::new(
                format!("{at}.attribute"),
                format!(
                    "map column `{}` to an attribute, or set `skip: true`",
                    m.column
                ),
            ));
            continue;
        };
        if !attrs.insert(attr) {
            problems.push(Problem::new(
                format!("{at}.attribute"),
                format!("attribute `{attr}` is mapped from two columns"),
            ));
        }
        let ty = m.attr_type();
        match standard(attr) {
            Some(std_attr) => {
                if !std_attr.types.contains(&ty) {
                    problems.push(Problem::new(
                        format!("{at}.type"),
                        format!(
                            "standard attribute `{attr}` takes {}, not {ty}",
                            std_attr
                                .types
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ),
                    ));
                }
                if attr == EVENT_TIME && !matches!(kind, ImportKind::Events { .. }) {
                    problems.push(Problem::new(
                        format!("{at}.attribute"),
                        "`event_time` is only for event imports",
                    ));
                }
            }
            None => {
                if let Some(reason) = custom_name_problem(attr) {
                    problems.push(Problem::new(format!("{at}.attribute"), reason));
                }
            }
        }
        if m.format.is_some() && ty != AttrType::Datetime {
            problems.push(Problem::new(
                format!("{at}.format"),
                "a format applies to `datetime` columns only",
            ));
        }
        if m.delimiter.is_some() && ty != AttrType::List {
            problems.push(Problem::new(
                format!("{at}.delimiter"),
                "a delimiter applies to `list` columns only",
            ));
        }
    }
    let required: &[&str] = match kind {
        ImportKind::RegisteredUsers {} => &[USER_ID],
        ImportKind::Events { .. } => &[USER_ID, EVENT_TIME],
        ImportKind::AnonymousUsers { .. } | ImportKind::Auxiliary { .. } => &[],
    };
    for r in required {
        if !attrs.contains(r) {
            problems.push(Problem::new(
                field,
                format!("{} imports need a column mapped to `{r}`", kind.describe()),
            ));
        }
    }
    problems
}

fn custom_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 100 {
        return Some("a custom attribute name has 1 to 100 characters".into());
    }
    if name.starts_with("moe_") || name.starts_with("s3i_") {
        return Some(format!(
            "`{name}`: names starting with `moe_` or `s3i_` are reserved"
        ));
    }
    if RESERVED.contains(&name) {
        return Some(format!(
            "`{name}` is written by s3imports itself; choose another name"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' ' | '.'))
    {
        return Some(format!(
            "`{name}`: use letters, digits, spaces, `_`, `-` and `.`"
        ));
    }
    None
}

/// Columns a missing-column reason names.
const FOUND_COLUMNS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("the mapping file is not valid: {0}")]
    Manifest(String),
    #[error("the mapping is not valid: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    #[error("column `{column}` ({purpose}) is not in the file; its columns are: {found}")]
    MissingColumn {
        column: String,
        purpose: String,
        found: String,
    },
}

impl Classify for MappingError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// Reads a manifest: our `{"columns": [...]}` (or a bare list) or MoEngage's
/// `{"mapping": [{"column", "moe_attr", "type", "datetime_format", "is_skipped"}]}`.
pub fn parse_manifest(text: &str) -> Result<Vec<ColumnMapping>, MappingError> {
    let value: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| MappingError::Manifest(e.to_string()))?;
    if let Some(items) = value.get("mapping") {
        let items: Vec<MoEngageMapping> = serde_json::from_value(items.clone())
            .map_err(|e| MappingError::Manifest(format!("MoEngage mapping file: {e}")))?;
        return items.into_iter().map(MoEngageMapping::into_ours).collect();
    }
    let list = value.get("columns").cloned().unwrap_or(value);
    serde_json::from_value(list).map_err(|e| MappingError::Manifest(e.to_string()))
}

/// One entry of MoEngage's mapping file.
#[derive(Deserialize)]
struct MoEngageMapping {
    column: String,
    #[serde(default)]
    moe_attr: Option<String>,
    #[serde(default, rename = "type")]
    attr_type: Option<String>,
    #[serde(default)]
    datetime_format: Option<String>,
    #[serde(default)]
    is_skipped: bool,
}

impl MoEngageMapping {
    fn into_ours(self) -> Result<ColumnMapping, MappingError> {
        let attr_type = match self.attr_type.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) => Some(
                serde_json::from_value::<AttrType>(serde_json::Value::String(t.to_lowercase()))
                    .map_err(|_| {
                        MappingError::Manifest(format!(
                            "column `{}`: unknown type `{t}` (use string, double, bool or datetime)",
                            self.column
                        ))
                    })?,
            ),
        };
        let format =
            match self.datetime_format.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(f) => Some(ValueDateTimeFormat::parse(f).map_err(|e| {
                    MappingError::Manifest(format!("column `{}`: {e}", self.column))
                })?),
            };
        let skip = self.is_skipped || self.moe_attr.as_deref().is_none_or(|a| a.trim().is_empty());
        Ok(ColumnMapping {
            attribute: self
                .moe_attr
                .filter(|a| !a.trim().is_empty())
                .map(|a| from_moengage_key(a.trim()).to_string()),
            column: self.column,
            attr_type,
            format: if skip { None } else { format },
            delimiter: None,
            skip,
        })
    }
}

/// How the identity of a row is found.
#[derive(Debug, Clone)]
enum KeySource {
    /// The attribute at this index of the compiled columns (user id).
    Attribute(usize),
    /// A raw file column (anonymous identifier, auxiliary key).
    Column { index: usize, name: String },
}

#[derive(Debug, Clone)]
struct CompiledColumn {
    index: usize,
    /// Its entry's position in the mapping list: what a mapped row carries.
    slot: u32,
    /// False for the attributes the service writes itself (the key, the event time).
    written: bool,
    column: String,
    attribute: String,
    ty: AttrType,
    format: Option<ValueDateTimeFormat>,
    delimiter: Option<char>,
    timezone: Tz,
}

/// A mapping bound to one file's columns, ready to map rows.
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    columns: Vec<CompiledColumn>,
    key: KeySource,
    event_time: Option<usize>,
    /// Columns in the file that nothing maps (reported, not an error).
    pub unmapped: Vec<String>,
    /// Mapped columns that the file does not have (ignored, as MoEngage does).
    pub absent: Vec<String>,
}

/// One mapped row: its identity and typed attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MappedRow {
    pub row: u64,
    /// User id, anonymous identifier or auxiliary key.
    pub key: String,
    pub event_time: Option<DateTime<Utc>>,
    /// Mapped attributes with a value (empty cells write nothing), each by its entry's
    /// position in the mapping list (see [`CompiledMapping::name`]); not the key or the
    /// event time, which have their own fields.
    pub attributes: Vec<(u32, Value)>,
}

impl CompiledMapping {
    /// Binds `mappings` to a file whose header is `file_columns`.
    pub fn new(
        config: &ImportConfig,
        mappings: &[ColumnMapping],
        file_columns: &[String],
    ) -> Result<Self, MappingError> {
        let problems = column_problems(mappings, &config.kind, "mapping");
        if !problems.is_empty() {
            return Err(MappingError::Invalid(problems));
        }
        let position: HashMap<&str, usize> = file_columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        // The first columns only: a reason is stored, mailed and shown, and a header
        // may hold thousands of columns.
        let found = || {
            let shown: Vec<String> = file_columns
                .iter()
                .take(FOUND_COLUMNS)
                .map(|c| format!("`{}`", crate::codec::limits::bounded(c, 64)))
                .collect();
            match file_columns.len().saturating_sub(FOUND_COLUMNS) {
                0 => shown.join(", "),
                more => format!("{} and {more} more", shown.join(", ")),
            }
        };
        let mut columns = Vec::new();
        let mut absent = Vec::new();
        for (slot, m) in mappings.iter().enumerate() {
            let Some(&index) = position.get(m.column.as_str()) else {
                absent.push(m.column.clone());
                continue;
            };
            let (false, Some(attribute)) = (m.skip, m.attribute.as_deref()) else {
                continue;
            };
            let timezone = match &config.kind {
                ImportKind::Events {
                    event_time_in: EventTimeZone::App,
                    ..
                } if attribute == EVENT_TIME => config.timezone,
                _ => Tz::UTC,
            };
            columns.push(CompiledColumn {
                index,
                slot: u32::try_from(slot).unwrap_or(u32::MAX),
                written: !RESERVED.contains(&attribute),
                column: m.column.clone(),
                attribute: attribute.to_string(),
                ty: m.attr_type(),
                format: m.format.clone(),
                delimiter: m.delimiter,
                timezone,
            });
        }
        let mapped: BTreeSet<&str> = mappings.iter().map(|m| m.column.as_str()).collect();
        let mut unmapped: Vec<String> = file_columns
            .iter()
            .filter(|c| !mapped.contains(c.as_str()))
            .cloned()
            .collect();
        let required_attr = |attr: &str| -> Result<usize, MappingError> {
            columns
                .iter()
                .position(|c| c.attribute == attr)
                .ok_or_else(|| MappingError::MissingColumn {
                    column: mappings
                        .iter()
                        .find(|m| m.attribute.as_deref() == Some(attr))
                        .map_or_else(|| attr.to_string(), |m| m.column.clone()),
                    purpose: attr.to_string(),
                    found: found(),
                })
        };
        let raw_column = |name: &str, purpose: &str| -> Result<KeySource, MappingError> {
            position
                .get(name)
                .map(|&index| KeySource::Column {
                    index,
                    name: name.to_string(),
                })
                .ok_or_else(|| MappingError::MissingColumn {
                    column: name.to_string(),
                    purpose: purpose.to_string(),
                    found: found(),
                })
        };
        let (key, event_time) = match &config.kind {
            ImportKind::RegisteredUsers {} => (KeySource::Attribute(required_attr(USER_ID)?), None),
            ImportKind::Events { .. } => (
                KeySource::Attribute(required_attr(USER_ID)?),
                Some(required_attr(EVENT_TIME)?),
            ),
            ImportKind::AnonymousUsers { identifier_column } => (
                raw_column(identifier_column, "anonymous user identifier")?,
                None,
            ),
            ImportKind::Auxiliary { key_column, .. } => {
                (raw_column(key_column, "auxiliary data key")?, None)
            }
        };
        // The key column of anonymous and auxiliary imports is not "unmapped".
        if let KeySource::Column { name, .. } = &key {
            unmapped.retain(|c| c != name);
        }
        Ok(Self {
            columns,
            key,
            event_time,
            unmapped,
            absent,
        })
    }

    /// Maps one row into `out` (reusing its buffers). On failure every bad column of the
    /// row is returned, so the report shows them all at once.
    pub fn map_row(&self, row: &Row, out: &mut MappedRow) -> Result<(), Vec<RowError>> {
        out.row = row.number();
        out.key.clear();
        out.event_time = None;
        out.attributes.clear();
        let mut errors = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            let Some(raw) = row.get(c.index) else {
                continue;
            };
            let opts = ValueOptions {
                datetime_format: c.format.as_ref(),
                timezone: c.timezone,
                list_delimiter: c.delimiter,
            };
            match parse_value(raw, c.ty, &opts) {
                Ok(Some(value)) => match value {
                    Value::DateTime(t) if Some(i) == self.event_time => out.event_time = Some(t),
                    Value::String(s) if matches!(self.key, KeySource::Attribute(k) if k == i) => {
                        out.key = s;
                    }
                    value if c.written => out.attributes.push((c.slot, value)),
                    _ => {}
                },
                Ok(None) => {}
                Err(e) => errors.push(row_error(row, Some(&c.column), e.to_string())),
            }
        }
        match &self.key {
            KeySource::Attribute(i) => {
                if out.key.is_empty()
                    && !errors
                        .iter()
                        .any(|e| e.column.as_deref() == Some(&self.columns[*i].column))
                {
                    errors.push(row_error(
                        row,
                        Some(&self.columns[*i].column),
                        format!(
                            "`{}` is empty; every row needs one",
                            self.columns[*i].attribute
                        ),
                    ));
                }
            }
            KeySource::Column { index, name } => match row.get(*index).map(str::trim) {
                Some(v) if !v.is_empty() => out.key.push_str(v),
                _ => errors.push(row_error(
                    row,
                    Some(name),
                    "the identifier is empty; every row needs one".into(),
                )),
            },
        }
        if let Some(i) = self.event_time
            && out.event_time.is_none()
            && !errors
                .iter()
                .any(|e| e.column.as_deref() == Some(&self.columns[i].column))
        {
            errors.push(row_error(
                row,
                Some(&self.columns[i].column),
                "the event time is empty; every event needs one".into(),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The mapped file columns, in mapping order.
    pub fn mapped_columns(&self) -> impl Iterator<Item = (&str, &str, AttrType)> {
        self.columns
            .iter()
            .map(|c| (c.column.as_str(), c.attribute.as_str(), c.ty))
    }

    /// The attribute name of a mapped row's slot.
    pub fn name(&self, slot: u32) -> Option<&str> {
        self.columns
            .iter()
            .find(|c| c.slot == slot)
            .map(|c| c.attribute.as_str())
    }
}

fn row_error(row: &Row, column: Option<&str>, reason: String) -> RowError {
    RowError {
        row: row.number(),
        column: column.map(str::to_string),
        reason,
        raw: row.raw(),
    }
}

/// A type to suggest for a column in the preview, from a sample value.
pub fn suggest_type(sample: &str) -> AttrType {
    let s = sample.trim();
    let utc = ValueOptions {
        datetime_format: None,
        timezone: Tz::UTC,
        list_delimiter: None,
    };
    if s.is_empty() {
        return AttrType::String;
    }
    if s.starts_with('[') && s.ends_with(']') {
        return AttrType::List;
    }
    for ty in [AttrType::Integer, AttrType::Number, AttrType::Boolean] {
        // `0`/`1` read as booleans too, but a number is the likelier meaning.
        if parse_value(s, ty, &utc).is_ok() {
            return ty;
        }
    }
    if s.len() >= 8 && parse_value(s, AttrType::Datetime, &utc).is_ok() {
        return AttrType::Datetime;
    }
    AttrType::String
}

/// Date-time formats a column's values are tried against: MoEngage's first (each date
/// alone, then with a time, with fractions, with a zone; the exact form before the
/// one whose fraction is optional), then ISO 8601, then common patterns MoEngage's
/// list lacks (month first, dots, no separators).
const DATETIME_CANDIDATES: &[&str] = &[
    "YYYY-MM-DD",
    "YYYY/MM/DD",
    "DD/MM/YYYY",
    "DD-MM-YYYY",
    "YYYY-MM-DD hh:mm:ss",
    "YYYY/MM/DD hh:mm:ss",
    "DD/MM/YYYY hh:mm:ss",
    "DD-MM-YYYY hh:mm:ss",
    "YYYY-MM-DD hh:mm:ss.s",
    "YYYY/MM/DD hh:mm:ss.s",
    "DD/MM/YYYY hh:mm:ss.s",
    "DD-MM-YYYY hh:mm:ss.s",
    "YYYY-MM-DD hh:mm:ss[.s]",
    "YYYY/MM/DD hh:mm:ss[.s]",
    "DD/MM/YYYY hh:mm:ss[.s]",
    "DD-MM-YYYY hh:mm:ss[.s]",
    "YYYY-MM-DDThh:mm:ssTZD",
    "YYYY/MM/DDThh:mm:ssTZD",
    "DD/MM/YYYYThh:mm:ssTZD",
    "DD-MM-YYYYThh:mm:ssTZD",
    "YYYY-MM-DDThh:mm:ss.sTZD",
    "YYYY/MM/DDThh:mm:ss.sTZD",
    "DD/MM/YYYYThh:mm:ss.sTZD",
    "DD-MM-YYYYThh:mm:ss.sTZD",
    "YYYY-MM-DDThh:mm:ss[.s]TZD",
    "YYYY/MM/DDThh:mm:ss[.s]TZD",
    "DD/MM/YYYYThh:mm:ss[.s]TZD",
    "DD-MM-YYYYThh:mm:ss[.s]TZD",
    "iso8601",
    "%m/%d/%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%d.%m.%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y%m%d",
    "%Y%m%d%H%M%S",
    "%Y-%m-%d %H:%M",
];

/// The first date-time format that reads every non-empty value (a column's values in
/// the fetched rows), for the set-up to offer; None when there is no value or no
/// format reads them all.
pub fn suggest_datetime_format<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Option<&'static str> {
    let values: Vec<&str> = values
        .into_iter()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        return None;
    }
    DATETIME_CANDIDATES.iter().copied().find(|candidate| {
        ValueDateTimeFormat::parse(candidate).is_ok_and(|format| {
            values
                .iter()
                .all(|v| format.parse_value(v, Tz::UTC).is_ok())
        })
    })
}

impl fmt::Display for MappedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {} key `{}`", self.row, self.key)
    }
}

#[cfg(test)]
mod tests;
