//! Preview: the most recent file matching an import config, its columns with a
//! sample value and a suggested type each (and a date-time format its values match),
//! its top 5 rows, after decryption, and each of them the config's mapping would fail.
//! Errors carry MoEngage's messages and an HTTP status for the API.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::codec::limits::{Limits, bounded};
use crate::codec::reader::{FileError, ReadError, ReadOptions, Row, open_reader};
use crate::error::Classify;
use crate::model::config::{ConfigError, ImportConfig};
use crate::model::naming::FileType;
use crate::model::values::AttrType;
use crate::ports::{
    Configs, MSG_CHECK_FOLDER, MSG_INVALID_ACCESS_KEY, ObjectSource, Secrets, SourceError,
    StoreError,
};
use crate::process::error::ProcessError;
use crate::process::read::{keyring, mapping, unwrap_file};
use crate::rows::mapping::{
    ColumnMapping, CompiledMapping, MappedRow, MappingError, suggest_datetime_format, suggest_type,
};

pub const MSG_ZERO_ROWS: &str = "Found zero data rows in the file";
/// The most bytes of one row failure shown.
const MAX_FAILURE_BYTES: usize = 512;
/// Rows shown.
pub const TOP_ROWS: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub file: PreviewFile,
    pub columns: Vec<PreviewColumn>,
    /// The top rows, values in column order (null where absent).
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows among the top ones that could not be read, with the reason.
    pub row_errors: Vec<String>,
    /// File columns the mapping does not mention.
    pub unmapped_columns: Vec<String>,
    /// Mapped columns the file does not have (ignored on import).
    pub absent_columns: Vec<String>,
    /// Why the mapping would fail on this file, if it would.
    pub mapping_problem: Option<String>,
    /// Each problem of the top rows under the config's mapping, as the import would
    /// report it (`row N, column `c`: reason`); empty without a mapping.
    pub row_failures: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviewFile {
    pub bucket: String,
    pub key: String,
    pub name: String,
    pub size: u64,
    pub timestamp: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviewColumn {
    pub name: String,
    pub sample: Option<String>,
    pub suggested_type: AttrType,
    /// A date-time format every value of the top rows matches (a date-time column).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_format: Option<&'static str>,
    /// The attribute the mapping sends it to, if any.
    pub attribute: Option<String>,
}

/// A preview failure: an HTTP status and the message to show.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct PreviewError {
    #[serde(skip)]
    pub status: u16,
    #[serde(rename = "error")]
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<crate::model::config::Problem>,
}

impl PreviewError {
    fn new(status: u16, message: impl Into<String>, detail: Option<String>) -> Self {
        Self {
            status,
            message: message.into(),
            detail,
            problems: Vec::new(),
        }
    }
}

impl From<ConfigError> for PreviewError {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::Syntax(s) => Self::new(400, "The import config is not valid", Some(s)),
            ConfigError::Invalid(problems) => Self {
                status: 400,
                message: "The import config is not valid".into(),
                detail: None,
                problems,
            },
        }
    }
}

impl From<SourceError> for PreviewError {
    fn from(e: SourceError) -> Self {
        let detail = Some(e.to_string());
        match e {
            SourceError::InvalidAccessKey { .. } => Self::new(400, MSG_INVALID_ACCESS_KEY, detail),
            SourceError::NoSuchBucket { .. }
            | SourceError::FolderNotFound { .. }
            | SourceError::NoSuchKey { .. }
            | SourceError::Changed { .. } => Self::new(404, MSG_CHECK_FOLDER, detail),
            SourceError::ObjectTooLarge { .. } | SourceError::NotText { .. } => {
                Self::new(422, "The mapping file could not be read", detail)
            }
            SourceError::AccessDenied { .. } => {
                Self::new(403, "Access to the bucket was denied", detail)
            }
            // Bound to other imports, or (IAM refused it) to none, or not the stack's.
            SourceError::SecretNotForImport { .. } | SourceError::SecretDenied { .. } => Self::new(
                403,
                "The config names a secret that is not for this import",
                detail,
            ),
            SourceError::Secret { .. } | SourceError::AssumeRole { .. } => {
                Self::new(400, "The import's credentials could not be used", detail)
            }
            SourceError::Service(e) => {
                let status = if e.class == crate::ErrorClass::Retryable {
                    503
                } else {
                    502
                };
                Self::new(status, "S3 could not be read; try again", detail)
            }
        }
    }
}

impl From<ProcessError> for PreviewError {
    fn from(e: ProcessError) -> Self {
        match e {
            ProcessError::Source(s) => s.into(),
            ProcessError::Pgp(p) => {
                Self::new(422, format!("The file could not be decrypted: {p}"), None)
            }
            ProcessError::Read(FileError::ZeroDataRows) => Self::new(422, MSG_ZERO_ROWS, None),
            other if other.is_retryable() => Self::new(
                503,
                "The file could not be read; try again",
                Some(other.to_string()),
            ),
            other => Self::new(422, other.to_string(), None),
        }
    }
}

/// The preview service: reads (never writes) the newest file of an import's folder.
#[derive(Clone)]
pub struct Previewer {
    /// Stored imports: a preview that takes a stored import's id reads that import's
    /// folder only.
    pub configs: Arc<dyn Configs>,
    pub sources: Arc<dyn ObjectSource>,
    pub secrets: Arc<dyn Secrets>,
    /// Where decrypted plaintext is spooled (Lambda: /tmp).
    pub spool_dir: PathBuf,
    pub limits: Limits,
    /// The largest encrypted file a preview reads (see [`PREVIEW_PGP_MAX_BYTES`]).
    pub pgp_max_bytes: u64,
}

/// The largest PGP file a preview decrypts. Nothing of an encrypted file is parsed
/// before its integrity check at its end passes, so a preview reads it whole, and
/// must inside API Gateway's 30 s on the preview function's 512 MB (about a third of
/// a vCPU): a larger file is refused with a pointer to the dry run, which reads it in
/// the processor, across invocations.
/// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
pub const PREVIEW_PGP_MAX_BYTES: u64 = 128 << 20;

/// Secrets serve the imports they are tagged for: a config that takes a stored
/// import's id (to use its secrets) must also take its folder, or a caller could have
/// another import's key decrypt a file of their own. Some(why) when it does not.
pub async fn borrowed_id(
    configs: &dyn Configs,
    config: &ImportConfig,
    what: &str,
) -> Result<Option<String>, crate::ports::StoreError> {
    Ok(configs.get(&config.id).await?.and_then(|stored| {
        (stored.config.source.bucket != config.source.bucket
            || stored.config.source.folder != config.source.folder)
            .then(|| {
                format!(
                    "`{}` is the id of a stored import, whose folder is s3://{}/{}/; {what} with that id reads only that folder",
                    config.id, stored.config.source.bucket, stored.config.source.folder
                )
            })
    }))
}

impl Previewer {
    /// Previews the newest file that matches `config` (the same document as the
    /// DynamoDB item; its mapping may still be empty).
    pub async fn preview(&self, config: &ImportConfig) -> Result<Preview, PreviewError> {
        if let Some(refused) = borrowed_id(self.configs.as_ref(), config, "a preview")
            .await
            .map_err(store_error)?
        {
            return Err(PreviewError::new(403, refused, None));
        }
        let bucket = self.sources.connect(&config.source, &config.id).await?;
        let pattern = config.file_pattern();
        let listing = bucket.list(&pattern, None).await?;
        let Some(newest) = listing.files.last().cloned() else {
            let detail = if bucket.folder_exists().await? {
                format!(
                    "no file in s3://{}/{}/ matches `{}`",
                    config.source.bucket,
                    config.source.folder,
                    pattern.example_name()
                )
            } else {
                format!(
                    "s3://{}/{}/ has no files",
                    config.source.bucket, config.source.folder
                )
            };
            return Err(PreviewError::new(404, MSG_CHECK_FOLDER, Some(detail)));
        };
        let mappings = mapping(config, bucket.as_ref()).await?;
        let keyring = keyring(self.secrets.as_ref(), config).await?;
        if keyring.is_some() && newest.size > self.pgp_max_bytes {
            return Err(PreviewError::new(
                413,
                format!(
                    "The newest file, {}, is {} MB encrypted: too large to decrypt and verify within the API's 30 seconds (at most {} MB). Run a dry run of it instead (`s3imports dry-run CONFIG` or POST /dry-run): it reads the whole file and shows its first rows' problems.",
                    newest.file.key,
                    newest.size.div_ceil(1 << 20),
                    self.pgp_max_bytes >> 20
                ),
                None,
            ));
        }
        let (body, _) = bucket.open(&newest.file.key).await?;
        let input = tokio_util::io::SyncIoBridge::new(body);
        let spool = self.spool_dir.clone();
        let key = newest.file.key.clone();
        let limits = self.limits;
        let check = (config.clone(), mappings.clone());
        let Top {
            columns,
            rows,
            row_errors,
            row_failures,
            compiled,
        } = tokio::task::spawn_blocking(move || {
            read_top(&key, keyring.as_ref(), &spool, &limits, input, &check)
        })
        .await
        .map_err(|e| PreviewError::new(500, format!("the preview stopped: {e}"), None))??;
        let mapped: Vec<(String, String)> = compiled
            .as_ref()
            .map(|c| {
                c.mapped_columns()
                    .map(|(col, attr, _)| (col.to_string(), attr.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let preview_columns = columns
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let sample = rows.first().and_then(|r| r.get(i).cloned().flatten());
                let suggested_type = sample.as_deref().map_or(AttrType::String, suggest_type);
                let values = rows
                    .iter()
                    .filter_map(|r| r.get(i).and_then(Option::as_deref));
                PreviewColumn {
                    name: name.clone(),
                    suggested_format: (suggested_type == AttrType::Datetime)
                        .then(|| suggest_datetime_format(values))
                        .flatten(),
                    suggested_type,
                    sample,
                    attribute: mapped
                        .iter()
                        .find(|(c, _)| c == name)
                        .map(|(_, a)| a.clone()),
                }
            })
            .collect();
        let (unmapped, absent, problem) = match compiled {
            Ok(c) => (c.unmapped, c.absent, None),
            Err(e) => (
                columns
                    .iter()
                    .filter(|c| !mappings.iter().any(|m| &m.column == *c))
                    .cloned()
                    .collect(),
                Vec::new(),
                Some(e.to_string()),
            ),
        };
        Ok(Preview {
            file: PreviewFile {
                bucket: config.source.bucket.clone(),
                name: newest.file.name.clone(),
                key: newest.file.key.clone(),
                size: newest.size,
                timestamp: newest.file.timestamp.to_string(),
            },
            columns: preview_columns,
            rows,
            row_errors,
            unmapped_columns: unmapped,
            absent_columns: absent,
            mapping_problem: problem,
            row_failures,
        })
    }
}

fn store_error(e: StoreError) -> PreviewError {
    let status = if e.is_retryable() { 503 } else { 500 };
    PreviewError::new(
        status,
        "The import configs could not be read",
        Some(e.to_string()),
    )
}

/// What the top of the file holds, and the config's mapping bound to its columns.
struct Top {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
    /// The rows that could not be read.
    row_errors: Vec<String>,
    /// The mapping's problems with the rows that could.
    row_failures: Vec<String>,
    compiled: Result<CompiledMapping, MappingError>,
}

fn read_top(
    key: &str,
    keyring: Option<&crate::codec::pgp::PgpKeyring>,
    spool: &std::path::Path,
    limits: &crate::codec::limits::Limits,
    input: impl std::io::Read + Send,
    (config, mappings): &(ImportConfig, Vec<ColumnMapping>),
) -> Result<Top, PreviewError> {
    let plaintext = unwrap_file(key, keyring, spool, limits, input)?.plaintext;
    let json = config.file_type == FileType::Json;
    let options = ReadOptions {
        delimiter: u8::try_from(u32::from(config.delimiter)).unwrap_or(b','),
        max_row_bytes: limits.max_row_bytes,
    };
    let mut reader = open_reader(json, plaintext, &options, None).map_err(file_error)?;
    let columns = reader.columns().to_vec();
    // Each row through the import's own mapping code, so the set-up shows what the
    // import would report before the config is saved.
    let compiled = CompiledMapping::new(config, mappings, &columns);
    let check = compiled.as_ref().ok().filter(|_| !mappings.is_empty());
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut failures = Vec::new();
    let mut row = Row::default();
    let mut mapped = MappedRow::default();
    while rows.len() + errors.len() < TOP_ROWS {
        match reader.read_row(&mut row) {
            Ok(true) => {
                if let Some(Err(problems)) = check.map(|c| c.map_row(&row, &mut mapped)) {
                    // A reason quotes its cell, which may be a row long: each is cut
                    // so five rows stay far inside the API's 6 MB response.
                    failures.extend(
                        problems
                            .iter()
                            .map(|p| bounded(&p.to_string(), MAX_FAILURE_BYTES).into_owned()),
                    );
                }
                rows.push(
                    (0..columns.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                );
            }
            Ok(false) => break,
            Err(ReadError::Row(e)) => errors.push(e.to_string()),
            Err(ReadError::File(e)) => return Err(file_error(e)),
        }
    }
    Ok(Top {
        columns,
        rows,
        row_errors: errors,
        row_failures: failures,
        compiled,
    })
}

fn file_error(e: FileError) -> PreviewError {
    match e {
        FileError::ZeroDataRows => PreviewError::new(422, MSG_ZERO_ROWS, None),
        other => ProcessError::from(other).into(),
    }
}
