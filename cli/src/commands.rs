//! The CLI's commands: each prints text for people or JSON for scripts.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use s3imports::aws::configs::{ConfigStore, PutOutcome};
use s3imports::aws::ledger::LedgerStore;
use s3imports::aws::queue::SqsQueue;
use s3imports::aws::reports::ReportStore;
use s3imports::aws::segments::SegmentStore;
use s3imports::aws::{Clients, load_config, provision::provision as provision_stack};
use s3imports::discover::Discovery;
use s3imports::discover::report::TickOutcome;
use s3imports::model::config::{ConfigError, ImportConfig};
use s3imports::model::ledger::FileRecord;
use s3imports::model::pages::{
    FILES_LIMIT, FilesCursor, RUN_FILES_LIMIT, RUNS_LIMIT, RunsCursor, plausible_run_id,
};
use s3imports::model::segment::{MEMBERS_LIMIT, Segment, SegmentStatus};
use s3imports::ports::Segments as _;
use s3imports::ports::{StoreError, find_report};
use s3imports::process::RecordOutcome;
use s3imports::process::delivery::DEFAULT_MAX_RECEIVES;
use s3imports::process::settings::ProcessorSettings;
use s3imports::process::{Processed, Processor};
use s3imports::stack::Stack;
use s3imports::{Clock, FixedClock, SystemClock};
use serde_json::json;

pub struct Output {
    pub json: bool,
}

impl Output {
    fn emit(&self, value: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            print!("{}", text());
        }
    }
}

async fn clients() -> Clients {
    Clients::new(&load_config().await)
}

fn read_config(file: &str) -> anyhow::Result<Result<ImportConfig, ConfigError>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    Ok(ImportConfig::from_json(&text))
}

/// What a local sample file says about the mapping: unmapped and absent columns, or why
/// the mapping would fail on it.
fn check_sample(
    config: &ImportConfig,
    sample: &str,
    manifest: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    use s3imports::codec::reader::{ReadOptions, open_reader};
    use s3imports::rows::mapping::{CompiledMapping, MappingSpec, parse_manifest};
    use std::io::{BufRead, BufReader};
    let mappings = match (&config.mapping, manifest) {
        (MappingSpec::Columns { columns }, _) => columns.clone(),
        (MappingSpec::Manifest { .. }, Some(path)) => parse_manifest(
            &std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        )?,
        (MappingSpec::Manifest { manifest }, None) => {
            bail!("the config's mapping is in `{manifest}`: give its local copy with --manifest")
        }
    };
    let file = std::fs::File::open(sample).with_context(|| format!("reading {sample}"))?;
    let mut input = BufReader::new(file);
    let head = input.fill_buf()?;
    if s3imports::codec::pgp::looks_like_pgp(head) {
        bail!("{sample} is PGP-encrypted: decrypt it first (gpg --decrypt) to check its columns");
    }
    let plain: Box<dyn std::io::Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let json = config.file_type == s3imports::model::naming::FileType::Json;
    let csv = ReadOptions {
        delimiter: u8::try_from(u32::from(config.delimiter)).unwrap_or(b','),
        ..Default::default()
    };
    let reader =
        open_reader(json, plain, &csv, None).with_context(|| format!("reading {sample}"))?;
    let columns = reader.columns().to_vec();
    Ok(match CompiledMapping::new(config, &mappings, &columns) {
        Ok(m) => {
            json!({"columns": columns, "unmapped_columns": m.unmapped, "absent_columns": m.absent, "problem": null})
        }
        Err(e) => json!({"columns": columns, "problem": e.to_string()}),
    })
}

pub fn validate(
    out: &Output,
    file: &str,
    key: Option<&str>,
    sample: Option<&str>,
    manifest: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let config = match read_config(file)? {
        Ok(c) => c,
        Err(e) => {
            let problems = match &e {
                ConfigError::Invalid(p) => serde_json::to_value(p).unwrap_or_default(),
                ConfigError::Syntax(s) => json!([{"field": "", "message": s}]),
            };
            out.emit(
                json!({"valid": false, "file": file, "problems": problems}),
                || format!("{file}: not valid\n{e}\n"),
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let pattern = config.file_pattern();
    let mut valid = true;
    let sample_report = match sample {
        Some(path) => Some(check_sample(&config, path, manifest)?),
        None => None,
    };
    if sample_report
        .as_ref()
        .is_some_and(|r| !r["problem"].is_null())
    {
        valid = false;
    }
    let key_report = key.map(|k| match pattern.match_key(k) {
        Ok(m) => json!({"key": k, "matches": true, "timestamp": m.timestamp.to_string(), "gzip": m.gzip, "pgp": m.pgp}),
        Err(why) => {
            valid = false;
            json!({"key": k, "matches": false, "reason": why.to_string()})
        }
    });
    out.emit(
        json!({
            "valid": valid,
            "file": file,
            "id": config.id,
            "schedule": config.schedule.describe(config.timezone),
            "file_prefix": config.file_prefix(),
            "example_file": pattern.example_name(),
            "key": key_report,
            "sample": sample_report,
        }),
        || {
            let mut t = format!(
                "{file}: valid\n  import: {} ({})\n  kind: {}\n  files: s3://{}/{}/{}\n  schedule: {}\n",
                config.name,
                config.id,
                config.kind.describe(),
                config.source.bucket,
                config.source.folder,
                pattern.example_name(),
                config.schedule.describe(config.timezone),
            );
            if let (Some(path), Some(r)) = (sample, &sample_report) {
                let list = |v: &serde_json::Value| {
                    v.as_array()
                        .map(|a| a.iter().filter_map(|c| c.as_str()).map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                };
                match r["problem"].as_str() {
                    Some(p) => t.push_str(&format!("  sample {path}: the mapping fails: {p}\n")),
                    None => {
                        t.push_str(&format!("  sample {path}: the mapping fits its columns\n"));
                        if !list(&r["unmapped_columns"]).is_empty() {
                            t.push_str(&format!("    not mapped (not imported): {}\n", list(&r["unmapped_columns"])));
                        }
                        if !list(&r["absent_columns"]).is_empty() {
                            t.push_str(&format!("    mapped but not in the file (ignored): {}\n", list(&r["absent_columns"])));
                        }
                    }
                }
            }
            if let (Some(k), Some(r)) = (key, &key_report) {
                if r["matches"] == true {
                    t.push_str(&format!("  key {k}: matches (time {})\n", r["timestamp"].as_str().unwrap_or_default()));
                } else {
                    t.push_str(&format!("  key {k}: does not match: {}\n", r["reason"].as_str().unwrap_or_default()));
                }
            }
            t
        },
    );
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn put(out: &Output, stack: &Stack, file: &str) -> anyhow::Result<ExitCode> {
    let config = read_config(file)?.with_context(|| format!("{file} is not a valid config"))?;
    let clients = clients().await;
    let store = ConfigStore::new(clients.dynamodb.clone(), &stack.configs_table);
    let outcome = store.put(&config, Utc::now()).await?;
    let record = store.require(&config.id).await?;
    // The segment exists (and lists this import) from the moment the config names it.
    let segment = match &config.segment {
        Some(s) => Some(
            segments(&clients, stack)
                .ensure(s, &config.id, Utc::now())
                .await?,
        ),
        None => None,
    };
    let verb = match outcome {
        PutOutcome::Created => "created",
        PutOutcome::Updated => "updated",
    };
    out.emit(
        json!({"id": config.id, "result": verb, "status": record.status.as_str(), "next_run_at": record.next_run_at, "segment": segment}),
        || {
            format!(
                "import {} {verb}; status {}; next run {}{}\n",
                config.id,
                record.status.as_str(),
                record
                    .next_run_at
                    .map_or_else(|| "none".into(), |t| t.to_rfc3339()),
                segment
                    .as_ref()
                    .map(|s| format!("; adds its users to segment \"{}\" ({})", s.name, s.status.as_str()))
                    .unwrap_or_default()
            )
        },
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn archive(out: &Output, stack: &Stack, id: &str) -> anyhow::Result<ExitCode> {
    let clients = clients().await;
    let store = ConfigStore::new(clients.dynamodb.clone(), &stack.configs_table);
    store.archive(id, Utc::now()).await?;
    out.emit(json!({"id": id, "status": "archived"}), || {
        format!("import {id} archived; it will not run again\n")
    });
    Ok(ExitCode::SUCCESS)
}

pub async fn show(out: &Output, stack: &Stack, id: &str) -> anyhow::Result<ExitCode> {
    let clients = clients().await;
    let store = ConfigStore::new(clients.dynamodb.clone(), &stack.configs_table);
    let r = store.require(id).await?;
    let value = json!({
        "id": id,
        "status": r.status.as_str(),
        "status_reason": r.status_reason,
        "next_run_at": r.next_run_at,
        "last_run_id": r.last_run_id,
        "last_run_at": r.last_run_at,
        "config": r.config.redacted(),
    });
    out.emit(value.clone(), || {
        serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
    });
    Ok(ExitCode::SUCCESS)
}

pub async fn runs(
    out: &Output,
    stack: &Stack,
    id: &str,
    limit: Option<usize>,
    cursor: Option<&str>,
    files_limit: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let limit = RUNS_LIMIT.check(limit.unwrap_or(RUNS_LIMIT.default))?;
    let files_limit = RUN_FILES_LIMIT.check(files_limit.unwrap_or(RUN_FILES_LIMIT.default))?;
    let cursor = cursor.map(RunsCursor::decode).transpose()?;
    let clients = clients().await;
    let ledger = LedgerStore::new(clients.dynamodb.clone(), &stack.ledger_table);
    let page = ledger
        .runs_page(id, cursor.as_ref(), limit, files_limit)
        .await?;
    out.emit(
        json!({
            "import_id": id,
            "runs": page.runs.iter().map(|e| json!({
                "run": e.run,
                "files": e.files,
                "files_listed": e.files_listed,
                "next_files_cursor": e.next_files_cursor,
            })).collect::<Vec<_>>(),
            "next_cursor": page.next_cursor,
        }),
        || {
            if page.runs.is_empty() && cursor.is_none() {
                return format!("import {id} has no runs yet\n");
            }
            let mut t = String::new();
            for e in &page.runs {
                let r = &e.run;
                t.push_str(&format!(
                    "run {}: {} — {} file(s), {} rows ({} imported, {} failed){}{}{}\n",
                    r.run_id,
                    r.status.label(),
                    r.files_total,
                    r.rows_total,
                    r.rows_ingested,
                    r.rows_failed,
                    r.reason
                        .as_deref()
                        .map(|x| format!("; {x}"))
                        .unwrap_or_default(),
                    r.manual
                        .as_ref()
                        .map(|m| format!("; started by hand by {} ({})", m.requested_by, m.via))
                        .unwrap_or_default(),
                    if r.keys_used.is_empty() {
                        String::new()
                    } else {
                        format!("; decrypted with {}", r.keys_used.join(", "))
                    }
                ));
                for c in &r.changed_files {
                    t.push_str(&format!(
                        "  changed under its name: {} (ETag {} when run {} imported it, now {})\n",
                        c.key, c.etag_imported, c.run_id, c.etag_now
                    ));
                }
                if let Some(a) = &r.alerts {
                    if let Some(why) = &a.attention {
                        t.push_str(&format!("  needs attention: {why}\n"));
                    }
                    for d in a.deliveries.iter().filter(|d| !d.delivered) {
                        t.push_str(&format!(
                            "  summary not delivered to {} after {} attempt(s): {}\n",
                            d.target,
                            d.attempts,
                            d.error.as_deref().unwrap_or("")
                        ));
                    }
                }
                if let Some(p) = &r.replay {
                    t.push_str(&format!(
                        "  replay of {} (was {} in run {}): {}\n",
                        p.key,
                        p.previous_status.label(),
                        p.previous_run_id,
                        p.reason
                    ));
                }
                for f in &e.files {
                    t.push_str(&file_line(f));
                }
                if let Some(c) = &e.next_files_cursor {
                    t.push_str(&format!(
                        "  ({} more file(s): s3imports runs {id} --run {} --cursor {c})\n",
                        e.files_listed.saturating_sub(e.files.len()),
                        r.run_id
                    ));
                }
            }
            if let Some(c) = &page.next_cursor {
                t.push_str(&format!("next page: s3imports runs {id} --cursor {c}\n"));
            }
            t
        },
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn run_files(
    out: &Output,
    stack: &Stack,
    id: &str,
    run_id: &str,
    limit: Option<usize>,
    cursor: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let limit = FILES_LIMIT.check(limit.unwrap_or(FILES_LIMIT.default))?;
    let cursor = cursor.map(|c| FilesCursor::decode(c, run_id)).transpose()?;
    let no_run = || anyhow::anyhow!("import `{id}` has no run `{run_id}`");
    if !plausible_run_id(run_id) {
        return Err(no_run());
    }
    let clients = clients().await;
    let ledger = LedgerStore::new(clients.dynamodb.clone(), &stack.ledger_table);
    let page = ledger
        .files_page(id, run_id, cursor.as_ref(), limit)
        .await?
        .ok_or_else(no_run)?;
    out.emit(
        json!({
            "import_id": id,
            "run": page.run,
            "files": page.files,
            "files_listed": page.files_listed,
            "next_cursor": page.next_cursor,
        }),
        || {
            let from = cursor.as_ref().map_or(0, |c| c.offset);
            let mut t = format!(
                "run {}: {} — files {} to {} of {}\n",
                run_id,
                page.run.status.label(),
                (from + 1).min(from + page.files.len()),
                from + page.files.len(),
                page.files_listed
            );
            for f in &page.files {
                t.push_str(&file_line(f));
            }
            if let Some(c) = &page.next_cursor {
                t.push_str(&format!(
                    "next page: s3imports runs {id} --run {run_id} --cursor {c}\n"
                ));
            }
            t
        },
    );
    Ok(ExitCode::SUCCESS)
}

fn file_line(f: &FileRecord) -> String {
    if let Some(p) = f.in_flight() {
        let chunks = if p.chunks_total > 0 {
            format!(", {} of {} chunks done", p.chunks_done, p.chunks_total)
        } else {
            String::new()
        };
        return format!(
            "  {} {}: {} rows so far ({} imported, {} failed) in {} invocation(s){chunks}\n",
            f.status.label(),
            f.key,
            p.rows_so_far,
            p.rows_ingested,
            p.rows_failed,
            p.invocations
        );
    }
    format!(
        "  {} {}: {} rows ({} imported, {} failed){}{}{}\n",
        f.status.label(),
        f.key,
        f.rows_total,
        f.rows_ingested,
        f.rows_failed,
        f.reason
            .as_deref()
            .map(|x| format!("; {x}"))
            .unwrap_or_default(),
        f.report_key
            .as_deref()
            .map(|k| format!("; report {k}"))
            .unwrap_or_default(),
        f.decrypted_with
            .as_deref()
            .map(|k| format!("; decrypted with the {k}"))
            .unwrap_or_default(),
    ) + &file_notes(f)
}

/// A file's further lines: repeated content, a changed object, post-processing.
fn file_notes(f: &FileRecord) -> String {
    let mut t = String::new();
    if let Some(d) = &f.duplicate_of {
        t.push_str(&format!(
            "    {} its content repeats {} (run {})\n",
            if d.skipped { "skipped:" } else { "note:" },
            d.key,
            d.run_id
        ));
    }
    if let Some(etag) = &f.changed_etag {
        t.push_str(&format!(
            "    changed since imported: ETag {} now {etag} (not imported again: replay it to import it)\n",
            f.etag
        ));
    }
    if let Some(p) = &f.post_process {
        if p.pending {
            t.push_str("    post-processing was started and not recorded as done\n");
        }
        if !p.done.is_empty() {
            t.push_str(&format!("    after import: {}\n", p.done.join(", ")));
        }
        if let Some(e) = &p.error {
            t.push_str(&format!("    post-processing failed: {e}\n"));
        }
    }
    t
}

/// Streams a run's failed-rows report for a file from the reports bucket to `output`
/// (a file) or stdout, never holding it whole in memory.
pub async fn report(
    out: &Output,
    stack: &Stack,
    import_id: &str,
    run_id: &str,
    file_key: &str,
    output: Option<&str>,
) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let clients = clients().await;
    let ledger = LedgerStore::new(clients.dynamodb.clone(), &stack.ledger_table);
    let reports = ReportStore::new(clients.s3.clone(), &stack.reports_bucket);
    let key = find_report(&ledger, import_id, run_id, file_key).await?;
    let mut object = reports.open(&key).await?;
    let mut sink: Box<dyn std::io::Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {path}"))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut written: u64 = 0;
    while let Some(chunk) = object
        .body
        .try_next()
        .await
        .with_context(|| format!("reading report {key}"))?
    {
        sink.write_all(&chunk).context("writing the report")?;
        written += chunk.len() as u64;
    }
    sink.flush().context("writing the report")?;
    if let Some(path) = output {
        out.emit(
            json!({"report_key": key, "bucket": stack.reports_bucket, "bytes": written, "output": path}),
            || format!("report {key} ({written} bytes) written to {path}\n"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn provision(out: &Output, stack: &Stack) -> anyhow::Result<ExitCode> {
    let clients = clients().await;
    if clients.sdk.endpoint_url().is_none() {
        bail!(
            "`local provision` is for a local emulator: set AWS_ENDPOINT_URL (in AWS, `sam deploy` creates the stack)"
        );
    }
    provision_stack(&clients, stack).await?;
    out.emit(json!({"provisioned": stack.configs_table}), || {
        format!(
            "stack provisioned: tables {}-*, queue {}, bucket {}\n",
            stack.configs_table.trim_end_matches("-configs"),
            stack.queue_name,
            stack.reports_bucket
        )
    });
    Ok(ExitCode::SUCCESS)
}

pub async fn tick(out: &Output, stack: &Stack, now: Option<&str>) -> anyhow::Result<ExitCode> {
    let clock: Box<dyn Clock> = match now {
        Some(t) => Box::new(FixedClock::new(
            DateTime::parse_from_rfc3339(t)
                .with_context(|| format!("--now {t}: use RFC 3339, e.g. 2026-12-01T09:00:00Z"))?
                .with_timezone(&Utc),
        )),
        None => Box::new(SystemClock),
    };
    let clients = clients().await;
    let discovery = Discovery::from_env(&clients, stack).await?;
    let processor = Processor::from_env(&clients, stack, ProcessorSettings::default());
    let report = discovery.tick(clock.as_ref()).await?;
    let mut lines = Vec::new();
    for t in &report.imports {
        let line = match t.outcome {
            TickOutcome::Enqueued => format!(
                "import {}: {} new file(s) queued",
                t.import_id,
                t.files.len()
            ),
            TickOutcome::NoNewFiles => format!("import {}: no new files", t.import_id),
            TickOutcome::Failed => format!(
                "import {}: run failed: {}",
                t.import_id,
                t.reason.as_deref().unwrap_or("")
            ),
            TickOutcome::ClaimedElsewhere => format!(
                "import {}: run already claimed by another tick",
                t.import_id
            ),
            TickOutcome::Duplicate => format!(
                "import {}: invalid: {}",
                t.import_id,
                t.reason.as_deref().unwrap_or("")
            ),
        };
        if !out.json {
            println!("{line}");
        }
        lines.push(line);
    }
    let processed = drain(out, &clients, stack, &processor, clock.as_ref()).await?;
    let ingested: u64 = processed.iter().map(|f| f.rows_ingested).sum();
    let failed: u64 = processed.iter().map(|f| f.rows_failed).sum();
    let total: u64 = processed.iter().map(|f| f.rows_total).sum();
    out.emit(
        json!({"tick": report, "files": processed, "rows_total": total, "rows_ingested": ingested, "rows_failed": failed}),
        || {
            format!(
                "summary: {} import(s) due, {} file(s) processed, {total} rows ({ingested} imported, {failed} failed)\n",
                report.imports.len(),
                processed.len()
            )
        },
    );
    Ok(ExitCode::SUCCESS)
}

/// Processes every queued message in-process, as the processor Lambda would, until the
/// queue is empty; returns the files this call finished.
async fn drain(
    out: &Output,
    clients: &Clients,
    stack: &Stack,
    processor: &Processor,
    clock: &dyn Clock,
) -> anyhow::Result<Vec<FileRecord>> {
    let ledger = &processor.ledger;
    let queue = SqsQueue::named(clients.sqs.clone(), &stack.queue_name);
    let sqs = queue.client();
    let url = queue.url().await?;
    let visibility = i32::try_from(processor.settings.visibility.as_secs()).unwrap_or(i32::MAX);
    let mut processed = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .visibility_timeout(visibility)
            .send()
            .await
            .context("receiving from the files queue")?;
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            let receipt = m.receipt_handle().unwrap_or_default().to_string();
            let outcome = s3imports::process::handle(
                processor,
                clock,
                DEFAULT_MAX_RECEIVES,
                &s3imports::aws::queue::queued(m),
            )
            .await;
            // A message to retry stays in the queue: the handler has set when it comes
            // back (with backoff), exactly as in the Lambda; a later tick takes it.
            if !matches!(outcome, RecordOutcome::Retry(_)) {
                sqs.delete_message()
                    .queue_url(&url)
                    .receipt_handle(&receipt)
                    .send()
                    .await
                    .context("deleting a processed message")?;
            }
            // Only files this tick processed count: a message another tick or worker
            // already finished (skipped here) is theirs.
            if let RecordOutcome::File(msg, Processed::Done { .. }) = outcome
                && let Some(f) = ledger.file(&msg.import_id, &msg.key).await?
            {
                // A dry run's caller shows its own lines (nothing was imported).
                if !out.json && !msg.dry_run {
                    print!("{}", file_line(&f));
                }
                processed.push(f);
            }
        }
    }
    Ok(processed)
}

/// What `s3imports keys generate` was asked for.
pub struct NewKey<'a> {
    pub name: &'a str,
    pub imports: &'a str,
    pub algorithm: &'a str,
    pub passphrase: bool,
    pub user_id: Option<&'a str>,
    pub secrets_prefix: &'a str,
}

/// A key made and stored: what may be shown of it.
struct MadeKey {
    secret: String,
    arn: String,
    algorithm: &'static str,
    public: s3imports::operate::keygen::PublicKeyInfo,
    encryption: serde_json::Value,
}

/// Makes a key pair and stores its private half (and passphrase) in Secrets Manager.
async fn make_key(clients: &Clients, new: &NewKey<'_>) -> anyhow::Result<MadeKey> {
    use s3imports::aws::keys::{KeyStore, encryption_block, key_secret_name};
    use s3imports::operate::keygen::{KeyAlgorithm, generate, random_passphrase, valid_key_name};
    if !valid_key_name(new.name) {
        bail!(
            "--name `{}`: use letters, digits, `-`, `_` and `.` (1 to 64)",
            new.name
        );
    }
    if new.imports.split_ascii_whitespace().next().is_none() {
        bail!("--import: name the import(s) that will use the key");
    }
    let algorithm = KeyAlgorithm::parse(new.algorithm)
        .with_context(|| format!("--algorithm `{}`: cv25519 or rsa4096", new.algorithm))?;
    let passphrase = new.passphrase.then(random_passphrase);
    let user_id = new
        .user_id
        .map_or_else(|| format!("{} (s3imports)", new.name), str::to_string);
    let key = tokio::task::spawn_blocking(move || {
        generate(&user_id, algorithm, passphrase.as_deref()).map(|k| (k, passphrase))
    })
    .await??;
    let (key, passphrase) = key;
    let secret = key_secret_name(new.secrets_prefix, new.name);
    let arn = KeyStore::new(clients.secrets.clone())
        .create(&secret, &key, passphrase.as_deref(), new.imports)
        .await?;
    let encryption = serde_json::to_value(encryption_block(&secret, passphrase.is_some()))?;
    Ok(MadeKey {
        secret,
        arn,
        algorithm: algorithm.as_str(),
        public: key.public,
        encryption,
    })
}

pub async fn keys_generate(out: &Output, new: &NewKey<'_>) -> anyhow::Result<ExitCode> {
    let made = make_key(&clients().await, new).await?;
    let MadeKey {
        secret,
        arn,
        algorithm,
        public,
        encryption,
    } = made;
    let value = json!({
        "name": new.name,
        "secret": secret,
        "secret_arn": arn,
        "algorithm": algorithm,
        "fingerprint": public.fingerprint,
        "key_ids": public.key_ids,
        "public_key": public.armored,
        "encryption": encryption,
    });
    out.emit(value, || {
        format!(
            "{}\nKey {} ({}) stored in Secrets Manager as {secret}, for import(s) {}.\n\
             Fingerprint: {}\n\
             Hand the public key above to whoever encrypts the files. The config's block:\n\
             \"encryption\": {}\n",
            public.armored.trim_end(),
            new.name,
            algorithm,
            new.imports,
            public.fingerprint,
            serde_json::to_string_pretty(&encryption).unwrap_or_default()
        )
    });
    Ok(ExitCode::SUCCESS)
}

pub async fn keys_show(out: &Output, name: &str, secrets_prefix: &str) -> anyhow::Result<ExitCode> {
    use s3imports::aws::keys::{KeyStore, key_secret_name};
    let secret = key_secret_name(secrets_prefix, name);
    let clients = clients().await;
    let public = KeyStore::new(clients.secrets.clone())
        .public_key(&secret)
        .await?;
    let value = json!({
        "name": name,
        "secret": secret,
        "fingerprint": public.fingerprint,
        "key_ids": public.key_ids,
        "public_key": public.armored,
    });
    out.emit(value, || {
        format!(
            "{}\nFingerprint: {}\n",
            public.armored.trim_end(),
            public.fingerprint
        )
    });
    Ok(ExitCode::SUCCESS)
}

/// `s3imports run ID`: starts a run of one import now (by hand), as the API's
/// `POST /imports/{id}/run` does; with `process`, also processes its files here.
pub async fn run_now(
    out: &Output,
    stack: &Stack,
    id: &str,
    process: bool,
) -> anyhow::Result<ExitCode> {
    use s3imports::discover::by_hand::RunNowError;
    let clients = clients().await;
    let manual = cli_caller(&clients).await?;
    let discovery = Discovery::wired(&clients, stack);
    let clock = SystemClock;
    let tick = match discovery.run_now(id, &manual, &clock).await {
        Ok(tick) => tick,
        Err(e @ (RunNowError::InFlight { .. } | RunNowError::TooSoon { .. })) => {
            out.emit(json!({"error": e.to_string()}), || {
                format!("refused: {e}\n")
            });
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let run_id = tick.run_id.clone().unwrap_or_default();
    if !out.json {
        println!(
            "import {id}: run {run_id} started by {}: {} new file(s) queued{}",
            manual.requested_by,
            tick.files.len(),
            tick.reason
                .as_deref()
                .map(|r| format!("; {r}"))
                .unwrap_or_default()
        );
    }
    let processed = process_here(process, out, &clients, stack, &clock).await?;
    out.emit(
        json!({"run": tick, "requested_by": manual.requested_by, "files": processed}),
        String::new,
    );
    Ok(ExitCode::SUCCESS)
}

/// With `--process`: the queued files, processed here as `tick` does (for a local
/// emulator; a deployed stack's processor takes them from the queue).
async fn process_here(
    process: bool,
    out: &Output,
    clients: &Clients,
    stack: &Stack,
    clock: &dyn Clock,
) -> anyhow::Result<Vec<FileRecord>> {
    if !process {
        return Ok(Vec::new());
    }
    let processor = Processor::from_env(clients, stack, ProcessorSettings::default());
    drain(out, clients, stack, &processor, clock).await
}

/// Who is running this command, as the run records it: the STS caller identity.
async fn cli_caller(clients: &Clients) -> anyhow::Result<s3imports::model::ledger::ManualRun> {
    let caller = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .context("STS GetCallerIdentity (who is starting the run)")?;
    Ok(s3imports::model::ledger::ManualRun {
        requested_by: caller.arn().unwrap_or("unknown principal").to_string(),
        via: "cli".into(),
    })
}

pub async fn replay(
    out: &Output,
    stack: &Stack,
    id: &str,
    key: &str,
    reason: &str,
    process: bool,
) -> anyhow::Result<ExitCode> {
    use s3imports::discover::by_hand::ReplayError;
    let clients = clients().await;
    let manual = cli_caller(&clients).await?;
    let discovery = Discovery::wired(&clients, stack);
    let clock = SystemClock;
    let started = match discovery.replay(id, key, &manual, reason, &clock).await {
        Ok(s) => s,
        Err(e @ (ReplayError::InFlight { .. } | ReplayError::Reason)) => {
            out.emit(json!({"error": e.to_string()}), || {
                format!("refused: {e}\n")
            });
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    if !out.json {
        println!(
            "import {id}: run {} replays {key} (was {} in run {}), by {}",
            started.run_id,
            started.previous_status.label(),
            started.previous_run_id,
            manual.requested_by
        );
    }
    let processed = process_here(process, out, &clients, stack, &clock).await?;
    out.emit(
        json!({"replay": started, "requested_by": manual.requested_by, "files": processed}),
        String::new,
    );
    Ok(ExitCode::SUCCESS)
}

/// How long `dry-run` waits for the stack's processor (a file may take several
/// invocations of up to 15 minutes).
const DRY_RUN_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

pub async fn dry_run(
    out: &Output,
    stack: &Stack,
    file: &str,
    key: Option<&str>,
    process: bool,
) -> anyhow::Result<ExitCode> {
    let config = read_config(file)?.with_context(|| format!("{file}: not a valid config"))?;
    let clients = clients().await;
    let manual = cli_caller(&clients).await?;
    let discovery = Discovery::wired(&clients, stack);
    let clock = SystemClock;
    // Here (a local emulator, or --process): this file only, in this process.
    let here = process || clients.sdk.endpoint_url().is_some();
    let (started, msg) = discovery
        .start_dry_run(&config, key, &manual, !here, &clock)
        .await?;
    if !out.json {
        println!(
            "dry run {} of import {}: {} ({} bytes)",
            started.dry_run_id, started.import_id, started.key, started.size
        );
    }
    let ledger = LedgerStore::new(clients.dynamodb.clone(), &stack.ledger_table);
    let reports = ReportStore::new(clients.s3.clone(), &stack.reports_bucket);
    if here {
        // No deadline and no chunks: one call reads the whole file.
        let settings = ProcessorSettings {
            chunk_bytes: None,
            ..ProcessorSettings::default()
        };
        let processor = Processor::from_env(&clients, stack, settings);
        let delivery = s3imports::process::delivery::Delivery {
            receive_count: 1,
            last: true,
            receipt: None,
            deadline: None,
            ..Default::default()
        };
        processor.process(&msg, &delivery, &clock).await?;
    }
    // Else the stack's processor does the work: wait for it, a while.
    let started_at = std::time::Instant::now();
    let view = loop {
        match s3imports::operate::dry_run::view(&ledger, &reports, &started.dry_run_id).await? {
            Some(v) if v.done => break v,
            _ if started_at.elapsed() > DRY_RUN_WAIT => {
                bail!(
                    "dry run {} is still running after {} minutes; see `GET /dry-runs/{}` for its result",
                    started.dry_run_id,
                    DRY_RUN_WAIT.as_secs() / 60,
                    started.dry_run_id
                )
            }
            _ => tokio::time::sleep(std::time::Duration::from_secs(2)).await,
        }
    };
    out.emit(serde_json::to_value(&view).unwrap_or_default(), || {
        let mut text = format!(
            "{}: {} rows read, {} valid, {} failed{}\n",
            view.status.label(),
            view.rows_total,
            view.rows_valid,
            view.rows_failed,
            view.reason
                .as_deref()
                .map(|r| format!("; {r}"))
                .unwrap_or_default()
        );
        for r in &view.sample_reasons {
            let column = if r.column.is_empty() {
                String::new()
            } else {
                format!(", column {}", r.column)
            };
            text.push_str(&format!("  row {}{column}: {}\n", r.row, r.reason));
        }
        if let Some(key) = &view.report_key {
            text.push_str(&format!(
                "failed-rows report: s3://{}/{key}\nnothing was written to the destination tables\n",
                stack.reports_bucket
            ));
        } else {
            text.push_str("nothing was written to the destination tables\n");
        }
        text
    });
    Ok(
        if view.status == s3imports::model::status::FileStatus::Failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        },
    )
}

fn segments(clients: &Clients, stack: &Stack) -> SegmentStore {
    SegmentStore::new(clients.dynamodb.clone(), &stack.segments_table)
}

fn segment_line(s: &Segment) -> String {
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

/// One import's line in `s3imports status`.
#[derive(serde::Serialize)]
struct ImportStatusLine {
    id: String,
    name: String,
    status: &'static str,
    next_run_at: Option<DateTime<Utc>>,
    last_run_id: Option<String>,
    last_run_status: Option<&'static str>,
    last_run_at: Option<DateTime<Utc>>,
    rows_today: u64,
    rows_failed_today: u64,
}

/// `s3imports status`: every import with its status, last and next run, and the rows
/// its runs started today (UTC) brought in.
pub async fn status(out: &Output, stack: &Stack) -> anyhow::Result<ExitCode> {
    let clients = clients().await;
    let store = ConfigStore::new(clients.dynamodb.clone(), &stack.configs_table);
    let ledger = LedgerStore::new(clients.dynamodb.clone(), &stack.ledger_table);
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_else(Utc::now);
    let mut lines = Vec::new();
    for r in store.all().await? {
        let (mut rows, mut failed, mut last) = (0, 0, None);
        let mut cursor: Option<RunsCursor> = None;
        // Newest first: stop at the first run that started before today.
        'pages: loop {
            let page = ledger
                .runs_page(&r.config.id, cursor.as_ref(), RUNS_LIMIT.max, 0)
                .await?;
            for e in &page.runs {
                if last.is_none() {
                    last = Some(e.run.clone());
                }
                if e.run.started_at.is_none_or(|t| t < today) {
                    break 'pages;
                }
                rows += e.run.rows_ingested;
                failed += e.run.rows_failed;
            }
            match page.next_cursor.as_deref().map(RunsCursor::decode) {
                Some(Ok(c)) => cursor = Some(c),
                _ => break,
            }
        }
        lines.push(ImportStatusLine {
            id: r.config.id.clone(),
            name: r.config.name.clone(),
            status: r.status.as_str(),
            next_run_at: r.next_run_at,
            last_run_id: last.as_ref().map(|l| l.run_id.clone()),
            last_run_status: last.as_ref().map(|l| l.status.label()),
            last_run_at: last.as_ref().and_then(|l| l.started_at),
            rows_today: rows,
            rows_failed_today: failed,
        });
    }
    out.emit(json!({"imports": lines}), || {
        let time = |t: Option<DateTime<Utc>>| {
            t.map_or_else(
                || "-".to_string(),
                |t| t.format("%Y-%m-%d %H:%M").to_string(),
            )
        };
        let mut table = vec![[
            "IMPORT".to_string(),
            "STATUS".into(),
            "LAST RUN".into(),
            "RESULT".into(),
            "NEXT RUN".into(),
            "ROWS TODAY".into(),
            "FAILED TODAY".into(),
        ]];
        for l in &lines {
            table.push([
                l.id.clone(),
                l.status.to_string(),
                time(l.last_run_at),
                l.last_run_status.unwrap_or("-").to_string(),
                time(l.next_run_at),
                l.rows_today.to_string(),
                l.rows_failed_today.to_string(),
            ]);
        }
        let widths: Vec<usize> = (0..7)
            .map(|i| {
                table
                    .iter()
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut t = String::new();
        for row in &table {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            t.push_str(cells.join("  ").trim_end());
            t.push('\n');
        }
        if lines.is_empty() {
            t = "no imports yet: s3imports config put FILE\n".into();
        }
        t
    });
    Ok(ExitCode::SUCCESS)
}

/// What `s3imports config new` was asked for.
pub struct NewConfig<'a> {
    pub kind: Option<&'a str>,
    pub answers: Option<&'a str>,
    pub output: Option<&'a str>,
    pub put: bool,
    pub secrets_prefix: &'a str,
}

/// The wizard's services: the preview API's code, and key generation.
struct WizardServices<'a> {
    clients: &'a Clients,
    stack: &'a Stack,
    secrets_prefix: &'a str,
}

#[async_trait::async_trait(?Send)]
impl crate::wizard::Services for WizardServices<'_> {
    async fn preview(
        &self,
        config: &serde_json::Value,
    ) -> Result<s3imports::operate::preview::Preview, s3imports::operate::preview::PreviewError>
    {
        let config = ImportConfig::for_preview(config.clone())?;
        let previewer = s3imports::operate::preview::Previewer::from_env(
            self.clients,
            self.stack,
            std::env::temp_dir(),
            s3imports::codec::limits::Limits::from_env(),
        );
        previewer.preview(&config).await
    }

    async fn new_key(
        &self,
        name: &str,
        import_id: &str,
        passphrase: bool,
    ) -> anyhow::Result<(String, serde_json::Value)> {
        let made = make_key(
            self.clients,
            &NewKey {
                name,
                imports: import_id,
                algorithm: "cv25519",
                passphrase,
                user_id: None,
                secrets_prefix: self.secrets_prefix,
            },
        )
        .await?;
        Ok((made.public.armored, made.encryption))
    }
}

/// `s3imports config new`: the three set-up steps, then the config shown, validated,
/// written, and put when confirmed (or with --put).
pub async fn config_new(stack: &Stack, new: &NewConfig<'_>) -> anyhow::Result<ExitCode> {
    use crate::wizard::{Answers, Prompt, Question, Terminal};
    let mut prompt: Box<dyn Prompt> = match new.answers {
        Some(path) => Box::new(Answers::from_file(path)?),
        None => Box::new(Terminal::stdio()?),
    };
    let clients = clients().await;
    let services = WizardServices {
        clients: &clients,
        stack,
        secrets_prefix: new.secrets_prefix,
    };
    let config = crate::wizard::run(prompt.as_mut(), &services, new.kind).await?;
    let text = serde_json::to_string_pretty(&config)?;
    prompt.say(&format!("The config:\n{text}"));
    let output = new
        .output
        .map_or_else(|| format!("{}.json", config.id), str::to_string);
    if std::path::Path::new(&output).exists() {
        let replace = prompt.interactive()
            && prompt.ask(
                &Question::new("overwrite", format!("{output} exists: replace it?"))
                    .choices(&[("yes", ""), ("no", "")])
                    .default("no"),
            )? == "yes";
        if !replace {
            bail!("{output} exists; give another --output");
        }
    }
    std::fs::write(&output, format!("{text}\n")).with_context(|| format!("writing {output}"))?;
    prompt.say(&format!("Valid; written to {output}."));
    let put = new.put
        || (prompt.interactive()
            && prompt.ask(
                &Question::new("put", "Put it now (the import becomes active)?")
                    .choices(&[("yes", ""), ("no", "")])
                    .default("no"),
            )? == "yes");
    if put {
        let store = ConfigStore::new(clients.dynamodb.clone(), &stack.configs_table);
        let outcome = store.put(&config, Utc::now()).await?;
        if let Some(s) = &config.segment {
            segments(&clients, stack)
                .ensure(s, &config.id, Utc::now())
                .await?;
        }
        let record = store.require(&config.id).await?;
        prompt.say(&format!(
            "import {} {}; status {}; next run {}",
            config.id,
            match outcome {
                PutOutcome::Created => "created",
                PutOutcome::Updated => "updated",
            },
            record.status.as_str(),
            record
                .next_run_at
                .map_or_else(|| "none".into(), |t| t.to_rfc3339())
        ));
    } else {
        prompt.say(&format!("Not put: s3imports config put {output}"));
    }
    Ok(ExitCode::SUCCESS)
}
