//! The `mapping` section of an import config, as data: which column becomes which
//! attribute ([`ColumnMapping`]), inline or from a manifest file ([`MappingSpec`]), and
//! the standard attributes whose types a column defaults to.
//!
//! These are the config document's own types, so they know nothing of the config:
//! `config` uses them, and [`crate::rows::mapping`] checks them against a config's kind and
//! binds them to a file's columns.

use serde::{Deserialize, Serialize};

use crate::model::values::{AttrType, ValueDateTimeFormat};

/// The attribute that identifies a registered user (and the user of an event).
pub const USER_ID: &str = "user_id";
/// The attribute that carries an event's time.
pub const EVENT_TIME: &str = "event_time";

/// A standard attribute: our name, MoEngage's key, the types it accepts (first is the default).
#[derive(Debug, Clone, Copy)]
pub struct StandardAttribute {
    pub name: &'static str,
    pub moengage_key: &'static str,
    pub types: &'static [AttrType],
    pub description: &'static str,
}

/// The catalog of standard attributes. Anything else mapped is a custom attribute.
pub const CATALOG: &[StandardAttribute] = &[
    StandardAttribute {
        name: USER_ID,
        moengage_key: "uid",
        types: &[AttrType::String],
        description: "the user's unique id in your systems",
    },
    StandardAttribute {
        name: "name",
        moengage_key: "u_n",
        types: &[AttrType::String],
        description: "full name",
    },
    StandardAttribute {
        name: "first_name",
        moengage_key: "u_fn",
        types: &[AttrType::String],
        description: "first name",
    },
    StandardAttribute {
        name: "last_name",
        moengage_key: "u_ln",
        types: &[AttrType::String],
        description: "last name",
    },
    StandardAttribute {
        name: "email",
        moengage_key: "u_em",
        types: &[AttrType::String],
        description: "email address",
    },
    StandardAttribute {
        name: "mobile",
        moengage_key: "u_mb",
        types: &[AttrType::String],
        description: "mobile number, with country code",
    },
    StandardAttribute {
        name: "gender",
        moengage_key: "u_gd",
        types: &[AttrType::String],
        description: "gender",
    },
    StandardAttribute {
        name: "birthday",
        moengage_key: "u_bd",
        types: &[AttrType::Datetime],
        description: "date of birth",
    },
    StandardAttribute {
        name: EVENT_TIME,
        moengage_key: "event_time",
        types: &[AttrType::Datetime],
        description: "when the event happened (events only)",
    },
];

pub fn standard(name: &str) -> Option<&'static StandardAttribute> {
    CATALOG.iter().find(|a| a.name == name)
}

/// One column's mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMapping {
    /// The column name in the file header (for JSON, a key or `parent.child` path).
    pub column: String,
    /// The attribute it becomes; a standard attribute or a new custom one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// Defaults to the standard attribute's type, or `string` for a custom attribute.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub attr_type: Option<AttrType>,
    /// For `datetime`: one of MoEngage's format names or a strftime pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ValueDateTimeFormat>,
    /// For `list`: the item delimiter (default `,`; `[a|b]` is always read as a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<char>,
    /// Leave this column out of the import.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip: bool,
}

impl ColumnMapping {
    pub fn attr_type(&self) -> AttrType {
        self.attr_type.unwrap_or_else(|| {
            self.attribute
                .as_deref()
                .and_then(standard)
                .map_or(AttrType::String, |a| a.types[0])
        })
    }
}

/// Where the mapping comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawMappingSpec", into = "RawMappingSpec")]
pub enum MappingSpec {
    /// Inline: `{"columns": [...]}`.
    Columns { columns: Vec<ColumnMapping> },
    /// A manifest file in the import's folder, read with the import's credentials:
    /// `{"manifest": "mapping.json"}` (a key relative to the folder).
    Manifest { manifest: String },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMappingSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    columns: Option<Vec<ColumnMapping>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manifest: Option<String>,
}

impl TryFrom<RawMappingSpec> for MappingSpec {
    type Error = String;
    fn try_from(raw: RawMappingSpec) -> Result<Self, String> {
        match (raw.columns, raw.manifest) {
            (Some(columns), None) => Ok(Self::Columns { columns }),
            (None, Some(manifest)) => Ok(Self::Manifest { manifest }),
            _ => Err("mapping: give either `columns` (inline) or `manifest` (a mapping file in the folder), not both".into()),
        }
    }
}

impl From<MappingSpec> for RawMappingSpec {
    fn from(spec: MappingSpec) -> Self {
        match spec {
            MappingSpec::Columns { columns } => Self {
                columns: Some(columns),
                manifest: None,
            },
            MappingSpec::Manifest { manifest } => Self {
                columns: None,
                manifest: Some(manifest),
            },
        }
    }
}
