//! Reading a file: its mapping and keys, then unwrap (decrypt, verify, gunzip) and
//! parse it. Shared with the preview and dry runs.

use std::io::{BufWriter, Cursor, Read, Seek, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tracing::warn;

use super::error::ProcessError;
use super::settings::{BATCH_BYTES, BATCH_ROWS, MAX_MANIFEST_BYTES, SEQUENTIAL_BATCH_ROWS};
use crate::codec::limits::{CapRead, CapWrite, Limits};
use crate::codec::pgp::{PgpKeyring, decrypt_to, looks_like_pgp};
use crate::codec::reader::{
    Position, ReadError, ReadOptions, Resumed, Row, open_reader, resume_reader,
};
use crate::codec::sniff;
use crate::error::Classify;
use crate::model::checkpoint::Checkpoint;
use crate::model::config::{Encryption, ImportConfig, ImportKind, SecretRef};
use crate::model::naming::FileType;
use crate::ports::{FileMessage, ObjectBody, Reports, Secrets, SourceFolder};
use crate::rows::mapping::{
    ColumnMapping, CompiledMapping, MappedRow, MappingSpec, parse_manifest,
};
use crate::rows::sink::{Write, WriteBuilder};

/// Resolves the import's mapping: inline, or its manifest file from the folder.
pub async fn mapping(
    config: &ImportConfig,
    bucket: &dyn SourceFolder,
) -> Result<Vec<ColumnMapping>, ProcessError> {
    match &config.mapping {
        MappingSpec::Columns { columns } => Ok(columns.clone()),
        MappingSpec::Manifest { manifest } => {
            let key = format!("{}/{}", config.source.folder, manifest);
            let text = bucket.read_text(&key, MAX_MANIFEST_BYTES).await?;
            parse_manifest(&text).map_err(|error| ProcessError::Manifest {
                bucket: bucket.bucket().to_string(),
                key,
                error,
            })
        }
    }
}

/// Loads the import's PGP keys from Secrets Manager.
pub async fn keyring(
    secrets: &dyn Secrets,
    config: &ImportConfig,
) -> Result<Option<PgpKeyring>, ProcessError> {
    let Some(Encryption::Pgp {
        private_key_ref,
        passphrase_ref,
        previous_keys,
        signer_public_key,
    }) = &config.encryption
    else {
        return Ok(None);
    };
    pub(super) async fn read(
        secrets: &dyn Secrets,
        import_id: &str,
        key: &SecretRef,
        passphrase: Option<&SecretRef>,
    ) -> Result<(String, Option<String>), ProcessError> {
        let key = secrets.secret(key, import_id).await?;
        let passphrase = match passphrase {
            Some(r) => Some(secrets.secret(r, import_id).await?),
            None => None,
        };
        Ok((key, passphrase))
    }
    let (key, passphrase) = read(
        secrets,
        &config.id,
        private_key_ref,
        passphrase_ref.as_ref(),
    )
    .await?;
    let mut ring = PgpKeyring::new(&key, passphrase.as_deref(), signer_public_key.as_deref())?;
    for previous in previous_keys {
        // A previous key that is gone (deleted after the rotation, its tag changed)
        // fails only the files encrypted to it, whose reason names the keys they are
        // for; a transient failure is retried like any other.
        let added = match read(
            secrets,
            &config.id,
            &previous.private_key_ref,
            previous.passphrase_ref.as_ref(),
        )
        .await
        {
            Ok((key, passphrase)) => ring
                .add_previous(&key, passphrase.as_deref())
                .map_err(|e| e.to_string()),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = added {
            warn!(import_id = %config.id, key = %previous.private_key_ref, error = %e, "a previous key is left out");
        }
    }
    Ok(Some(ring))
}

/// What the reading thread needs.
pub struct ReadPlan<'a> {
    pub config: &'a ImportConfig,
    pub mappings: &'a [ColumnMapping],
    pub keyring: Option<&'a PgpKeyring>,
    pub key: &'a str,
    pub spool: &'a std::path::Path,
    pub builder: &'a WriteBuilder,
    pub limits: &'a Limits,
    /// Where a resumed read starts; None: at the beginning.
    pub from: Option<&'a Start>,
    /// The input is staged plaintext (decrypted and verified when it was staged).
    pub staged: bool,
    /// Take the plaintext's fingerprint (a whole file, not a chunk).
    pub fingerprint: bool,
    pub marks: &'a Marks,
}

#[derive(Debug, Default)]
pub struct ReadStats {
    pub rows_total: u64,
    pub rows_failed: u64,
    pub bytes: u64,
    /// A reason the file stopped early (rows before it stay ingested).
    pub reason: Option<String>,
    /// The reader stopped at a last mark (the invocation's deadline).
    pub stopped: bool,
    /// Which of the import's keys decrypted the file.
    pub decrypted_with: Option<String>,
    /// The plaintext's SHA-256, when the file was read to its end.
    pub sha256: Option<String>,
}

/// Counts the bytes that pass through a reader.
pub(super) struct Counting<R> {
    pub(super) inner: R,
    pub(super) count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
pub(super) const IO_BUF: usize = 256 * 1024;

/// Reads the first bytes of a stream for sniffing (a short first read from S3 must not
/// decide anything) and gives back a reader that still yields them.
pub(super) fn head<'a>(mut input: impl Read + 'a) -> std::io::Result<(Vec<u8>, impl Read + 'a)> {
    let mut head = Vec::with_capacity(sniff::HEAD_BYTES);
    (&mut input)
        .take(sniff::HEAD_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok((head.clone(), Cursor::new(head).chain(input)))
}

/// Unwraps the file (PGP, then gzip) and returns the plaintext reader, and whether
/// the plaintext is the object's own bytes (neither PGP nor gzip). PGP output is
/// spooled to a temporary file and handed on only after its integrity and signature
/// checks pass at the end of the stream. Plaintext past `limits.max_plaintext_bytes`
/// (decrypted or decompressed) fails with [`TooLarge`]; a file that is not text fails
/// with what it looks like.
pub fn unwrap_file<'a>(
    key: &str,
    keyring: Option<&PgpKeyring>,
    spool_dir: &std::path::Path,
    limits: &Limits,
    input: impl Read + Send + 'a,
) -> Result<Unwrapped<'a>, ProcessError> {
    let mut decrypted_with = None;
    let (first, input) = head(input)?;
    let plaintext: Box<dyn Read + 'a> = match (keyring, looks_like_pgp(&first)) {
        (Some(_), false) => {
            return Err(ProcessError::NotEncrypted {
                key: key.to_string(),
                looks_like: sniff::describe(&first).to_string(),
            });
        }
        (None, true) => {
            return Err(ProcessError::UnexpectedPgp {
                key: key.to_string(),
            });
        }
        (Some(keys), true) => {
            let mut spool = tempfile::tempfile_in(spool_dir)?;
            {
                let out = BufWriter::with_capacity(IO_BUF, &mut spool);
                let mut out =
                    CapWrite::new(out, limits.max_plaintext_bytes, limits.plaintext_parameter);
                decrypted_with = Some(decrypt_to(input, &mut out, keys)?.key);
                out.flush()?;
            }
            spool.rewind()?;
            Box::new(spool)
        }
        (None, false) => Box::new(input),
    };
    let (first, plaintext) = head(plaintext)?;
    let named_gz = key
        .to_ascii_lowercase()
        .trim_end_matches(".pgp")
        .trim_end_matches(".gpg")
        .trim_end_matches(".asc")
        .ends_with(".gz");
    let gzip = first.starts_with(&GZIP_MAGIC);
    let plaintext: Box<dyn Read + 'a> = if gzip {
        let gunzipped =
            flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(IO_BUF, plaintext));
        let (inner, gunzipped) = head(gunzipped)?;
        if let Some(kind) = sniff::binary_kind(&inner) {
            return Err(not_text(key, &format!("its gzip data holds {kind}")));
        }
        Box::new(gunzipped)
    } else if named_gz && !first.is_empty() {
        return Err(ProcessError::NotGzip {
            key: key.to_string(),
            looks_like: sniff::describe(&first).to_string(),
        });
    } else if let Some(kind) = sniff::binary_kind(&first) {
        return Err(not_text(key, kind));
    } else {
        Box::new(plaintext)
    };
    // The limit applies to what is parsed, so a decompression bomb stops at it too.
    let plaintext = Box::new(CapRead::new(
        plaintext,
        limits.max_plaintext_bytes,
        limits.plaintext_parameter,
    ));
    Ok(Unwrapped {
        plaintext,
        plain: keyring.is_none() && !gzip,
        decrypted_with,
    })
}

/// A file unwrapped for reading.
pub struct Unwrapped<'a> {
    pub plaintext: Box<dyn Read + 'a>,
    /// The plaintext is the object's own bytes (neither PGP nor gzip).
    pub plain: bool,
    /// Which of the import's keys decrypted it (PGP files).
    pub decrypted_with: Option<String>,
}

pub(super) fn not_text(key: &str, kind: &str) -> ProcessError {
    ProcessError::NotText {
        key: key.to_string(),
        kind: kind.to_string(),
    }
}

/// The reading thread: unwrap, read rows, map them, and hand pieces (batches of
/// writes with the rows that failed, and marks a checkpoint can be taken at) to `emit`,
/// which returns false when the writer has stopped. Also what `make bench` drives,
/// with a counting `emit`.
pub fn read_file(
    plan: &ReadPlan<'_>,
    input: impl Read + Send,
    emit: &mut dyn FnMut(Piece) -> bool,
) -> Result<ReadStats, ProcessError> {
    // A ranged resume skipped the object's bytes between the header and the position.
    let skipped = plan
        .from
        .filter(|f| f.layout == Resumed::Ranged)
        .map_or(0, |f| f.at.offset - f.at.header);
    let bytes = Arc::new(AtomicU64::new(skipped));
    let input = Counting {
        inner: input,
        count: bytes.clone(),
    };
    let mut stats = ReadStats::default();
    let (plaintext, ranged): (Box<dyn Read + '_>, bool) = if plan.staged {
        (Box::new(input), true)
    } else {
        let file = unwrap_file(plan.key, plan.keyring, plan.spool, plan.limits, input)?;
        stats.decrypted_with = file.decrypted_with;
        (file.plaintext, file.plain)
    };
    let (plaintext, digest) = match fingerprint_from(plan) {
        Some(from) => {
            let (hashing, progress) = crate::codec::fingerprint::Hashing::new(plaintext, from);
            (Box::new(hashing) as Box<dyn Read + '_>, Some(progress))
        }
        None => (plaintext, None),
    };
    let json = plan.config.file_type == FileType::Json;
    let columns = json.then(|| json_columns(plan.config, plan.mappings));
    let options = read_options(plan.config, plan.limits);
    let mut rows = match plan.from {
        None => open_reader(json, plaintext, &options, columns)?,
        Some(from) => {
            stats.rows_total = from.rows_total;
            stats.rows_failed = from.rows_failed;
            resume_reader(json, plaintext, &options, columns, &from.at, from.layout)?
        }
    };
    let mapping = CompiledMapping::new(plan.config, plan.mappings, rows.columns())?;
    let mut row = Row::default();
    let mut mapped = MappedRow::default();
    let batch_rows = if plan.builder.independent_rows() {
        BATCH_ROWS
    } else {
        SEQUENTIAL_BATCH_ROWS
    };
    let mut writes = Vec::with_capacity(batch_rows);
    let mut failed: Vec<Vec<crate::codec::reader::RowError>> = Vec::new();
    let mut piece_bytes = 0usize;
    let mut last_mark = std::time::Instant::now();
    loop {
        match rows.read_row(&mut row) {
            Ok(true) => {
                stats.rows_total += 1;
                piece_bytes += row.byte_len();
                match mapping.map_row(&row, &mut mapped) {
                    Ok(()) => writes.push((mapped.row, plan.builder.build(&mut mapped))),
                    Err(errors) => {
                        stats.rows_failed += 1;
                        failed.push(errors);
                    }
                }
            }
            Ok(false) => break,
            Err(ReadError::Row(e)) => {
                stats.rows_total += 1;
                stats.rows_failed += 1;
                piece_bytes += e.raw.len();
                failed.push(vec![e]);
            }
            Err(ReadError::File(e)) => {
                let e = ProcessError::from(e);
                // Before any row, the file as a whole failed; after rows, those stay
                // ingested and the file is partial with the reason. A retryable read
                // failure is handed back either way (a redelivery reads it again).
                if stats.rows_total == 0 || e.is_retryable() {
                    return Err(e);
                }
                stats.reason = Some(format!(
                    "the file stopped being readable after row {}: {e}",
                    row.number()
                ));
                break;
            }
        }
        if writes.len() + failed.len() < batch_rows && piece_bytes < BATCH_BYTES {
            continue;
        }
        let piece = Piece::Rows {
            writes: std::mem::take(&mut writes),
            failed: std::mem::take(&mut failed),
        };
        piece_bytes = 0;
        if !emit(piece) {
            break; // the writer stopped; its error is reported
        }
        // A mark only after a piece: every invocation moves the file on.
        let last = plan.marks.stop.load(Ordering::Relaxed);
        let due = plan.marks.every.is_some_and(|e| last_mark.elapsed() >= e);
        if (last || due) && rows.resumable() {
            let mark = Mark {
                at: rows.position(),
                rows_total: stats.rows_total,
                rows_failed: stats.rows_failed,
                bytes: bytes.load(Ordering::Relaxed),
                ranged,
                last,
                digest: digest.as_ref().map(crate::codec::fingerprint::snapshot),
            };
            if !emit(Piece::Mark(mark)) {
                break;
            }
            last_mark = std::time::Instant::now();
            if last {
                stats.stopped = true;
                break;
            }
        }
    }
    if !writes.is_empty() || !failed.is_empty() {
        emit(Piece::Rows { writes, failed });
    }
    stats.bytes = bytes.load(Ordering::Relaxed);
    if !stats.stopped && stats.reason.is_none() {
        stats.sha256 = digest
            .as_ref()
            .and_then(crate::codec::fingerprint::finished);
    }
    Ok(stats)
}

/// Where a read's fingerprint starts, if it takes one: afresh, unless a ranged resume
/// goes on from its checkpoint's digest (a whole resume reads the plaintext again from
/// its first byte, so it hashes it again). None: no fingerprint (a chunk, or a
/// checkpoint from before fingerprints).
pub(super) fn fingerprint_from(plan: &ReadPlan<'_>) -> Option<crate::codec::fingerprint::Resume> {
    if !plan.fingerprint {
        return None;
    }
    match plan.from {
        Some(from) if from.layout == Resumed::Ranged => {
            let digest = from.digest.clone()?;
            // The stream is the header again, then the plaintext from the position;
            // the digest already holds everything up to its length.
            let ahead = digest.len().checked_sub(from.at.offset)?;
            Some(crate::codec::fingerprint::Resume {
                skip: from.at.header + ahead,
                digest,
            })
        }
        _ => Some(crate::codec::fingerprint::Resume::default()),
    }
}

/// How the import's rows are read.
pub(super) fn read_options(config: &ImportConfig, limits: &Limits) -> ReadOptions {
    ReadOptions {
        delimiter: u8::try_from(u32::from(config.delimiter)).unwrap_or(b','),
        max_row_bytes: limits.max_row_bytes,
    }
}

/// The JSON keys to read: every mapped column and the kind's key column.
pub(super) fn json_columns(config: &ImportConfig, mappings: &[ColumnMapping]) -> Vec<String> {
    let mut cols: Vec<String> = mappings.iter().map(|m| m.column.clone()).collect();
    if let ImportKind::AnonymousUsers {
        identifier_column: c,
    }
    | ImportKind::Auxiliary { key_column: c, .. } = &config.kind
        && !cols.contains(c)
    {
        cols.push(c.clone());
    }
    cols
}

/// When the reading thread marks a checkpoint: every `every`, and once `stop` is set
/// (the invocation's deadline is near) for the last time.
pub struct Marks {
    pub stop: AtomicBool,
    pub every: Option<Duration>,
}

impl Marks {
    /// Marks that stop `margin` before `deadline` (at most a quarter of the time
    /// left, so a short timeout still gets most of its time for rows), with the timer
    /// that sets `stop` (aborted when dropped).
    pub(super) fn until(
        deadline: Option<tokio::time::Instant>,
        margin: Duration,
        every: Option<Duration>,
    ) -> (Arc<Self>, Option<AbortOnDrop>) {
        let marks = Arc::new(Self {
            stop: AtomicBool::new(false),
            every,
        });
        let now = tokio::time::Instant::now();
        let stop_at = deadline.map(|d| {
            let left = d.saturating_duration_since(now);
            d.checked_sub(margin.min(left / 4)).unwrap_or(d)
        });
        let timer = match stop_at {
            // Already past it: stop after the first batch.
            Some(at) if at <= now => {
                marks.stop.store(true, Ordering::Relaxed);
                None
            }
            Some(at) => {
                let marks = marks.clone();
                Some(AbortOnDrop(tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    marks.stop.store(true, Ordering::Relaxed);
                })))
            }
            None => None,
        };
        (marks, timer)
    }
}

/// What the reading thread hands the writer, in row order.
pub enum Piece {
    /// Writes for good rows, and the rows that failed reading or mapping.
    Rows {
        writes: Vec<(u64, Write)>,
        failed: Vec<Vec<crate::codec::reader::RowError>>,
    },
    /// Every row before this point has been handed over.
    Mark(Mark),
}

/// A point a checkpoint can be taken at, as the reader sees it.
pub struct Mark {
    pub at: Position,
    pub rows_total: u64,
    pub rows_failed: u64,
    pub bytes: u64,
    /// The plaintext is the object's bytes.
    pub ranged: bool,
    /// The reader stops here (the deadline is near).
    pub last: bool,
    /// The fingerprint so far.
    pub digest: Option<crate::codec::fingerprint::Digest>,
}

/// Where a resumed read starts.
pub struct Start {
    pub at: Position,
    pub layout: Resumed,
    pub rows_total: u64,
    pub rows_failed: u64,
    /// The fingerprint as the checkpoint left it.
    pub digest: Option<crate::codec::fingerprint::Digest>,
}

pub(super) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What reading a file needs, once its import is loaded.
pub(super) struct Opened<'a> {
    pub(super) config: &'a ImportConfig,
    pub(super) mappings: &'a [ColumnMapping],
    pub(super) keyring: Option<&'a Arc<PgpKeyring>>,
    pub(super) bucket: &'a dyn SourceFolder,
}

/// A reader that fails once the deadline's mark is set (the split pass gives up).
pub(super) struct UntilStopped<R> {
    pub(super) inner: R,
    pub(super) marks: Arc<Marks>,
}

impl<R: Read> Read for UntilStopped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.marks.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the invocation's deadline is near",
            ));
        }
        self.inner.read(buf)
    }
}

/// The largest plaintext staged for chunks (one S3 PutObject); a larger file goes on
/// by continuation alone.
pub(super) const MAX_STAGED_BYTES: u64 = 5 << 30;

/// Copies what passes through a reader into a file, up to `left` bytes; past that it
/// stops copying and says so (the split is then abandoned).
pub(super) struct Tee<R, W> {
    pub(super) inner: R,
    pub(super) out: W,
    pub(super) left: u64,
    pub(super) overflow: bool,
}

impl<R: Read, W: std::io::Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.overflow {
            if n as u64 > self.left {
                self.overflow = true;
            } else {
                self.out.write_all(&buf[..n])?;
                self.left -= n as u64;
            }
        }
        Ok(n)
    }
}

/// Where a resumed read's bytes come from: the import's object, or its staged
/// plaintext in the stack's bucket.
pub(super) enum Origin<'a> {
    Source(&'a dyn SourceFolder),
    Staged(&'a dyn Reports, &'a str),
}

impl Origin<'_> {
    pub(super) async fn range(
        &self,
        msg: &FileMessage,
        from: u64,
        to: Option<u64>,
    ) -> Result<ObjectBody, ProcessError> {
        Ok(match self {
            Self::Source(bucket) => bucket.open_range(&msg.key, &msg.etag, from, to).await?,
            Self::Staged(reports, key) => reports.open_range(key, from, to).await?,
        })
    }
}

/// Opens a file to resume at its checkpoint: for plaintext that is the object's own
/// bytes, the header and then the rest from the checkpoint (two ranged GETs); for a
/// PGP or gzip file, the whole object again (its plaintext is skipped up to the
/// checkpoint). Either way only while the object is the one started.
pub(super) async fn open_resumed(
    origin: Origin<'_>,
    msg: &FileMessage,
    cp: &Checkpoint,
    end: Option<u64>,
) -> Result<(ObjectBody, Option<Resumed>), ProcessError> {
    if !cp.ranged {
        let body = origin.range(msg, 0, None).await?;
        return Ok((body, Some(Resumed::Whole)));
    }
    let at = &cp.position;
    let head = match at.header {
        0 => Box::pin(tokio::io::empty()) as ObjectBody,
        n => origin.range(msg, 0, Some(n)).await?,
    };
    // A range that starts at the end is refused: nothing is left to read. (A chunk's
    // end bounds it; a plain object's end is its size.)
    let limit = end.unwrap_or(msg.size);
    let rest = if at.offset >= limit {
        Box::pin(tokio::io::empty()) as ObjectBody
    } else {
        origin.range(msg, at.offset, end).await?
    };
    Ok((
        Box::pin(tokio::io::AsyncReadExt::chain(head, rest)),
        Some(Resumed::Ranged),
    ))
}
