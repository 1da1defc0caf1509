//! Segments: named groups of the users that user imports bring in, as MoEngage's S3
//! imports add them. An import names its segment in the config; every user a run
//! imports becomes (or stays) a member. Archiving a segment never drops data: imports
//! still add to it, and the run's email says so.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An import's segment, as the config names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRef {
    pub name: String,
    /// Shown with the segment; set when the config is put.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The longest segment name.
pub const MAX_SEGMENT_NAME: usize = 128;
/// The longest description.
pub const MAX_DESCRIPTION: usize = 1024;

/// Why a segment name is refused, if it is.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.chars().count() > MAX_SEGMENT_NAME {
        return Some(format!("1 to {MAX_SEGMENT_NAME} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || " -_.:".contains(c))
    {
        return Some("letters, digits, spaces and `-_.:` only".into());
    }
    if name.trim() != name {
        return Some("no leading or trailing spaces".into());
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentStatus {
    #[default]
    Active,
    /// Hidden from use by the operator; imports still add to it.
    Archived,
}

impl SegmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "archived" => Some(Self::Archived),
            _ => None,
        }
    }
}

/// A segment and what feeds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub name: String,
    pub description: Option<String>,
    pub status: SegmentStatus,
    /// The imports that add to it.
    pub imports: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Members when last counted (at the end of each run that added to it).
    pub member_count: u64,
    pub counted_at: Option<DateTime<Utc>>,
}

/// Which users table a member is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberKind {
    Registered,
    Anonymous,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Anonymous => "anonymous",
        }
    }

    /// The prefix of a member's sort key: a registered and an anonymous user with the
    /// same id are two members.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Registered => "u#",
            Self::Anonymous => "a#",
        }
    }

    pub fn of_key(member: &str) -> Option<(Self, &str)> {
        if let Some(id) = member.strip_prefix("u#") {
            Some((Self::Registered, id))
        } else {
            member.strip_prefix("a#").map(|id| (Self::Anonymous, id))
        }
    }
}

/// One member of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user id (registered) or anonymous id.
    pub id: String,
    pub kind: MemberKind,
    pub first_added: Option<DateTime<Utc>>,
    pub last_added: Option<DateTime<Utc>>,
    /// The import and run that last added it.
    pub import_id: String,
    pub run_id: String,
}

/// A page of members, in id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembersPage {
    pub members: Vec<Member>,
    /// Where the next page starts (opaque); None on the last page.
    pub next_cursor: Option<String>,
}

/// Members per page (`--limit`, `?limit=`).
pub const MEMBERS_LIMIT: crate::model::pages::PageLimit = crate::model::pages::PageLimit {
    name: "limit",
    default: 100,
    min: 1,
    max: 1000,
};

/// What a file's user writes add to its import's segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub segment: String,
    pub kind: MemberKind,
    pub import_id: String,
    pub run_id: String,
    /// When this file's writes add them (the member's last added time).
    pub at: DateTime<Utc>,
}

impl Membership {
    /// The user item's attribute that holds when the user first joined the segment:
    /// set with `if_not_exists` in the user's own update, so the first-added time
    /// costs no extra request and survives retries.
    pub fn first_added_attribute(&self) -> String {
        format!("s3i_segment:{}", self.segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name_problem("VIP customers"), None);
        assert_eq!(name_problem("churn-risk_2026.q4:eu"), None);
        assert!(name_problem("").is_some());
        assert!(name_problem("#segments").is_some());
        assert!(name_problem(" padded").is_some());
        assert!(name_problem(&"x".repeat(129)).is_some());
    }

    #[test]
    fn member_keys_tell_the_kinds_apart() {
        for kind in [MemberKind::Registered, MemberKind::Anonymous] {
            let key = format!("{}u#1", kind.prefix());
            assert_eq!(MemberKind::of_key(&key), Some((kind, "u#1")));
        }
        assert_eq!(MemberKind::of_key("#x"), None);
    }
}
