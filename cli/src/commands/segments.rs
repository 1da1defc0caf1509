//! `s3imports segments …`: list, show, members, archive and unarchive.

use super::{Output, clients};
use chrono::Utc;
use s3imports::aws::Clients;
use s3imports::aws::segments::SegmentStore;
use s3imports::model::segment::{MEMBERS_LIMIT, Segment, SegmentStatus};
use s3imports::ports::Segments as _;
use s3imports::ports::StoreError;
use s3imports::stack::Stack;
use serde_json::json;
use std::process::ExitCode;

pub(super) fn segments(clients: &Clients, stack: &Stack) -> SegmentStore {
    SegmentStore::new(clients.dynamodb.clone(), &stack.segments_table)
}

pub(super) fn segment_line(s: &Segment) -> String {
    format!(
        "{} [{}]: {} members; fed by {}; updated {}{}\n",
        s.name,
        s.status.as_str(),
        s.member_count,
        if s.imports.is_empty() {
            "no import".to_string()
        } else {
            s.imports.join(", ")
        },
        s.updated_at
            .map_or_else(|| "never".into(), |t| t.to_rfc3339()),
        s.description
            .as_deref()
            .map(|d| format!(" — {d}"))
            .unwrap_or_default()
    )
}

pub async fn segments_list(out: &Output, stack: &Stack) -> anyhow::Result<ExitCode> {
    let clients = clients().await;
    let all = segments(&clients, stack).list().await?;
    out.emit(json!({"segments": all}), || {
        if all.is_empty() {
            "no segments yet: a user import's config names one with \"segment\"\n".into()
        } else {
            all.iter().map(segment_line).collect()
        }
    });
    Ok(ExitCode::SUCCESS)
}

pub async fn segments_show(out: &Output, stack: &Stack, name: &str) -> anyhow::Result<ExitCode> {
    let clients = clients().await;
    let segment = segments(&clients, stack)
        .get(name)
        .await?
        .ok_or_else(|| StoreError::NoSegment(name.to_string()))?;
    out.emit(serde_json::to_value(&segment)?, || segment_line(&segment));
    Ok(ExitCode::SUCCESS)
}

pub async fn segments_members(
    out: &Output,
    stack: &Stack,
    name: &str,
    limit: Option<usize>,
    cursor: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let limit = MEMBERS_LIMIT.check(limit.unwrap_or(MEMBERS_LIMIT.default))?;
    let clients = clients().await;
    let store = segments(&clients, stack);
    if store.get(name).await?.is_none() {
        return Err(StoreError::NoSegment(name.to_string()).into());
    }
    let page = store.members(name, limit, cursor).await?;
    out.emit(serde_json::to_value(&page)?, || {
        let mut t = String::new();
        for m in &page.members {
            t.push_str(&format!(
                "{} ({}): first added {}, last added {} by import {} run {}\n",
                m.id,
                m.kind.as_str(),
                m.first_added.map_or_else(String::new, |t| t.to_rfc3339()),
                m.last_added.map_or_else(String::new, |t| t.to_rfc3339()),
                m.import_id,
                m.run_id
            ));
        }
        if let Some(c) = &page.next_cursor {
            t.push_str(&format!(
                "next page: s3imports segments members \"{name}\" --cursor {c}\n"
            ));
        }
        t
    });
    Ok(ExitCode::SUCCESS)
}

pub async fn segments_set_status(
    out: &Output,
    stack: &Stack,
    name: &str,
    status: SegmentStatus,
) -> anyhow::Result<ExitCode> {
    let clients = clients().await;
    let segment = segments(&clients, stack)
        .set_status(name, status, Utc::now())
        .await?;
    out.emit(serde_json::to_value(&segment)?, || {
        let note = match status {
            SegmentStatus::Archived if !segment.imports.is_empty() => format!(
                "; imports {} still add their users to it",
                segment.imports.join(", ")
            ),
            _ => String::new(),
        };
        format!("segment \"{name}\" {}{note}\n", status.as_str())
    });
    Ok(ExitCode::SUCCESS)
}
