//! Paging an import's history: bounded page sizes and opaque cursors.

use serde::{Deserialize, Serialize};

use crate::model::ledger::{FileRecord, RunRecord};

/// One page size parameter: its name (as the API and CLI spell it), default and range.
/// Every page is bounded so a response stays far from Lambda's 6 MB and API Gateway's
/// 29 s however many runs and files an import has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit {
    pub name: &'static str,
    pub default: usize,
    pub min: usize,
    pub max: usize,
}

/// Runs per page of an import's history.
pub const RUNS_LIMIT: PageLimit = PageLimit {
    name: "limit",
    default: 20,
    min: 1,
    max: 50,
};

/// Files shown with each run of a history page (the rest are paged per run).
pub const RUN_FILES_LIMIT: PageLimit = PageLimit {
    name: "files_limit",
    default: 10,
    min: 0,
    max: 20,
};

/// Files per page of one run's files.
pub const FILES_LIMIT: PageLimit = PageLimit {
    name: "limit",
    default: 100,
    min: 1,
    max: 1000,
};

/// A page request that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("`{name}` must be a whole number from {min} to {max}")]
    Limit {
        name: &'static str,
        min: usize,
        max: usize,
    },
    #[error(
        "`{name}` is not a cursor this service gave out for this listing: pass the previous page's `next_cursor` (or a run's `next_files_cursor`) as it is"
    )]
    Cursor { name: &'static str },
}

impl crate::error::Classify for PageError {
    fn class(&self) -> crate::error::ErrorClass {
        crate::error::ErrorClass::Permanent
    }
}

impl PageLimit {
    /// The limit from a query parameter: absent means the default.
    pub fn parse(&self, raw: Option<&str>) -> Result<usize, PageError> {
        match raw {
            None => Ok(self.default),
            Some(text) => text
                .trim()
                .parse::<usize>()
                .map_err(|_| self.error())
                .and_then(|n| self.check(n)),
        }
    }

    pub fn check(&self, n: usize) -> Result<usize, PageError> {
        if (self.min..=self.max).contains(&n) {
            Ok(n)
        } else {
            Err(self.error())
        }
    }

    fn error(&self) -> PageError {
        PageError::Limit {
            name: self.name,
            min: self.min,
            max: self.max,
        }
    }
}

/// Where a page of runs continues: after this run (runs are listed newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsCursor {
    pub after_run: String,
}

/// Where a page of one run's files continues: at this position of the run's file list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesCursor {
    pub run: String,
    pub offset: usize,
}

/// The longest cursor accepted: ours are well under it; anything longer is not ours.
const MAX_CURSOR_LEN: usize = 512;

/// Cursors are opaque to callers: hex of a small JSON document, so they travel in a
/// URL or a shell argument without escaping.
pub fn encode_cursor<T: Serialize>(cursor: &T) -> String {
    let json = serde_json::to_vec(cursor).unwrap_or_default();
    json.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor<T: serde::de::DeserializeOwned>(
    text: &str,
    name: &'static str,
) -> Result<T, PageError> {
    decode_cursor_within(text, name, MAX_CURSOR_LEN)
}

/// Decodes a cursor of at most `max` characters.
pub fn decode_cursor_within<T: serde::de::DeserializeOwned>(
    text: &str,
    name: &'static str,
    max: usize,
) -> Result<T, PageError> {
    let bad = || PageError::Cursor { name };
    let text = text.trim();
    if text.is_empty() || text.len() > max || !text.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// Whether `id` could be a run id as [`new_run_id`] makes them (letters, digits and
/// `-`): a cursor or path naming anything else never reaches DynamoDB.
pub fn plausible_run_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl RunsCursor {
    pub fn decode(text: &str) -> Result<Self, PageError> {
        let c: Self = decode_cursor(text, "cursor")?;
        if plausible_run_id(&c.after_run) {
            Ok(c)
        } else {
            Err(PageError::Cursor { name: "cursor" })
        }
    }

    pub fn encode(&self) -> String {
        encode_cursor(self)
    }
}

impl FilesCursor {
    /// A files cursor of run `run_id` (a cursor of another run is refused).
    pub fn decode(text: &str, run_id: &str) -> Result<Self, PageError> {
        let c: Self = decode_cursor(text, "cursor")?;
        if c.run == run_id {
            Ok(c)
        } else {
            Err(PageError::Cursor { name: "cursor" })
        }
    }

    pub fn encode(&self) -> String {
        encode_cursor(self)
    }
}

/// One run of a history page, with the first of its files.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    pub run: RunRecord,
    pub files: Vec<FileRecord>,
    /// How many files the run item lists (all of them, unless the run found more than
    /// fit in one item; `files_total` counts every file).
    pub files_listed: usize,
    /// Where the run's files continue, when more are listed than shown.
    pub next_files_cursor: Option<String>,
}

/// A page of an import's runs, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RunsPage {
    pub runs: Vec<RunEntry>,
    /// The next page, or None on the last one.
    pub next_cursor: Option<String>,
}

/// A page of one run's files, in the order discovery found them.
#[derive(Debug, Clone, PartialEq)]
pub struct FilesPage {
    pub run: RunRecord,
    pub files: Vec<FileRecord>,
    pub files_listed: usize,
    pub next_cursor: Option<String>,
}
