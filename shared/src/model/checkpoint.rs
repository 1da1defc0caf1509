//! A file's checkpoint: how far a file has been imported, recorded on its ledger
//! record, so a continuation (the next invocation, or a redelivery after a crash)
//! goes on from there instead of row 1. Everything before `position` is written and
//! counted, and its failed rows are in the report's uploaded parts.

use serde::{Deserialize, Serialize};

use crate::codec::reader::Position;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Where the next row starts in the plaintext.
    pub position: Position,
    pub rows_total: u64,
    pub rows_ingested: u64,
    pub rows_failed: u64,
    /// Object bytes read so far (the largest any invocation read).
    pub bytes: u64,
    /// The plaintext is the object's bytes (no PGP, no gzip): a continuation reads
    /// the header and the rest with two ranged GETs instead of streaming again.
    pub ranged: bool,
    /// The failed-rows report so far.
    pub report: ReportProgress,
    /// The plaintext's fingerprint so far (over the bytes read, which may run ahead of
    /// `position`: its length says how far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<crate::codec::fingerprint::Digest>,
}

/// The failed-rows report across invocations: its parts so far (uploaded next to the
/// report, joined when the file ends) and the counts that bound it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportProgress {
    pub parts: u32,
    pub rows_listed: u64,
    pub rows_omitted: u64,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The report reached its size limit.
    #[serde(default)]
    pub full: bool,
}

impl ReportProgress {
    pub fn summary(&self) -> ReportSummary {
        ReportSummary {
            rows_listed: self.rows_listed,
            rows_omitted: self.rows_omitted,
            bytes: self.bytes,
            error: self.error.clone(),
        }
    }
}

/// The key of chunk `i`'s report, next to its file's report (joined into it when the
/// file's last chunk ends).
pub fn chunk_report_key(report_key: &str, i: u32) -> String {
    format!("{report_key}.chunk-{i:04}")
}

/// The key of a report's `n`th part (0-based), next to the report itself.
pub fn part_key(report_key: &str, n: u32) -> String {
    format!("{report_key}.part-{n:05}")
}

impl Checkpoint {
    /// As stored on the ledger record.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }

    /// The keys of the report's parts uploaded so far.
    pub fn part_keys(&self, report_key: &str) -> Vec<String> {
        (0..self.report.parts)
            .map(|n| part_key(report_key, n))
            .collect()
    }
}

/// What a finished report holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReportSummary {
    /// Failed rows listed.
    pub rows_listed: u64,
    /// Failed rows left out because the report was full.
    pub rows_omitted: u64,
    pub bytes: u64,
    /// Writing failed (e.g. the disk filled): the report is incomplete, counts are not.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_reads_back_as_stored() {
        let cp = Checkpoint {
            position: Position {
                offset: 10,
                header: 4,
                row: 3,
                line: 5,
                after_cr: true,
                ..Position::default()
            },
            rows_total: 2,
            rows_ingested: 1,
            rows_failed: 1,
            bytes: 99,
            ranged: true,
            report: ReportProgress {
                parts: 2,
                rows_listed: 1,
                ..ReportProgress::default()
            },
            digest: Some({
                let mut d = crate::codec::fingerprint::Digest::default();
                d.update(b"ID,Age\nu1");
                d
            }),
        };
        assert_eq!(Checkpoint::from_json(&cp.to_json()), Some(cp.clone()));
        assert_eq!(
            cp.part_keys("r/x.csv"),
            ["r/x.csv.part-00000", "r/x.csv.part-00001"]
        );
        assert_eq!(Checkpoint::from_json("{"), None);
    }
}
