//! The bounds that keep one file's memory and storage flat whatever it holds (an
//! endless line, a stray quote, a decompression bomb), each with the stack parameter
//! that sets it. docs/operating.md lists them.

use std::io::{self, Read, Write};

use crate::error::ErrorClass;

/// The largest row held in memory by default (DynamoDB's item limit is 400 KB, so a
/// bigger row could never be written anyway).
pub const DEFAULT_MAX_ROW_BYTES: usize = 1 << 20;
/// Where an operator raises the row limit; named in every "row too large" reason.
pub const ROW_LIMIT_PARAMETER: &str = "stack parameter MaxRowBytes";
pub const ENV_MAX_ROW_BYTES: &str = "S3IMPORTS_MAX_ROW_BYTES";

/// The processor's ephemeral storage (`/tmp`), from the stack parameter.
pub const ENV_STORAGE_MB: &str = "S3IMPORTS_PROCESSOR_STORAGE_MB";
pub const STORAGE_PARAMETER: &str = "stack parameter ProcessorEphemeralStorageMB";
pub const DEFAULT_STORAGE_MB: u64 = 10240;

/// The failed-rows report's size cap.
pub const ENV_MAX_REPORT_MB: &str = "S3IMPORTS_MAX_REPORT_MB";
pub const REPORT_PARAMETER: &str = "stack parameter FailedRowsReportMaxMB";
pub const DEFAULT_MAX_REPORT_MB: u64 = 100;

/// What a report line keeps of its original row; the rest is cut and marked.
pub const REPORT_ROW_BYTES: usize = 1024;

/// Room left on `/tmp` beside the plaintext and the report (the runtime, temp files).
const STORAGE_MARGIN_MB: u64 = 64;

const MIB: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A row above this fails with a reason; reading goes on.
    pub max_row_bytes: usize,
    /// Plaintext (decrypted, decompressed) above this ends the file, permanently.
    pub max_plaintext_bytes: u64,
    /// The parameter that sets `max_plaintext_bytes`, for messages.
    pub plaintext_parameter: &'static str,
    /// The failed-rows report stops growing here; rows still count.
    pub max_report_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self::for_storage(
            DEFAULT_STORAGE_MB,
            STORAGE_PARAMETER,
            DEFAULT_MAX_REPORT_MB,
            DEFAULT_MAX_ROW_BYTES,
        )
    }
}

impl Limits {
    /// The limits of a function with `storage_mb` of `/tmp`: plaintext is spooled there
    /// beside the report, so the plaintext may take what the report and a margin leave.
    pub fn for_storage(
        storage_mb: u64,
        parameter: &'static str,
        max_report_mb: u64,
        max_row_bytes: usize,
    ) -> Self {
        let plaintext_mb = storage_mb
            .saturating_sub(max_report_mb)
            .saturating_sub(STORAGE_MARGIN_MB)
            .max(1);
        Self {
            max_row_bytes,
            max_plaintext_bytes: plaintext_mb * MIB,
            plaintext_parameter: parameter,
            max_report_bytes: max_report_mb * MIB,
        }
    }

    /// The processor's limits from the environment the template sets.
    pub fn from_env() -> Self {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        }
        Self::for_storage(
            var(ENV_STORAGE_MB, DEFAULT_STORAGE_MB),
            STORAGE_PARAMETER,
            var(ENV_MAX_REPORT_MB, DEFAULT_MAX_REPORT_MB),
            var(ENV_MAX_ROW_BYTES, DEFAULT_MAX_ROW_BYTES),
        )
    }
}

/// The plaintext passed its limit: a permanent failure that names the size and the
/// parameter to raise.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error(
    "the file's plaintext (decrypted and decompressed) is larger than {} MiB, the most this stack takes ({parameter}); raise it or split the file",
    limit / MIB
)]
pub struct TooLarge {
    pub limit: u64,
    pub parameter: &'static str,
}

impl TooLarge {
    fn io(self) -> io::Error {
        io::Error::other(self)
    }

    /// The limit error inside an I/O error, if that is what it is.
    pub fn find(e: &io::Error) -> Option<&TooLarge> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<TooLarge>())
    }
}

/// How an I/O error on a file's way in is classed: a full disk or the plaintext limit
/// fails the same way on every delivery, so neither is retried (a decompression bomb
/// must not be decompressed five times); corrupt data neither; the network may recover.
pub fn io_class(e: &io::Error) -> ErrorClass {
    if TooLarge::find(e).is_some() {
        return ErrorClass::Permanent;
    }
    match e.kind() {
        io::ErrorKind::StorageFull
        | io::ErrorKind::QuotaExceeded
        | io::ErrorKind::FileTooLarge
        | io::ErrorKind::InvalidData
        | io::ErrorKind::InvalidInput => ErrorClass::Permanent,
        _ => ErrorClass::Retryable,
    }
}

/// A reader that fails with [`TooLarge`] once more than `limit` bytes come through.
pub struct CapRead<R> {
    inner: R,
    left: u64,
    error: TooLarge,
}

impl<R> CapRead<R> {
    pub fn new(inner: R, limit: u64, parameter: &'static str) -> Self {
        Self {
            inner,
            left: limit,
            error: TooLarge { limit, parameter },
        }
    }
}

impl<R: Read> Read for CapRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for one byte past the limit, so a file of exactly the limit passes.
        let want = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(self.error.clone().io());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A writer that fails with [`TooLarge`] before it writes past `limit` bytes.
pub struct CapWrite<W> {
    inner: W,
    left: u64,
    error: TooLarge,
}

impl<W> CapWrite<W> {
    pub fn new(inner: W, limit: u64, parameter: &'static str) -> Self {
        Self {
            inner,
            left: limit,
            error: TooLarge { limit, parameter },
        }
    }
}

impl<W: Write> Write for CapWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(self.error.clone().io());
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `value` as JSON of at most `max` bytes: while it is larger, its lists are cut to
/// half of the longest (`longest` measures them, `cut(value, n)` truncates each to `n`
/// entries), until it fits or no list is left to cut. For a message whose limit is in
/// bytes (an SNS message, a Lambda response) and whose lists are bounded by count.
pub fn json_within<T: serde::Serialize>(
    value: &mut T,
    max: usize,
    longest: impl Fn(&T) -> usize,
    mut cut: impl FnMut(&mut T, usize),
) -> String {
    loop {
        let body = serde_json::to_string(value).unwrap_or_default();
        let n = longest(value);
        if body.len() <= max || n == 0 {
            return body;
        }
        cut(value, n / 2);
    }
}

/// `text` cut to at most `max` bytes at a character boundary, saying how much it left
/// out.
pub fn bounded(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let note = format!(" … ({} more bytes)", text.len());
    let mut end = max.saturating_sub(note.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    let left = text.len() - end;
    std::borrow::Cow::Owned(format!("{} … ({left} more bytes)", &text[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_limit_leaves_room_for_the_report() {
        let l = Limits::for_storage(10240, STORAGE_PARAMETER, 100, 1 << 20);
        assert_eq!(l.max_plaintext_bytes, (10240 - 100 - 64) * MIB);
        assert_eq!(l.max_report_bytes, 100 * MIB);
        // Never zero, even for a tiny storage.
        assert_eq!(
            Limits::for_storage(100, STORAGE_PARAMETER, 100, 1).max_plaintext_bytes,
            MIB
        );
    }

    #[test]
    fn cap_read_passes_the_limit_exactly_and_fails_past_it() {
        let data = vec![7u8; 1000];
        let mut out = Vec::new();
        CapRead::new(&data[..], 1000, "p")
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.len(), 1000);
        let e = CapRead::new(&data[..], 999, "p")
            .read_to_end(&mut Vec::new())
            .expect_err("past the limit");
        assert_eq!(io_class(&e), ErrorClass::Permanent);
        assert_eq!(TooLarge::find(&e).map(|t| t.limit), Some(999));
    }

    #[test]
    fn cap_write_refuses_past_the_limit() {
        let mut w = CapWrite::new(Vec::new(), 10, "p");
        assert!(w.write_all(&[1; 10]).is_ok());
        let e = w.write_all(&[1]).expect_err("past the limit");
        assert!(TooLarge::find(&e).is_some());
        assert!(e.to_string().contains("(p)"), "{e}");
    }

    #[test]
    fn a_full_disk_is_permanent_and_a_reset_is_not() {
        assert_eq!(
            io_class(&io::Error::from(io::ErrorKind::StorageFull)),
            ErrorClass::Permanent
        );
        assert_eq!(
            io_class(&io::Error::from(io::ErrorKind::ConnectionReset)),
            ErrorClass::Retryable
        );
    }

    #[test]
    fn bounded_text_keeps_short_text_and_cuts_long_text_at_a_character() {
        assert_eq!(super::bounded("short", 10), "short");
        let long = "é".repeat(10_000);
        let cut = super::bounded(&long, 2048);
        assert!(cut.len() <= 2048, "{}", cut.len());
        assert!(cut.ends_with("more bytes)"), "{cut}");
        assert!(cut.starts_with("éé"));
    }
}
