//! An import's post-processing settings (config `post_processing`) and what it did to
//! a file, as the ledger records it. `notify::post_process` applies them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::status::FileStatus;

/// The tag that carries a file's outcome.
pub const STATUS_TAG: &str = "s3imports-status";
/// The tag that names the run that processed the file.
pub const RUN_TAG: &str = "s3imports-run";

/// A file's outcome as post-processing names it (and the status tag's value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Imported,
    Partial,
    Failed,
}

impl Outcome {
    pub fn of(status: FileStatus) -> Option<Self> {
        match status {
            FileStatus::Succeeded => Some(Self::Imported),
            FileStatus::PartiallySucceeded => Some(Self::Partial),
            FileStatus::Failed => Some(Self::Failed),
            FileStatus::Queued | FileStatus::Processing => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Imported => "imported",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }
}

/// What happens to a source file after its outcome (config `post_processing`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostProcessing {
    /// Tag every file `s3imports-status=imported|partial|failed` and
    /// `s3imports-run=<run id>` (other tags are kept).
    #[serde(default)]
    pub tag: bool,
    /// By outcome: the sub-folder of the import's folder to move the file to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub move_to: BTreeMap<Outcome, String>,
    /// The outcomes whose files are deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delete: Vec<Outcome>,
}

/// What post-processing did to one file, as the ledger records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostProcessed {
    /// What was done, in order ("tagged s3imports-status=imported", "moved to …").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<String>,
    /// Where the file is now, when it was moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
    /// Why a step failed (the steps after it were not tried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A worker has taken it on and not yet recorded what it did (one that stopped
    /// leaves it so).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

impl PostProcessing {
    pub fn is_empty(&self) -> bool {
        !self.tag && self.move_to.is_empty() && self.delete.is_empty()
    }

    /// Every problem with the settings, as (field, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        for (outcome, folder) in &self.move_to {
            let field = format!("post_processing.move_to.{}", outcome.as_str());
            if let Some(why) = folder_problem(folder) {
                p.push((field.clone(), why));
            }
            if self.delete.contains(outcome) {
                p.push((
                    field,
                    format!(
                        "a {} file cannot be both moved and deleted",
                        outcome.as_str()
                    ),
                ));
            }
        }
        p
    }

    /// The folder a file of this outcome moves to, under the import's `folder`.
    pub(crate) fn destination(&self, outcome: Outcome, folder: &str, key: &str) -> Option<String> {
        let sub = self.move_to.get(&outcome)?;
        let name = key.rsplit('/').next().unwrap_or(key);
        Some(format!(
            "{}/{}/{name}",
            folder.trim_end_matches('/'),
            sub.trim_matches('/')
        ))
    }
}

/// Why a sub-folder name cannot be used: it must stay under the import's folder.
fn folder_problem(folder: &str) -> Option<String> {
    let trimmed = folder.trim_matches('/');
    if trimmed.is_empty() {
        return Some("name a sub-folder of the import's folder, e.g. `processed`".into());
    }
    if trimmed.len() > 256 {
        return Some("at most 256 characters".into());
    }
    if trimmed.split('/').any(|part| {
        part.is_empty()
            || part == "."
            || part == ".."
            || !part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    }) {
        return Some(
            "a sub-folder path of letters, digits and -_. (no `..`, no empty parts)".into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_destinations_stay_under_the_folder() {
        let p: PostProcessing = serde_json::from_value(serde_json::json!({
            "tag": true,
            "move_to": {"imported": "processed/", "failed": "failed"},
            "delete": ["partial"]
        }))
        .unwrap();
        assert!(p.problems().is_empty());
        assert_eq!(
            p.destination(Outcome::Imported, "in/users", "in/users/u_20260101.csv")
                .as_deref(),
            Some("in/users/processed/u_20260101.csv")
        );
        assert_eq!(p.destination(Outcome::Partial, "in", "in/x.csv"), None);
        for bad in ["", "/", "../up", "a//b", "a b", "x/../y"] {
            assert!(folder_problem(bad).is_some(), "{bad:?}");
        }
        let both = PostProcessing {
            move_to: BTreeMap::from([(Outcome::Failed, "failed".into())]),
            delete: vec![Outcome::Failed],
            ..PostProcessing::default()
        };
        assert_eq!(both.problems().len(), 1);
        assert!(serde_json::from_value::<PostProcessing>(serde_json::json!({"move": {}})).is_err());
    }
}
