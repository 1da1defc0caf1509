//! The import config: one document per import, written by the operator, stored as
//! one item of the configs table, documented in `docs/config.md` and
//! `docs/config.schema.json`.
//!
//! Parsing is strict (unknown fields are errors, so a typo never silently disables
//! a setting) and validation returns every problem at once, each naming its field.

use std::fmt;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::{Classify, ErrorClass};
use crate::model::ledger::MAX_FILE_KEY_BYTES;
use crate::model::mapping_spec::{ColumnMapping, MappingSpec};
use crate::model::naming::{self, DateTimeFormat, FilePattern, FileType};
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
    pub post_processing: Option<crate::notify::post_process::PostProcessing>,
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

/// A Secrets Manager secret: its name or ARN, optionally `#key` to pick one key of a
/// JSON secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretRef(pub String);

impl SecretRef {
    /// (secret id, json key)
    pub fn parts(&self) -> (&str, Option<&str>) {
        match self.0.rsplit_once('#') {
            Some((id, key)) if !key.is_empty() => (id, Some(key)),
            _ => (&self.0, None),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
    pub alert_when: Option<crate::notify::alerts::AlertWhen>,
    /// This import's own SNS topic for run summaries (the stack's topic gets them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_topic_arn: Option<String>,
    /// This import's own HTTPS webhook for run summaries, signed with an HMAC key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<crate::notify::alerts::Webhook>,
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

/// One thing wrong with a config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the config is not valid JSON for an import: {0}")]
    Syntax(String),
    #[error("the config has {} problem(s):\n{}", .0.len(), list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Classify for ConfigError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// The longest dataset name: it is the auxiliary table's partition key and part of the
/// configs table's duplicate lock key.
const MAX_DATASET_CHARS: usize = 100;

/// Field names that would hold a secret in plaintext; configs carry `*_ref` instead.
const PLAINTEXT_SECRET_FIELDS: &[(&str, &str)] = &[
    ("secret_access_key", "secret_access_key_ref"),
    ("aws_secret_access_key", "secret_access_key_ref"),
    ("private_key", "private_key_ref"),
    ("passphrase", "passphrase_ref"),
    ("password", "passphrase_ref"),
];

impl ImportConfig {
    /// Parses and validates a config document.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        Self::from_value(value)
    }

    pub fn from_value(value: serde_json::Value) -> Result<Self, ConfigError> {
        // Secrets first: serde's "unknown field" would hide why the field is refused.
        let mut problems = Vec::new();
        find_plaintext_secrets(&value, "", &mut problems);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        let config: Self = serde_path_to_error(value)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a config for a preview: everything is checked but the mapping, which an
    /// operator usually writes after seeing the file's columns.
    pub fn for_preview(value: serde_json::Value) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        find_plaintext_secrets(&value, "", &mut problems);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        let config: Self = serde_path_to_error(value)?;
        let problems: Vec<Problem> = config
            .problems()
            .into_iter()
            .filter(|p| !p.field.starts_with("mapping"))
            .collect();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Every problem with the config, each naming its field.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Problems::default();
        if self.id.is_empty()
            || self.id.len() > 64
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            p.add("id", "use 1 to 64 lowercase letters, digits and `-`");
        }
        if self.name.trim().is_empty() {
            p.add("name", "give the import a name");
        }
        match &self.kind {
            ImportKind::RegisteredUsers {} => {}
            ImportKind::AnonymousUsers { identifier_column } => {
                if identifier_column.trim().is_empty() {
                    p.add(
                        "kind.identifier_column",
                        "name the column that identifies an anonymous user",
                    );
                }
            }
            ImportKind::Events { event_name, .. } => {
                if event_name.trim().is_empty() {
                    p.add("kind.event_name", "name the event");
                } else if event_name.len() > 100 {
                    p.add("kind.event_name", "at most 100 characters");
                }
            }
            ImportKind::Auxiliary {
                dataset,
                key_column,
                retention_days,
            } => {
                if dataset.trim().is_empty() {
                    p.add("kind.dataset", "name the dataset");
                } else if dataset.chars().count() > MAX_DATASET_CHARS {
                    p.add(
                        "kind.dataset",
                        format!("at most {MAX_DATASET_CHARS} characters"),
                    );
                }
                if key_column.trim().is_empty() {
                    p.add("kind.key_column", "name the column that keys a record");
                }
                if *retention_days == 0 || *retention_days > 3650 {
                    p.add("kind.retention_days", "between 1 and 3650 days");
                }
            }
        }
        self.source_problems(&mut p);
        if !valid_delimiter(self.delimiter) {
            p.add(
                "delimiter",
                "use one ASCII character other than a quote, a line break (`\\n`, `\\r`) or NUL",
            );
        }
        if let Some(Encryption::Pgp {
            private_key_ref,
            previous_keys,
            ..
        }) = &self.encryption
        {
            if previous_keys.len() > MAX_PREVIOUS_KEYS {
                p.add(
                    "encryption.previous_keys",
                    format!(
                        "at most {MAX_PREVIOUS_KEYS} previous keys; drop the oldest once no file uses it (`s3imports runs` shows which key opened each file)"
                    ),
                );
            }
            for (i, k) in previous_keys.iter().enumerate() {
                if k.private_key_ref == *private_key_ref {
                    p.add(
                        format!("encryption.previous_keys[{i}].private_key_ref"),
                        "is the current key: a previous key must be another secret",
                    );
                }
            }
        }
        if let Some(segment) = &self.segment {
            if !matches!(
                self.kind,
                ImportKind::RegisteredUsers {} | ImportKind::AnonymousUsers { .. }
            ) {
                p.add(
                    "segment",
                    "only user imports (registered or anonymous) add to a segment",
                );
            }
            if let Some(problem) = crate::model::segment::name_problem(&segment.name) {
                p.add("segment.name", problem);
            }
            if segment
                .description
                .as_ref()
                .is_some_and(|d| d.chars().count() > crate::model::segment::MAX_DESCRIPTION)
            {
                p.add(
                    "segment.description",
                    format!(
                        "at most {} characters",
                        crate::model::segment::MAX_DESCRIPTION
                    ),
                );
            }
        }
        let n = &self.notifications;
        let alert_problems = n
            .alert_when
            .iter()
            .flat_map(|w| w.problems())
            .chain(n.webhook.iter().flat_map(|w| w.problems()))
            .chain(
                n.sns_topic_arn
                    .as_deref()
                    .and_then(crate::notify::alerts::topic_arn_problem)
                    .map(|why| ("notifications.sns_topic_arn".to_string(), why)),
            );
        for (field, message) in alert_problems {
            p.add(field, message);
        }
        if let Some(post) = &self.post_processing {
            for (field, message) in post.problems() {
                p.add(field, message);
            }
        }
        // The parser the processor uses: a key that would fail every file fails here.
        if let Some(Encryption::Pgp {
            signer_public_key: Some(key),
            ..
        }) = &self.encryption
            && let Err(e) = crate::codec::pgp::parse_signer_public_key(key)
        {
            p.add(
                "encryption.signer_public_key",
                format!(
                    "{e}: give the signer's whole ASCII-armored public key (-----BEGIN PGP PUBLIC KEY BLOCK----- ... -----END PGP PUBLIC KEY BLOCK-----)"
                ),
            );
        }
        for problem in self.mapping.problems(&self.kind) {
            p.0.push(problem);
        }
        for message in self.schedule.validate() {
            p.add("schedule", message);
        }
        for (i, r) in self.notifications.recipients.iter().enumerate() {
            if !looks_like_email(r) {
                p.add(
                    format!("notifications.recipients[{i}]"),
                    format!("`{r}` is not an email address"),
                );
            }
        }
        // Values become S3 keys, DynamoDB keys and header names, where a NUL is at best
        // refused later on every run.
        if let Ok(value) = serde_json::to_value(self) {
            find_nul(&value, "", &mut p);
        }
        p.0
    }

    fn source_problems(&self, p: &mut Problems) {
        let s = &self.source;
        if !valid_bucket_name(&s.bucket) {
            p.add(
                "source.bucket",
                format!("`{}` is not a valid S3 bucket name", s.bucket),
            );
        }
        if let Some(region) = &s.region
            && (region.is_empty()
                || !region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        {
            p.add(
                "source.region",
                format!("`{region}` is not an AWS region name"),
            );
        }
        if s.folder.trim().is_empty() {
            p.add(
                "source.folder",
                "give a folder: files are never imported from the bucket root",
            );
        } else if s.folder.starts_with('/') || s.folder.ends_with('/') {
            p.add(
                "source.folder",
                "write the folder without a leading or trailing `/`",
            );
        } else if s.folder.split('/').any(str::is_empty) {
            p.add("source.folder", "the folder path has an empty part (`//`)");
        } else {
            // Every key the import can record is `folder/name`: it must fit the ledger's
            // sort key (and S3's 1,024-byte keys), or the import fails on every run.
            let name = self.file_pattern().max_name_len();
            let key = s.folder.len() + 1 + name;
            if key > MAX_FILE_KEY_BYTES {
                p.add(
                    "source.folder",
                    format!(
                        "the folder is too long: it is {} bytes, and with the longest file name this import matches ({name} bytes) a key would be {key} bytes, over the {MAX_FILE_KEY_BYTES} bytes the ledger can record; use a folder of at most {} bytes",
                        s.folder.len(),
                        MAX_FILE_KEY_BYTES.saturating_sub(name + 1)
                    ),
                );
            }
        }
        match &s.file_prefix {
            Some(prefix) => {
                if let Err(e) = naming::validate_prefix(prefix) {
                    p.add("source.file_prefix", e.to_string());
                }
            }
            // The kind's default (an event name and `_`) must make a valid prefix too: a
            // `/` in it would put every name in a sub-folder, never listed.
            None => {
                if let Err(e) = naming::validate_prefix(&self.kind.default_prefix()) {
                    p.add(
                        "source.file_prefix",
                        format!(
                            "the default file prefix `{}` (the event name and `_`) cannot be used: {e}; set `source.file_prefix`",
                            self.kind.default_prefix()
                        ),
                    );
                }
            }
        }
        match &s.credentials {
            Credentials::Default {} => {}
            Credentials::AssumeRole {
                role_arn,
                external_id,
            } => {
                if !role_arn.starts_with("arn:") || !role_arn.contains(":role/") {
                    p.add(
                        "source.credentials.role_arn",
                        format!("`{role_arn}` is not an IAM role ARN"),
                    );
                }
                match external_id.as_deref() {
                    // Without one, anyone who learns the role's name could have a stack
                    // like ours read the customer's bucket (the confused deputy).
                    None => p.add(
                        "source.credentials.external_id",
                        "an assumed role needs an external id, which the role's trust policy requires (docs/operating.md, security model)",
                    ),
                    Some(e) if e.len() < 2 || e.len() > 1224 => {
                        p.add("source.credentials.external_id", "use 2 to 1224 characters");
                    }
                    Some(_) => {}
                }
            }
            Credentials::AccessKey {
                access_key_id,
                secret_access_key_ref,
            } => {
                if access_key_id.len() < 16
                    || !access_key_id.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    p.add(
                        "source.credentials.access_key_id",
                        "not an access key id (16 or more letters and digits)",
                    );
                }
                if secret_access_key_ref.0.trim().is_empty() {
                    p.add(
                        "source.credentials.secret_access_key_ref",
                        "name the Secrets Manager secret that holds the secret access key",
                    );
                }
            }
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

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

    /// The config as JSON with every secret reference replaced, for the API and logs.
    pub fn redacted(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        redact(&mut value);
        value
    }
}

fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k.ends_with("_ref") || k == "external_id" {
                    *v = serde_json::Value::String("***".into());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// serde's own messages, with the path of the field that failed.
fn serde_path_to_error(value: serde_json::Value) -> Result<ImportConfig, ConfigError> {
    ImportConfig::deserialize(value).map_err(|e| ConfigError::Syntax(e.to_string()))
}

/// Visits every value of a JSON document with its field path (`a.b[2].c`) and, inside
/// an object, its key; `visit` says whether to look inside the value.
fn walk(
    value: &serde_json::Value,
    path: &str,
    key: Option<&str>,
    visit: &mut dyn FnMut(&str, Option<&str>, &serde_json::Value) -> bool,
) {
    if !visit(path, key, value) {
        return;
    }
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let field = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(v, &field, Some(k), visit);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{path}[{i}]"), None, visit);
            }
        }
        _ => {}
    }
}

fn find_plaintext_secrets(value: &serde_json::Value, path: &str, out: &mut Vec<Problem>) {
    walk(value, path, None, &mut |field, key, v| {
        if let Some((_, instead)) =
            key.and_then(|k| PLAINTEXT_SECRET_FIELDS.iter().find(|(f, _)| *f == k))
        {
            out.push(Problem::new(
                field,
                format!(
                    "secrets are never stored in a config: put the value in AWS Secrets Manager and give its name or ARN as `{instead}`"
                ),
            ));
            return false;
        }
        if let serde_json::Value::String(s) = v
            && s.contains("PRIVATE KEY")
        {
            out.push(Problem::new(
                field,
                "this looks like a private key; store it in AWS Secrets Manager and give `private_key_ref`",
            ));
        }
        true
    });
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Fields whose own rule already refuses a NUL.
const NUL_CHECKED_ELSEWHERE: &[&str] = &["delimiter"];

fn find_nul(value: &serde_json::Value, path: &str, p: &mut Problems) {
    walk(value, path, None, &mut |field, _, v| {
        if let serde_json::Value::String(s) = v
            && s.contains('\0')
            && !NUL_CHECKED_ELSEWHERE.contains(&field)
        {
            p.add(field, "a NUL character (\\u0000) is not allowed here");
        }
        true
    });
}

/// The CSV reader splits on one byte; a quote or a line break there would make every
/// row ambiguous.
fn valid_delimiter(c: char) -> bool {
    c.is_ascii() && !matches!(c, '"' | '\n' | '\r' | '\0')
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// S3's bucket naming rules (the common subset: 3-63 chars, lowercase, digits, `.`, `-`).
fn valid_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// An import as stored: the operator's config plus the state the service keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRecord {
    pub config: ImportConfig,
    pub status: ImportStatus,
    pub next_run_at: Option<chrono::DateTime<chrono::Utc>>,
    pub status_reason: Option<String>,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_run_id: Option<String>,
    pub last_run_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The newest file key listed, for listing with `StartAfter`.
    pub newest_key: Option<String>,
    /// When the last run started by hand began (one per [`crate::discover::MANUAL_RUN_GAP`]).
    pub last_manual_run_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "id": "users-daily",
            "name": "Users daily",
            "kind": {"type": "registered_users"},
            "source": {
                "bucket": "acme-exports",
                "folder": "moengage/users",
                "datetime_format": "yyyymmdd"
            },
            "mapping": {"columns": [
                {"column": "ID", "attribute": "user_id"},
                {"column": "Email", "attribute": "email"}
            ]},
            "schedule": {"type": "daily", "time": "09:30"},
            "timezone": "Asia/Kolkata",
            "notifications": {"recipients": ["ops@acme.example"]}
        })
    }

    #[test]
    fn parses_a_valid_config_with_defaults() {
        let c = ImportConfig::from_value(base()).unwrap();
        assert_eq!(c.status, ImportStatus::Active);
        assert_eq!(c.file_type, FileType::Csv);
        assert_eq!(c.delimiter, ',');
        assert_eq!(c.file_prefix(), "registered_user_data_");
        assert_eq!(c.timezone, chrono_tz::Asia::Kolkata);
        assert!(c.notifications.on_failure && c.notifications.on_success);
        assert_eq!(
            c.duplicate_key(),
            "users|registered|acme-exports|moengage/users"
        );
    }

    #[test]
    fn event_prefix_defaults_to_event_name() {
        let mut v = base();
        v["kind"] = serde_json::json!({"type": "events", "event_name": "Purchase Summary"});
        v["mapping"] = serde_json::json!({"columns": [
            {"column": "uid", "attribute": "user_id"},
            {"column": "at", "attribute": "event_time", "type": "datetime"}
        ]});
        let c = ImportConfig::from_value(v).unwrap();
        assert_eq!(c.file_prefix(), "Purchase Summary_");
        assert_eq!(
            c.duplicate_key(),
            "events|Purchase Summary|acme-exports|moengage/users"
        );
    }

    #[test]
    fn rejects_plaintext_secrets_naming_the_field() {
        let mut v = base();
        v["source"]["credentials"] = serde_json::json!({
            "type": "access_key", "access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        });
        let err = ImportConfig::from_value(v).unwrap_err();
        let ConfigError::Invalid(problems) = err else {
            panic!("expected problems")
        };
        assert_eq!(problems[0].field, "source.credentials.secret_access_key");
        assert!(problems[0].message.contains("secret_access_key_ref"));
        assert!(!problems[0].message.contains("wJalr"));
    }

    #[test]
    fn a_segment_is_for_user_imports_with_a_plain_name() {
        let mut v = base();
        v["segment"] = serde_json::json!({"name": "VIP customers", "description": "from the CRM"});
        assert!(ImportConfig::from_value(v.clone()).is_ok());
        v["segment"]["name"] = serde_json::json!("#segments");
        let p = problems_of(v.clone());
        assert_eq!(p[0].field, "segment.name");
        v["segment"]["name"] = serde_json::json!("ok");
        v["kind"] = serde_json::json!({"type": "events", "event_name": "Bought"});
        let p = problems_of(v);
        assert!(p.iter().any(|p| p.field == "segment"), "{p:?}");
    }

    #[test]
    fn rejects_an_inline_private_key() {
        let mut v = base();
        v["encryption"] = serde_json::json!({
            "type": "pgp", "private_key_ref": "-----BEGIN PGP PRIVATE KEY BLOCK-----\nabc"
        });
        let ConfigError::Invalid(problems) = ImportConfig::from_value(v).unwrap_err() else {
            panic!()
        };
        assert_eq!(problems[0].field, "encryption.private_key_ref");
    }

    #[test]
    fn returns_every_problem_at_once() {
        let mut v = base();
        v["id"] = "Users Daily".into();
        v["source"]["folder"] = "/moengage/users/".into();
        v["source"]["bucket"] = "Acme_Exports".into();
        v["source"]["file_prefix"] = "bad/prefix".into();
        v["notifications"]["recipients"] = serde_json::json!(["not-an-email"]);
        let ConfigError::Invalid(problems) = ImportConfig::from_value(v).unwrap_err() else {
            panic!()
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "id",
                "source.bucket",
                "source.folder",
                "source.file_prefix",
                "notifications.recipients[0]"
            ]
        );
    }

    #[test]
    fn root_folder_is_refused() {
        let mut v = base();
        v["source"]["folder"] = "".into();
        let ConfigError::Invalid(problems) = ImportConfig::from_value(v).unwrap_err() else {
            panic!()
        };
        assert_eq!(problems[0].field, "source.folder");
        assert!(problems[0].message.contains("bucket root"));
    }

    #[test]
    fn unknown_fields_are_errors() {
        let mut v = base();
        v["schedulee"] = "daily".into();
        let err = ImportConfig::from_value(v).unwrap_err().to_string();
        assert!(err.contains("schedulee"), "{err}");
    }

    #[test]
    fn redaction_hides_secret_references() {
        let mut v = base();
        v["encryption"] = serde_json::json!({
            "type": "pgp", "private_key_ref": "s3imports/pgp-key", "passphrase_ref": "s3imports/pgp-pass"
        });
        let c = ImportConfig::from_value(v).unwrap();
        let r = c.redacted().to_string();
        assert!(!r.contains("s3imports/pgp-key") && !r.contains("s3imports/pgp-pass"));
        assert!(r.contains("***"));
    }

    #[test]
    fn secret_ref_parts() {
        assert_eq!(SecretRef("a/b#key".into()).parts(), ("a/b", Some("key")));
        assert_eq!(
            SecretRef("arn:x:secret".into()).parts(),
            ("arn:x:secret", None)
        );
    }

    #[test]
    fn bucket_names() {
        assert!(valid_bucket_name("acme-exports.eu"));
        assert!(!valid_bucket_name("ab"));
        assert!(!valid_bucket_name("-acme"));
        assert!(!valid_bucket_name("Acme"));
    }

    fn problems_of(v: serde_json::Value) -> Vec<Problem> {
        match ImportConfig::from_value(v) {
            Err(ConfigError::Invalid(problems)) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn alerts_post_processing_and_duplicates_are_checked_field_by_field() {
        let mut v = base();
        v["notifications"] = serde_json::json!({
            "recipients": ["ops@acme.example"],
            "alert_when": {"rows_failed_percent": 150},
            "sns_topic_arn": "arn:aws:sqs:us-east-1:123456789012:q",
            "webhook": {"url": "http://hooks.acme.example/x", "signing_key_ref": "s3imports/k"}
        });
        v["post_processing"] = serde_json::json!({
            "move_to": {"failed": "../up"},
            "delete": ["failed"]
        });
        let fields: Vec<String> = problems_of(v).into_iter().map(|p| p.field).collect();
        for f in [
            "notifications.alert_when.rows_failed_percent",
            "notifications.sns_topic_arn",
            "notifications.webhook.url",
            "post_processing.move_to.failed",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} not in {fields:?}");
        }
        let mut v = base();
        v["on_duplicate_content"] = "ignore".into();
        assert!(
            syntax_error(v)
                .contains("unknown variant `ignore`, expected one of `import`, `warn`, `skip`")
        );
        let mut v = base();
        v["on_duplicate_content"] = "skip".into();
        assert_eq!(
            ImportConfig::from_value(v).unwrap().on_duplicate_content,
            DuplicateContent::Skip
        );
    }

    #[test]
    fn every_example_config_is_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.to_string_lossy().to_string();
            if !name.ends_with(".json") || name.ends_with(".mapping.json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            ImportConfig::from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            n += 1;
        }
        assert!(n >= 4, "{n} examples");
    }

    fn syntax_error(v: serde_json::Value) -> String {
        match ImportConfig::from_value(v) {
            Err(ConfigError::Syntax(s)) => s,
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_fields_next_to_a_variant_without_fields_are_errors() {
        let mut v = base();
        v["kind"] = serde_json::json!({"type": "registered_users", "bogus": 1});
        let err = syntax_error(v);
        assert!(err.contains("unknown field `bogus`"), "{err}");
        let mut v = base();
        v["source"]["credentials"] = serde_json::json!({
            "type": "default", "role_arn": "arn:aws:iam::123456789012:role/s3imports-x"
        });
        let err = syntax_error(v);
        assert!(err.contains("unknown field `role_arn`"), "{err}");
        // The valid forms read and write as before.
        let mut v = base();
        v["source"]["credentials"] = serde_json::json!({"type": "default"});
        let c = ImportConfig::from_value(v).unwrap();
        assert_eq!(c.kind, ImportKind::RegisteredUsers {});
        assert_eq!(c.source.credentials, Credentials::default());
        let written = serde_json::to_value(&c).unwrap();
        assert_eq!(
            written["kind"],
            serde_json::json!({"type": "registered_users"})
        );
        assert_eq!(
            written["source"]["credentials"],
            serde_json::json!({"type": "default"})
        );
        assert_eq!(ImportConfig::from_value(written).unwrap(), c);
    }

    #[test]
    fn an_event_name_that_cannot_be_a_prefix_needs_an_explicit_one() {
        // Found by `make fuzz`: the default prefix `Antarctica/Troll_` put every file name
        // in a sub-folder, so the import could never match a file.
        let events = |prefix: Option<&str>| {
            let mut v = base();
            v["kind"] = serde_json::json!({"type": "events", "event_name": "Antarctica/Troll"});
            v["mapping"]["columns"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"column": "at", "attribute": "event_time"}));
            if let Some(p) = prefix {
                v["source"]["file_prefix"] = p.into();
            }
            ImportConfig::from_value(v)
        };
        let Err(ConfigError::Invalid(p)) = events(None) else {
            panic!("accepted a prefix with a `/`")
        };
        assert!(
            p.iter()
                .any(|p| p.field == "source.file_prefix"
                    && p.message.contains("`Antarctica/Troll_`")),
            "{p:?}"
        );
        let c = events(Some("troll_")).unwrap();
        let example = format!("{}/{}", c.source.folder, c.file_pattern().example_name());
        assert!(c.file_pattern().match_key(&example).is_ok());
    }

    #[test]
    fn an_assumed_role_needs_an_external_id() {
        let mut v = base();
        v["source"]["credentials"] = serde_json::json!({
            "type": "assume_role", "role_arn": "arn:aws:iam::111122223333:role/s3imports-reader"
        });
        let Err(ConfigError::Invalid(p)) = ImportConfig::from_value(v.clone()) else {
            panic!("accepted without an external id")
        };
        assert_eq!(p[0].field, "source.credentials.external_id");
        assert!(
            p[0].message.contains("needs an external id"),
            "{}",
            p[0].message
        );
        v["source"]["credentials"]["external_id"] = "acme-s3imports".into();
        ImportConfig::from_value(v).unwrap();
    }

    #[test]
    fn the_folder_leaves_room_for_the_longest_key_in_the_ledger() {
        // The longest name base() matches: default prefix, yyyymmdd, .csv.gz.pgp.
        let name = "registered_user_data_20261127.csv.gz.pgp";
        let mut accepted = Vec::new();
        for len in 960..1000 {
            let folder = format!("f/{}", "x".repeat(len - 2));
            let mut v = base();
            v["source"]["folder"] = folder.clone().into();
            match ImportConfig::from_value(v) {
                Ok(c) => {
                    let key = format!("{folder}/{name}");
                    assert!(c.file_pattern().match_key(&key).is_ok());
                    accepted.push(key.len());
                }
                Err(ConfigError::Invalid(p)) => {
                    assert_eq!(p.len(), 1, "{p:?}");
                    assert_eq!(p[0].field, "source.folder");
                    assert!(p[0].message.contains("too long"), "{}", p[0].message);
                    let key = format!("{folder}/{name}");
                    assert!(key.len() > MAX_FILE_KEY_BYTES);
                }
                Err(e) => panic!("{e}"),
            }
        }
        // Every folder whose longest key fits is accepted, up to exactly the limit.
        assert_eq!(
            accepted.iter().max(),
            Some(&MAX_FILE_KEY_BYTES),
            "{accepted:?}"
        );
        // A long prefix leaves less room.
        let mut v = base();
        v["source"]["folder"] = "x".repeat(950).into();
        assert!(ImportConfig::from_value(v.clone()).is_ok());
        v["source"]["file_prefix"] = "p".repeat(100).into();
        assert_eq!(problems_of(v)[0].field, "source.folder");
    }

    #[test]
    fn delimiters_the_csv_reader_cannot_use_are_refused() {
        for bad in ["\r", "\n", "\u{0}", "\"", "é", "€"] {
            let mut v = base();
            v["delimiter"] = bad.into();
            let p = problems_of(v);
            assert_eq!(p.len(), 1, "{bad:?}: {p:?}");
            assert_eq!(p[0].field, "delimiter", "{bad:?}");
            assert!(p[0].message.contains("ASCII"), "{}", p[0].message);
        }
        for good in ["\t", ";", "|", ",", "\u{1}"] {
            let mut v = base();
            v["delimiter"] = good.into();
            assert!(ImportConfig::from_value(v).is_ok(), "{good:?}");
        }
    }

    const SIGNER: &str = concat!(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
        "\n",
        "mDMEawvjNBYJKwYBBAHaRw8BAQdA2TpvJ+p/vdS/usFOBBplfZDlz8DG97WlDfjK\n",
        "1rBPFeq0G1NpZ25lciA8c2lnbmVyQGV4YW1wbGUuY29tPoiQBBMWCAA4FiEEnKXh\n",
        "4r3JAHwb5Pebq6d7FjU8x7EFAmsL4zQCGwMFCwkIBwIGFQoJCAsCBBYCAwECHgEC\n",
        "F4AACgkQq6d7FjU8x7EzjgEAteqfVbCDh05Xts/psDZTuH3j2stW2JNDl0C9+ie3\n",
        "sVIA/AiPuOaGxTiBBSqgle5SWuUtZYb63apjia/jC4rW7zAL\n",
        "=tg9u\n",
        "-----END PGP PUBLIC KEY BLOCK-----\n",
    );

    #[test]
    fn a_signer_key_must_parse_as_processing_parses_it() {
        let with_signer = |key: &str| {
            let mut v = base();
            v["encryption"] = serde_json::json!({
                "type": "pgp", "private_key_ref": "s3imports/k", "signer_public_key": key
            });
            v
        };
        assert!(ImportConfig::from_value(with_signer(SIGNER)).is_ok());
        let lines: Vec<&str> = SIGNER.lines().collect();
        let truncated = [&lines[..4], &lines[lines.len() - 2..]].concat().join("\n");
        for bad in [
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----",
            truncated.as_str(),
            "mDMEawvjNBYJKwYBBAHaRw8BAQdA2TpvJ",
        ] {
            let p = problems_of(with_signer(bad));
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(p[0].field, "encryption.signer_public_key");
            assert!(
                p[0].message.starts_with(
                    "the signer's public key is not an ASCII-armored OpenPGP public key"
                ),
                "{}",
                p[0].message
            );
        }
    }

    #[test]
    fn nul_characters_are_refused_where_they_stand() {
        let mut v = base();
        v["source"]["folder"] = "moengage/us\u{0}ers".into();
        v["kind"] = serde_json::json!({"type": "events", "event_name": "Pur\u{0}chase"});
        v["mapping"]["columns"] = serde_json::json!([
            {"column": "ID", "attribute": "user_id"},
            {"column": "At", "attribute": "event_time", "type": "datetime"},
            {"column": "Em\u{0}ail", "attribute": "email"}
        ]);
        let p = problems_of(v);
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        for field in [
            "kind.event_name",
            "source.folder",
            "mapping.columns[2].column",
        ] {
            assert!(fields.contains(&field), "{field} not in {fields:?}");
        }
        assert!(p.iter().all(|p| !p.message.is_empty()));
        assert!(
            p.iter()
                .filter(|p| p.field == "source.folder")
                .any(|p| p.message.contains("NUL"))
        );
    }

    #[test]
    fn values_that_become_keys_are_bounded() {
        let mut v = base();
        v["kind"] = serde_json::json!({
            "type": "auxiliary", "dataset": "d".repeat(101), "key_column": "ID", "retention_days": 30
        });
        v["mapping"] = serde_json::json!({"columns": [{"column": "ID", "attribute": "code"}]});
        let p = problems_of(v.clone());
        assert_eq!(p[0].field, "kind.dataset");
        v["kind"]["dataset"] = "d".repeat(100).into();
        assert!(ImportConfig::from_value(v).is_ok());
        let mut v = base();
        v["id"] = "a".repeat(65).into();
        assert_eq!(problems_of(v)[0].field, "id");
        let mut v = base();
        v["source"]["datetime_format"] = format!("%Y%m%d{}", "-".repeat(100)).into();
        let err = syntax_error(v);
        assert!(err.contains("at most 100 characters"), "{err}");
    }
}
