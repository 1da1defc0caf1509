//! New import: the wizard of `config new` (its steps, questions, checks and messages)
//! a step a page, through [`crate::wizard::form::Form`]; Save stores the config as
//! `config put` does. Edit: the stored config as JSON, checked by the same
//! `ImportConfig::from_value` and stored the same way; secret references stay hidden.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use s3imports::model::config::{ConfigError, ImportConfig};
use s3imports::model::mapping_spec::CATALOG;
use s3imports::operate::preview::{Preview, PreviewError};
use s3imports::ports::Configs as _;
use serde_json::{Map, Value};

use super::Shared;
use super::page::{Failure, Notice, csrf, enc, layout, notice};
use crate::commands::config::{WizardServices, store_config};
use crate::wizard::form::{Asked, Form, Stopped};

/// Why nothing was fetched (not shown: the empty questions say it).
const UNANSWERED: &str = "Answer every question of this step, then fetch the file.";

const STEPS: [&str; 3] = [
    "Source and format",
    "Mapping",
    "Frequency and notifications",
];

/// The wizard's services for a page: the CLI's, but nothing is fetched while a
/// question of the step has no answer, the newest file's preview is kept for the
/// page, and a key is made once however often the wizard runs.
struct PageServices<'a> {
    console: &'a Shared,
    unanswered: Arc<AtomicBool>,
    halt: Arc<AtomicBool>,
    preview: RefCell<Option<Preview>>,
}

impl PageServices<'_> {
    /// The CLI's services, which do the work.
    fn cli(&self) -> WizardServices<'_> {
        let c = self.console;
        WizardServices {
            clients: &c.clients,
            stack: &c.stack,
            secrets_prefix: &c.secrets_prefix,
        }
    }
}

#[async_trait::async_trait(?Send)]
impl crate::wizard::Services for PageServices<'_> {
    async fn preview(&self, config: &Value) -> Result<Preview, PreviewError> {
        if self.unanswered.load(Ordering::Relaxed) {
            self.halt.store(true, Ordering::Relaxed);
            return Err(PreviewError {
                status: 400,
                message: UNANSWERED.into(),
                detail: None,
                problems: Vec::new(),
            });
        }
        let preview = self.cli().preview(config).await?;
        *self.preview.borrow_mut() = Some(preview.clone());
        Ok(preview)
    }

    async fn new_key(
        &self,
        name: &str,
        import_id: &str,
        passphrase: bool,
    ) -> anyhow::Result<(String, Value)> {
        // Not with a placeholder for the import's id or the key's name: a key is made
        // once the step's answers are all given.
        if self.unanswered.load(Ordering::Relaxed) {
            self.halt.store(true, Ordering::Relaxed);
            anyhow::bail!(UNANSWERED);
        }
        let c = self.console;
        if let Some(made) = c.made_keys.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(made);
        }
        let made = self.cli().new_key(name, import_id, passphrase).await?;
        if let Ok(mut m) = c.made_keys.lock() {
            m.insert(name.to_string(), made.clone());
        }
        Ok(made)
    }
}

/// One pass of the wizard over a form's answers.
struct Pass {
    form: Form,
    result: Result<ImportConfig, String>,
    preview: Option<Preview>,
    mapping_text: String,
    /// Answers not shown on the page, carried on as hidden fields.
    carried: Map<String, Value>,
}

async fn run_wizard(
    console: Shared,
    answers: Map<String, Value>,
    mapping_text: String,
    target: u8,
) -> Pass {
    let mut answers_for_wizard = answers.clone();
    // A pasted or uploaded mapping file: the wizard loads it from a path, as in the
    // terminal.
    let file = if mapping_text.trim().is_empty() {
        None
    } else {
        tempfile::NamedTempFile::new()
            .and_then(|f| std::fs::write(f.path(), &mapping_text).map(|()| f))
            .ok()
    };
    answers_for_wizard.insert(
        "mapping_file".into(),
        Value::String(
            file.as_ref()
                .map(|f| f.path().to_string_lossy().to_string())
                .unwrap_or_default(),
        ),
    );
    let mut form = Form::new(answers_for_wizard, target);
    let services = PageServices {
        console: &console,
        unanswered: form.unanswered.clone(),
        halt: form.halt.clone(),
        preview: RefCell::new(None),
    };
    let result = crate::wizard::run(&mut form, &services, None)
        .await
        .map_err(|e| {
            if e.downcast_ref::<Stopped>().is_some() {
                String::new()
            } else {
                format!("{e:#}")
            }
        });
    let mut carried = answers;
    carried.remove("mapping_file");
    Pass {
        form,
        result,
        preview: services.preview.into_inner(),
        mapping_text,
        carried,
    }
}

/// Runs the wizard off the server's worker threads: its prompt is not `Send`.
async fn pass(
    console: &Shared,
    answers: Map<String, Value>,
    mapping_text: String,
    target: u8,
) -> Result<Pass, Failure> {
    let c = console.clone();
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Handle::current().block_on(run_wizard(c, answers, mapping_text, target))
    })
    .await
    .map_err(|e| {
        Failure::new(
            console,
            StatusCode::INTERNAL_SERVER_ERROR,
            "The set-up stopped",
            e.to_string(),
        )
    })
}

pub async fn start(State(c): State<Shared>) -> Result<Response, Failure> {
    let p = pass(&c, Map::new(), String::new(), 1).await?;
    Ok(render(&c, &p, None).into_response())
}

/// A step's form posted: Back, Update (the same step again, e.g. after a choice
/// changed), Continue (check this step, show the next) or Save.
pub async fn step(
    State(c): State<Shared>,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let mut answers = Map::new();
    let (mut nav, mut shown, mut mapping_text) = (String::new(), 1u8, String::new());
    for (k, v) in fields {
        match k.as_str() {
            "csrf" => {}
            "nav" => nav = v,
            "shown" => shown = v.parse().unwrap_or(1).clamp(1, 3),
            "mapping_text" => mapping_text = v,
            _ => {
                answers.insert(k, Value::String(v));
            }
        }
    }
    let target = match nav.as_str() {
        "continue" => shown + 1,
        "back" => shown.saturating_sub(1).max(1),
        "save" => 4,
        _ => shown,
    }
    .min(4);
    let p = pass(&c, answers, mapping_text, target).await?;
    if target == 4
        && let Ok(config) = &p.result
    {
        return Ok(match store_config(&c.clients, &c.stack, config).await {
            Ok(stored) => {
                let body = html! {
                    (notice(Notice::Done, &format!(
                        "Import {} {}; status {}; next run {}.",
                        config.id, stored.verb, stored.record.status.as_str(),
                        super::page::time(stored.record.next_run_at))))
                    @if let Some(s) = &stored.segment { p { "It adds its users to segment " a href={ "/segments/" (enc(&s.name)) } { (s.name) } "." } }
                    p { a href={ "/imports/" (enc(&config.id)) } { "Open " (config.name) } }
                };
                (StatusCode::CREATED, layout(&c, "Saved", body)).into_response()
            }
            Err(e) => (StatusCode::CONFLICT, render(&c, &p, Some(e.to_string()))).into_response(),
        });
    }
    Ok(render(&c, &p, None).into_response())
}

/// The page of the step the wizard stopped at.
fn render(c: &Shared, p: &Pass, refused: Option<String>) -> Markup {
    let step = p.form.step().clamp(1, 3);
    let shown: Vec<&Asked> = p.form.asked.iter().filter(|a| a.step == step).collect();
    let shown_ids: std::collections::HashSet<&str> = shown.iter().map(|a| a.id.as_str()).collect();
    let said: Vec<&str> = p
        .form
        .said
        .iter()
        .filter(|(s, _)| *s == step)
        .map(|(_, t)| t.as_str())
        .filter(|t| {
            !t.starts_with("Fetching") && !t.starts_with("Standard attributes") && *t != UNANSWERED
        })
        .collect();
    // The wizard's own verdict on the whole config, once nothing is left unanswered.
    let problem = match &p.result {
        Err(e) if !e.is_empty() && !p.form.unanswered.load(Ordering::Relaxed) => Some(e.clone()),
        _ => None,
    };
    let title = format!(
        "New import — step {step} of 3: {}",
        STEPS[usize::from(step - 1)]
    );
    let body = html! {
        ol.steps aria-label="Steps" {
            @for (i, name) in STEPS.iter().enumerate() {
                li aria-current=[(usize::from(step) == i + 1).then_some("step")] { (name) }
            }
        }
        @if let Some(r) = &refused { (notice(Notice::Refused, r)) }
        @if let Some(pr) = &problem { (notice(Notice::Refused, pr)) }
        @for s in &said {
            @if step == 2 && p.preview.is_some() && s.contains(" — top ") {
            } @else {
                pre.said { (s) }
            }
        }
        @if step == 2 { @if let Some(preview) = &p.preview { (preview_table(preview)) } }
        form.wizard method="post" action="/new" {
            (csrf(c))
            input type="hidden" name="shown" value=(step);
            @for (k, v) in &p.carried {
                @if !shown_ids.contains(k.as_str()) {
                    input type="hidden" name=(k) value=(v.as_str().unwrap_or_default());
                }
            }
            @if step != 2 { input type="hidden" name="mapping_text" value=(p.mapping_text); }
            (questions(&shown, p.preview.as_ref(), &p.mapping_text, step))
            div.buttons {
                @if step > 1 { button type="submit" name="nav" value="back" formnovalidate { "Back" } }
                button type="submit" name="nav" value="update" formnovalidate data-update { "Update" }
                @match step {
                    1 => button.primary type="submit" name="nav" value="continue" { "Fetch file and continue" },
                    2 => button.primary type="submit" name="nav" value="continue" { "Continue" },
                    _ => button.primary type="submit" name="nav" value="save" { "Save import" },
                }
            }
        }
    };
    layout(c, &title, body)
}

/// The newest file's columns and top rows, as the preview API gives them.
fn preview_table(preview: &Preview) -> Markup {
    html! {
        section.preview aria-labelledby="preview-title" {
            h2 #preview-title { "The newest file: " code { (preview.file.key) } }
            table {
                caption { "Its top " (preview.rows.len()) " row(s)" }
                thead { tr { @for col in &preview.columns { th scope="col" { (col.name) } } } }
                tbody { @for row in &preview.rows { tr { @for v in row { td { (v.as_deref().unwrap_or("")) } } } } }
            }
            @for e in &preview.row_errors { p.problem { (e) } }
        }
    }
}

fn control(a: &Asked, index: usize, label: Option<&str>) -> Markup {
    let id = format!("q{index}");
    let value = Form::shown(&a.value);
    let described = a.problem.as_ref().map(|_| format!("{id}-problem"));
    html! {
        @if a.choices.is_empty() {
            input type="text" id=(id) name=(a.id) value=(value) aria-label=[label]
                aria-describedby=[described.as_deref()] aria-invalid=[a.problem.as_ref().map(|_| "true")]
                list=[a.id.starts_with("column.").then_some("attributes")]
                required[a.default.is_none()];
        } @else {
            select id=(id) name=(a.id) aria-label=[label] aria-describedby=[described.as_deref()] data-live {
                @for (v, m) in &a.choices {
                    option value=(v) selected[v.as_str() == value] { (v) @if !m.is_empty() { " — " (m) } }
                }
            }
        }
        @if let Some(problem) = &a.problem { span.problem id=(format!("{id}-problem")) role="alert" { (problem) } }
    }
}

/// The step's questions: one labelled control each; on the mapping step, the
/// columns as a table (sample, attribute, type, date-time format).
fn questions(shown: &[&Asked], preview: Option<&Preview>, mapping_text: &str, step: u8) -> Markup {
    let column_of = |a: &Asked, prefix: &str| a.id.strip_prefix(prefix).map(str::to_string);
    let columns: Vec<String> = shown
        .iter()
        .filter_map(|a| column_of(a, "column."))
        .collect();
    let find = |prefix: &str, name: &str| {
        shown
            .iter()
            .enumerate()
            .find(|(_, a)| a.id == format!("{prefix}{name}"))
            .map(|(i, a)| (i, *a))
    };
    html! {
        @for (i, a) in shown.iter().enumerate() {
            @if a.id == "mapping_file" {
                div.question {
                    label for="mapping_text" { "Or load a mapping: a MoEngage mapping file or an s3imports manifest (paste it, or choose the file)" }
                    textarea #mapping_text name="mapping_text" rows="4" { (mapping_text) }
                    input type="file" #mapping_upload aria-label="Choose a mapping file" data-into="mapping_text" accept=".csv,.json,.txt";
                    @if let Some(problem) = &a.problem { span.problem role="alert" { (problem) } }
                }
            } @else if !(a.id.starts_with("column.") || a.id.starts_with("type.") || a.id.starts_with("format.")) {
                div.question {
                    label for=(format!("q{i}")) { (a.text) }
                    (control(a, i, None))
                }
            }
        }
        @if step == 2 && !columns.is_empty() {
            datalist #attributes {
                @for attr in CATALOG { option value=(attr.name) {} }
                option value="skip" {}
            }
            table.mapping {
                caption { "Each column: the attribute it goes to (a standard one, a new name, or " code { "skip" } "), its type, and a date-time's format" }
                thead { tr { th scope="col" { "Column" } th scope="col" { "Sample" } th scope="col" { "Attribute" }
                    th scope="col" { "Type" } th scope="col" { "Date-time format" } } }
                tbody {
                    @for name in &columns {
                        tr {
                            th scope="row" { (name) }
                            td { code { (preview.and_then(|p| p.columns.iter().find(|c| &c.name == name)).and_then(|c| c.sample.as_deref()).unwrap_or("")) } }
                            td { @if let Some((i, a)) = find("column.", name) { (control(a, i, Some(&format!("Attribute for column {name}")))) } }
                            td { @if let Some((i, a)) = find("type.", name) { (control(a, i, Some(&format!("Type of column {name}")))) } }
                            td { @if let Some((i, a)) = find("format.", name) { (control(a, i, Some(&format!("Date-time format of column {name}")))) } }
                        }
                    }
                }
            }
        }
    }
}

/// Secret references show as `***`; a `***` left in place keeps the stored value.
fn restore_references(edited: &mut Value, stored: &Value) {
    match (edited, stored) {
        (Value::Object(e), Value::Object(s)) => {
            for (k, v) in e.iter_mut() {
                match s.get(k) {
                    Some(old) if v.as_str() == Some("***") => *v = old.clone(),
                    Some(old) => restore_references(v, old),
                    None => {}
                }
            }
        }
        (Value::Array(e), Value::Array(s)) => {
            for (v, old) in e.iter_mut().zip(s) {
                restore_references(v, old);
            }
        }
        _ => {}
    }
}

fn edit_page(c: &Shared, id: &str, text: &str, problems: &[String]) -> Markup {
    let body = html! {
        p { "The config as " code { "config put" } " takes it (docs/config.md). Secret references show as " code { "***" } "; left so, they keep their stored value." }
        @for p in problems { (notice(Notice::Refused, p)) }
        form method="post" action={ "/imports/" (enc(id)) "/edit" } {
            (csrf(c))
            label for="config" { "Config (JSON)" }
            textarea #config name="config" rows="30" spellcheck="false" { (text) }
            div.buttons {
                button.primary type="submit" { "Check and save" }
                " " a href={ "/imports/" (enc(id)) } { "Cancel" }
            }
        }
    };
    layout(c, &format!("Edit {id}"), body)
}

pub async fn edit(State(c): State<Shared>, Path(id): Path<String>) -> Result<Markup, Failure> {
    let record = c
        .configs
        .require(&id)
        .await
        .map_err(|e| Failure::store(&c, &e))?;
    let text = serde_json::to_string_pretty(&record.config.redacted()).unwrap_or_default();
    Ok(edit_page(&c, &id, &text, &[]))
}

#[derive(serde::Deserialize)]
pub struct EditForm {
    config: String,
}

pub async fn save_edit(
    State(c): State<Shared>,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<EditForm>,
) -> Result<Response, Failure> {
    let record = c
        .configs
        .require(&id)
        .await
        .map_err(|e| Failure::store(&c, &e))?;
    let refuse = |problems: Vec<String>| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            edit_page(&c, &id, &f.config, &problems),
        )
            .into_response()
    };
    let mut value: Value = match serde_json::from_str(&f.config) {
        Ok(v) => v,
        Err(e) => return Ok(refuse(vec![format!("not JSON: {e}")])),
    };
    restore_references(
        &mut value,
        &serde_json::to_value(&record.config).unwrap_or_default(),
    );
    let config = match ImportConfig::from_value(value) {
        Ok(config) => config,
        Err(ConfigError::Invalid(problems)) => {
            return Ok(refuse(problems.iter().map(ToString::to_string).collect()));
        }
        Err(e) => return Ok(refuse(vec![e.to_string()])),
    };
    if config.id != id {
        return Ok(refuse(vec![format!(
            "the id is the import's name: `{}` cannot become `{}` (make a new import instead)",
            id, config.id
        )]));
    }
    Ok(match store_config(&c.clients, &c.stack, &config).await {
        Ok(stored) => {
            let body = html! {
                (notice(Notice::Done, &format!("Import {id} {}; status {}.", stored.verb, stored.record.status.as_str())))
                p { a href={ "/imports/" (enc(&id)) } { "Back to " (id) } }
            };
            (StatusCode::OK, layout(&c, "Saved", body)).into_response()
        }
        Err(e) => refuse(vec![e.to_string()]),
    })
}
