//! Parsing a config strictly and naming every problem with its field.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::import::{Credentials, Encryption, ImportConfig, ImportKind, MAX_PREVIOUS_KEYS};
use crate::error::{Classify, ErrorClass};
use crate::model::ledger::MAX_FILE_KEY_BYTES;
use crate::model::naming;

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
                    .and_then(crate::model::alert::topic_arn_problem)
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
pub(super) fn valid_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
}
