//! Segments: every segment with its members count and feeding imports, one segment's
//! members a page at a time, archive and unarchive (confirmed first).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{Markup, html};
use s3imports::model::segment::{MEMBERS_LIMIT, SegmentStatus};
use s3imports::ports::{Segments as _, StoreError};
use serde::Deserialize;

use super::Shared;
use super::page::{Failure, Notice, csrf, enc, layout, notice, status, time};

pub async fn list(State(c): State<Shared>) -> Result<Markup, Failure> {
    let all = c
        .segments
        .list()
        .await
        .map_err(|e| Failure::store(&c, &e))?;
    let body = html! {
        @if all.is_empty() {
            p { "No segments yet: a users import's config names one (its last set-up step)." }
        } @else {
            table {
                thead { tr { th scope="col" { "Segment" } th scope="col" { "Status" } th scope="col" { "Members" }
                    th scope="col" { "Fed by" } th scope="col" { "Updated" } } }
                tbody {
                    @for s in &all {
                        tr {
                            td { a href={ "/segments/" (enc(&s.name)) } { (s.name) } }
                            td { (status(s.status.as_str())) }
                            td { (s.member_count) }
                            td { @for (i, id) in s.imports.iter().enumerate() {
                                @if i > 0 { ", " } a href={ "/imports/" (enc(id)) } { (id) } } }
                            td { (time(s.updated_at)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(&c, "Segments", body))
}

#[derive(Deserialize, Default)]
pub struct MembersQuery {
    cursor: Option<String>,
}

pub async fn segment(
    State(c): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<MembersQuery>,
) -> Result<Markup, Failure> {
    let segment = c
        .segments
        .get(&name)
        .await
        .map_err(|e| Failure::store(&c, &e))?
        .ok_or_else(|| Failure::store(&c, &StoreError::NoSegment(name.clone())))?;
    let page = c
        .segments
        .members(
            &name,
            MEMBERS_LIMIT.default,
            q.cursor.as_deref().filter(|s| !s.is_empty()),
        )
        .await
        .map_err(|e| Failure::store(&c, &e))?;
    let archived = segment.status == SegmentStatus::Archived;
    let body = html! {
        dl.facts {
            dt { "Status" } dd { (status(segment.status.as_str())) }
            dt { "Members" } dd { (segment.member_count) " (counted " (time(segment.counted_at)) ")" }
            dt { "Fed by" } dd { @for (i, id) in segment.imports.iter().enumerate() {
                @if i > 0 { ", " } a href={ "/imports/" (enc(id)) } { (id) } } }
        }
        form method="get" action={ "/segments/" (enc(&name)) "/confirm" } {
            input type="hidden" name="action" value=(if archived { "unarchive" } else { "archive" });
            button type="submit" { @if archived { "Unarchive" } @else { "Archive" } }
        }
        h2 { "Members" }
        @if page.members.is_empty() {
            p { "No members yet." }
        } @else {
            table {
                thead { tr { th scope="col" { "Member" } th scope="col" { "Kind" } th scope="col" { "First added" }
                    th scope="col" { "Last added" } th scope="col" { "By" } } }
                tbody { @for m in &page.members { tr {
                    td { code { (m.id) } } td { (format!("{:?}", m.kind).to_lowercase()) }
                    td { (time(m.first_added)) } td { (time(m.last_added)) }
                    td { a href={ "/imports/" (enc(&m.import_id)) } { (m.import_id) } " run " (m.run_id) }
                } } }
            }
            @if let Some(next) = &page.next_cursor {
                p { a href={ "/segments/" (enc(&name)) "?cursor=" (enc(next)) } { "More members" } }
            }
        }
    };
    Ok(layout(&c, &format!("Segment {name}"), body))
}

#[derive(Deserialize)]
pub struct SegmentAction {
    action: String,
}

/// The status an action asks for.
fn wanted(c: &Shared, a: &SegmentAction) -> Result<SegmentStatus, Failure> {
    match a.action.as_str() {
        "archive" => Ok(SegmentStatus::Archived),
        "unarchive" => Ok(SegmentStatus::Active),
        other => Err(Failure::no_action(c, other)),
    }
}

pub async fn confirm(
    State(c): State<Shared>,
    Path(name): Path<String>,
    Query(a): Query<SegmentAction>,
) -> Result<Markup, Failure> {
    let to = wanted(&c, &a)?;
    let what = match to {
        SegmentStatus::Archived => format!(
            "Archive segment `{name}`: its imports still add their users to it (nothing is dropped)."
        ),
        SegmentStatus::Active => format!("Make segment `{name}` active again."),
    };
    let body = html! {
        p { (what) }
        form method="post" action={ "/segments/" (enc(&name)) "/act" } {
            (csrf(&c))
            input type="hidden" name="action" value=(a.action);
            button type="submit" { "Yes, " (a.action) " it" }
            " "
            a href={ "/segments/" (enc(&name)) } { "Cancel" }
        }
    };
    Ok(layout(&c, "Confirm", body))
}

pub async fn act(
    State(c): State<Shared>,
    Path(name): Path<String>,
    axum::Form(a): axum::Form<SegmentAction>,
) -> Result<Response, Failure> {
    let to = wanted(&c, &a)?;
    let (code, kind, text) = match c.segments.set_status(&name, to, Utc::now()).await {
        Ok(s) => (
            StatusCode::OK,
            Notice::Done,
            format!("Segment {} is {}.", s.name, s.status.as_str()),
        ),
        Err(e) => (StatusCode::CONFLICT, Notice::Refused, e.to_string()),
    };
    let body = html! {
        (notice(kind, &text))
        p { a href={ "/segments/" (enc(&name)) } { "Back to " (name) } }
    };
    Ok((code, layout(&c, "Segment", body)).into_response())
}
