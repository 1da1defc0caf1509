//! The import config's types, as the operator writes them.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::secret::SecretRef;
use crate::model::mapping_spec::{ColumnMapping, MappingSpec};
use crate::model::naming::{DateTimeFormat, FilePattern, FileType};
use crate::model::schedule::Schedule;

/// One import, as the operator writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// Stable identifier: lowercase letters, digits and `-`, 1 to 64 characters.
    pub id: String,
    /// A name people read in emails and the API.
    pub name: String,
    #[serde(default)]
    pub status: ImportStatus,
    pub kind: ImportKind,
    pub source: Source,
    #[serde(default)]
    pub file_type: FileType,
    /// CSV field delimiter, one ASCII character (default `,`).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    pub mapping: MappingSpec,
    pub schedule: Schedule,
    /// The app timezone: schedules run in it, and date-times without an offset are read in it
    /// when the mapping says so.
    #[serde(default = "default_timezone")]
    pub timezone: Tz,
    #[serde(default)]
    pub notifications: Notifications,
    /// User imports: the segment every user a run imports joins (created when the
    /// config is put; archived segments still get the users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<crate::model::segment::SegmentRef>,
    /// A new file whose plaintext this import already imported under another name:
    /// `import` it, import it and `warn` (the default), or `skip` it.
    #[serde(default, skip_serializing_if = "DuplicateContent::is_default")]
    pub on_duplicate_content: DuplicateContent,
    /// What happens to each source file once it has its outcome: tag, move, delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_processing: Option<crate::model::post_process::PostProcessing>,
}

fn default_delimiter() -> char {
    ','
}

fn default_timezone() -> Tz {
    Tz::UTC
}

/// What an import does with a file whose content it already imported under another
/// name (by the SHA-256 of the plaintext).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateContent {
    /// Import it; the ledger still keeps its fingerprint.
    Import,
    /// Import it, and say in the run's email and history which file it repeats.
    #[default]
    Warn,
    /// Do not import it (the file reads as successful, 0 rows, naming the earlier
    /// file). The fingerprint is taken in a pass before any row is written.
    Skip,
}

impl DuplicateContent {
    pub fn is_default(&self) -> bool {
        *self == Self::Warn
    }
}

/// Lifecycle of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    #[default]
    Active,
    /// Stopped by the operator; never runs again.
    Archived,
    /// A one-time import that has run.
    Completed,
    /// Not runnable (e.g. a duplicate of another active import); the reason is on the item.
    Invalid,
}

impl ImportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
            Self::Completed => "completed",
            Self::Invalid => "invalid",
        }
    }
}

/// What the rows are.
///
/// Variants without fields are written `{}`: serde ignores unknown fields next to the
/// tag of a unit variant, and a typo must never pass silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ImportKind {
    /// Registered users keyed by the column mapped to `user_id`; upserts only mapped attributes.
    RegisteredUsers {},
    /// Anonymous users keyed by the value of `identifier_column`.
    AnonymousUsers { identifier_column: String },
    /// Events named `event_name`, for the user in the `user_id` column at `event_time`.
    Events {
        event_name: String,
        /// How an event time without an offset is read: in UTC or in the app timezone.
        #[serde(default)]
        event_time_in: EventTimeZone,
    },
    /// Auxiliary data keyed by `key_column`, kept for `retention_days` (DynamoDB TTL).
    Auxiliary {
        dataset: String,
        key_column: String,
        retention_days: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventTimeZone {
    #[default]
    Utc,
    App,
}

impl ImportKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::RegisteredUsers {} | Self::AnonymousUsers { .. } => "users",
            Self::Events { .. } => "events",
            Self::Auxiliary { .. } => "auxiliary",
        }
    }

    pub fn sub_type(&self) -> &str {
        match self {
            Self::RegisteredUsers {} => "registered",
            Self::AnonymousUsers { .. } => "anonymous",
            Self::Events { event_name, .. } => event_name,
            Self::Auxiliary { dataset, .. } => dataset,
        }
    }

    /// MoEngage's default file prefix for the kind.
    pub fn default_prefix(&self) -> String {
        match self {
            Self::RegisteredUsers {} => "registered_user_data_".into(),
            Self::AnonymousUsers { .. } => "anonymous_user_data_".into(),
            Self::Events { event_name, .. } => format!("{event_name}_"),
            Self::Auxiliary { .. } => "aux_data_".into(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::RegisteredUsers {} => "registered users".into(),
            Self::AnonymousUsers { .. } => "anonymous users".into(),
            Self::Events { event_name, .. } => format!("events `{event_name}`"),
            Self::Auxiliary { dataset, .. } => format!("auxiliary data `{dataset}`"),
        }
    }
}

/// Where the files are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub bucket: String,
    /// The bucket's region; found from the bucket when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Folder path inside the bucket, without leading or trailing `/`.
    pub folder: String,
    /// File name prefix; defaults to MoEngage's prefix for the kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_prefix: Option<String>,
    pub datetime_format: DateTimeFormat,
    #[serde(default)]
    pub credentials: Credentials,
}

/// How to reach the bucket. Secrets are references to Secrets Manager, never values.
/// (`Default {}` is a struct variant for the reason [`ImportKind`] says.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Credentials {
    /// The Lambda's own role.
    Default {},
    /// The preferred way into a customer's bucket: a role they trust us to assume.
    AssumeRole {
        role_arn: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_id: Option<String>,
    },
    /// An access key whose secret is kept in Secrets Manager.
    AccessKey {
        access_key_id: String,
        secret_access_key_ref: SecretRef,
    },
}

impl Default for Credentials {
    fn default() -> Self {
        Self::Default {}
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Encryption {
    Pgp {
        private_key_ref: SecretRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        passphrase_ref: Option<SecretRef>,
        /// Keys kept through a rotation: a file encrypted to one of them still
        /// decrypts, and its record says which key opened it, so the operator sees when
        /// a previous key is no longer used and can drop it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        previous_keys: Vec<PgpKeyRef>,
        /// ASCII-armored public key of the signer; when set, every file must carry a valid
        /// signature by it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signer_public_key: Option<String>,
    },
}

/// A private key kept through a rotation, and its passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgpKeyRef {
    pub private_key_ref: SecretRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_ref: Option<SecretRef>,
}

/// The most previous keys a rotation keeps: each is a Secrets Manager read per file.
pub const MAX_PREVIOUS_KEYS: usize = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    #[serde(default)]
    pub recipients: Vec<String>,
    #[serde(default = "yes")]
    pub on_success: bool,
    #[serde(default = "yes")]
    pub on_failure: bool,
    /// Thresholds above which a run needs attention: its email goes out even where
    /// `on_success` is false, and its alerts say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_when: Option<crate::model::alert::AlertWhen>,
    /// This import's own SNS topic for run summaries (the stack's topic gets them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_topic_arn: Option<String>,
    /// This import's own HTTPS webhook for run summaries, signed with an HMAC key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<crate::model::alert::Webhook>,
}

fn yes() -> bool {
    true
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            recipients: Vec::new(),
            on_success: true,
            on_failure: true,
            alert_when: None,
            sns_topic_arn: None,
            webhook: None,
        }
    }
}

impl ImportConfig {
    /// The file name prefix in force: the configured one or the kind's default.
    pub fn file_prefix(&self) -> String {
        self.source
            .file_prefix
            .clone()
            .unwrap_or_else(|| self.kind.default_prefix())
    }

    pub fn file_pattern(&self) -> FilePattern {
        FilePattern {
            folder: self.source.folder.clone(),
            prefix: self.file_prefix(),
            format: self.source.datetime_format.clone(),
            file_type: self.file_type,
        }
    }

    /// Two active imports with the same key would import the same files twice.
    pub fn duplicate_key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.kind.type_name(),
            self.kind.sub_type(),
            self.source.bucket,
            self.source.folder
        )
    }

    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// The inline mapping, when the config has one (not a manifest file).
    pub fn inline_columns(&self) -> Option<&[ColumnMapping]> {
        match &self.mapping {
            MappingSpec::Columns { columns } => Some(columns),
            MappingSpec::Manifest { .. } => None,
        }
    }
}
