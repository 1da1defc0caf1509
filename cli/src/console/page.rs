//! The layout every page shares, and its pieces: statuses in words as well as colour,
//! times, the CSRF field, and failures as pages. Every value goes through maud, which
//! escapes it: a file or column named `<script>` is shown as text.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::Shared;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

pub async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

pub async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

/// A page: the navigation, the title as its heading, the body.
pub fn layout(console: &Shared, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · s3imports console" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header.top {
                    span.brand { "s3imports" }
                    nav aria-label="Sections" {
                        a href="/" { "Imports" }
                        a href="/new" { "New import" }
                        a href="/segments" { "Segments" }
                    }
                    span.stack title="The stack's configs table" { (console.stack.configs_table) }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page outside the console's session (a refusal before the cookie is set).
pub fn bare(title: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) " · s3imports console" } }
            body { main { h1 { (title) } p { (message) } } }
        }
    }
}

/// The hidden field every form posts back (see `guard`).
pub fn csrf(console: &Shared) -> Markup {
    html! { input type="hidden" name="csrf" value=(console.guard.csrf()); }
}

/// A status as a word with its colour (the word carries it; the colour only helps).
pub fn status(label: &str) -> Markup {
    let class = label.to_ascii_lowercase().replace([' ', '_'], "-");
    html! { span class={ "status status-" (class) } { (label) } }
}

pub fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "—".to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// A path segment or query value, percent-encoded for a link.
pub fn enc(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A message box: `role=status` for news, `role=alert` for a refusal.
pub fn notice(kind: Notice, text: &str) -> Markup {
    match kind {
        Notice::Done => html! { p.notice.done role="status" { (text) } },
        Notice::Refused => html! { p.notice.refused role="alert" { (text) } },
    }
}

#[derive(Clone, Copy)]
pub enum Notice {
    Done,
    Refused,
}

/// A page that could not be made: its status and the store's own message.
pub struct Failure {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    pub console: Shared,
}

impl Failure {
    pub fn new(console: &Shared, status: StatusCode, title: &str, message: String) -> Self {
        Self {
            status,
            title: title.into(),
            message,
            console: console.clone(),
        }
    }

    /// An action the page does not offer (a hand-made address).
    pub fn no_action(console: &Shared, action: &str) -> Self {
        Self::new(
            console,
            StatusCode::BAD_REQUEST,
            "No such action",
            format!("`{action}` is not an action"),
        )
    }

    /// A store's failure: not found is 404, the rest is the stack's (503).
    pub fn store(console: &Shared, e: &s3imports::ports::StoreError) -> Self {
        use s3imports::ports::StoreError;
        let status = match e {
            StoreError::NotFound(_) | StoreError::NoSegment(_) => StatusCode::NOT_FOUND,
            StoreError::Page(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self::new(console, status, "Could not read the stack", e.to_string())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = layout(
            &self.console,
            &self.title,
            html! { (notice(Notice::Refused, &self.message)) p { a href="/" { "Back to the imports" } } },
        );
        (self.status, body).into_response()
    }
}

pub async fn not_found(axum::extract::State(console): axum::extract::State<Shared>) -> Response {
    Failure::new(
        &console,
        StatusCode::NOT_FOUND,
        "Not found",
        "The console has no such page.".into(),
    )
    .into_response()
}
