//! `s3imports console`: the operator's web console, served on 127.0.0.1 by this binary
//! with the operator's own AWS credentials and the stack's names, like every other
//! command. It adds no surface to the stack and no second way in: pages read and write
//! through the same `shared` code as the CLI and the preview API, and only present it.
//!
//! By page: `imports` (the list and one import: runs, files, reports, chart), `actions`
//! (run now, replay, dry run, archive: each confirmed first), `setup` (a new import in
//! the wizard's three steps, and edit), `segments`; `guard` keeps other local users and
//! other web pages out; `page` is the layout and the pieces every page shares.

mod actions;
mod guard;
mod imports;
mod page;
mod segments;
mod setup;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use s3imports::aws::Clients;
use s3imports::aws::configs::ConfigStore;
use s3imports::aws::ledger::LedgerStore;
use s3imports::aws::reports::ReportStore;
use s3imports::aws::segments::SegmentStore;
use s3imports::discover::Discovery;
use s3imports::model::ledger::ManualRun;
use s3imports::stack::Stack;

/// What the pages read and write through: the stack's stores and discovery, as the
/// preview API wires them, with the operator's credentials.
pub struct Console {
    pub stack: Stack,
    pub clients: Clients,
    pub configs: ConfigStore,
    pub ledger: LedgerStore,
    pub reports: ReportStore,
    pub segments: SegmentStore,
    pub discovery: Discovery,
    /// Who the runs started here are recorded as (the STS caller, via `console`).
    pub caller: ManualRun,
    /// A local emulator (`AWS_ENDPOINT_URL`): a dry run is read here, as `dry-run` does.
    pub local: bool,
    pub secrets_prefix: String,
    pub guard: guard::Guard,
    /// Keys the set-up made, by name: the wizard runs again on every page, and a key
    /// is made once.
    made_keys: Mutex<HashMap<String, (String, serde_json::Value)>>,
}

/// How `s3imports console` was asked to start.
pub struct Options {
    /// The port on 127.0.0.1 (0: a free one).
    pub port: u16,
    /// Open the page in a browser, where one exists.
    pub open: bool,
    pub secrets_prefix: String,
}

pub type Shared = Arc<Console>;

fn router(console: Shared) -> Router {
    Router::new()
        .route("/", get(imports::list))
        .route("/imports/{id}", get(imports::import))
        .route("/imports/{id}/runs/{run_id}", get(imports::run))
        .route("/imports/{id}/runs/{run_id}/report", get(imports::report))
        .route(
            "/imports/{id}/runs/{run_id}/report.csv",
            get(imports::report_download),
        )
        .route("/imports/{id}/confirm", get(actions::confirm))
        .route("/imports/{id}/act", post(actions::act))
        .route("/dry-runs/{id}", get(actions::dry_run))
        .route(
            "/imports/{id}/edit",
            get(setup::edit).post(setup::save_edit),
        )
        .route("/new", get(setup::start).post(setup::step))
        .route("/segments", get(segments::list))
        .route("/segments/{name}", get(segments::segment))
        .route("/segments/{name}/confirm", get(segments::confirm))
        .route("/segments/{name}/act", post(segments::act))
        .route("/assets/console.css", get(page::css))
        .route("/assets/console.js", get(page::js))
        .fallback(page::not_found)
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            guard::check,
        ))
        .with_state(console)
}

/// Serves the console until the process is stopped.
pub async fn serve(stack: Stack, options: Options) -> anyhow::Result<()> {
    let clients = Clients::new(&s3imports::aws::load_config().await);
    let mut caller = crate::commands::run::cli_caller(&clients).await?;
    caller.via = "console".into();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], options.port)))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{}", options.port))?;
    let addr = listener.local_addr()?;
    let guard = guard::Guard::new(addr.port());
    let url = format!("http://{addr}/?token={}", guard.token());
    let console = Arc::new(Console {
        configs: ConfigStore::new(clients.dynamodb.clone(), &stack.configs_table),
        ledger: LedgerStore::new(clients.dynamodb.clone(), &stack.ledger_table),
        reports: ReportStore::new(clients.s3.clone(), &stack.reports_bucket),
        segments: SegmentStore::new(clients.dynamodb.clone(), &stack.segments_table),
        discovery: Discovery::wired(&clients, &stack),
        local: clients.sdk.endpoint_url().is_some(),
        caller,
        secrets_prefix: options.secrets_prefix,
        guard,
        made_keys: Mutex::new(HashMap::new()),
        stack,
        clients,
    });
    // The address carries this start's token: whoever opens it is let in (a cookie
    // from then on); without it, nothing is served.
    println!(
        "s3imports console for the stack's configs table {}",
        console.stack.configs_table
    );
    println!("open {url}");
    println!("(only on this machine; the token changes every start; Ctrl-C stops it)");
    if options.open {
        open_browser(&url);
    }
    axum::serve(listener, router(console))
        .await
        .context("serving the console")
}

/// Opens `url` in the desktop's browser, where there is one (a headless machine has
/// none: the printed address is enough).
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let has_display = cfg!(target_os = "macos")
        || std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if has_display {
        let _ = std::process::Command::new(opener)
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}
