//! `s3imports`: the operator's tool. Uses the standard AWS environment
//! (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`, ...) and the stack's names from
//! `S3IMPORTS_*` variables or `--prefix`.

mod commands;
mod console;
mod wizard;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "s3imports",
    version,
    about = "Operate s3imports: configs, previews, runs, reports and local ticks"
)]
struct Cli {
    /// Print JSON instead of text (for scripts).
    #[arg(long, global = true)]
    json: bool,
    /// Name every stack resource `<prefix>-<role>` instead of reading S3IMPORTS_* variables.
    #[arg(long, global = true, env = "S3IMPORTS_PREFIX")]
    prefix: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import configs: validate, put, archive, show.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show an import's runs, newest first, a page at a time, with their counts, reasons
    /// and first files; with --run, page through one run's files.
    Runs {
        id: String,
        /// Runs per page (1 to 50, default 20); with --run, files per page (1 to 1000,
        /// default 100).
        #[arg(long)]
        limit: Option<usize>,
        /// Continue where the previous page ended (the cursor it printed).
        #[arg(long)]
        cursor: Option<String>,
        /// Files shown with each run (0 to 20, default 10).
        #[arg(long, conflicts_with = "run")]
        files_limit: Option<usize>,
        /// List this run's files instead of the runs.
        #[arg(long)]
        run: Option<String>,
    },
    /// Download a run's failed-rows report for a file (the command each run email
    /// names): to stdout, or to --output.
    Report {
        /// The import's id.
        import_id: String,
        /// The run's id (as in `s3imports runs` and the email).
        run_id: String,
        /// The data file's S3 key (folder/name).
        file_key: String,
        /// Write the report to this file instead of stdout.
        #[arg(long, short)]
        output: Option<String>,
    },
    /// Every import with its status, last run, next run and today's rows (UTC).
    Status,
    /// Start a run of one import now, by hand (discovery for that import only; the
    /// schedule's next run does not move). Refused (exit 2) while its last run is in
    /// flight or within 5 minutes of its last run by hand.
    Run {
        id: String,
        /// Also process the queued files here, as `tick` does (for a local emulator;
        /// a deployed stack's processor takes them from the queue).
        #[arg(long)]
        process: bool,
    },
    /// Replay one file that already ran, under its own name (a run of that file alone,
    /// recording who asked and why). Refused (exit 2) while the file is in flight.
    Replay {
        id: String,
        /// The file's S3 key (folder/name), as `s3imports runs` shows it.
        key: String,
        /// Why it is replayed (recorded with the run).
        #[arg(long)]
        reason: String,
        /// Also process the file here (for a local emulator).
        #[arg(long)]
        process: bool,
    },
    /// Run the whole newest (or --key) file of a config's folder through decrypt, verify,
    /// parse, map and validate, writing only the failed-rows report: counts, a sample of
    /// reasons, the report's key. Nothing is written to the destination tables.
    DryRun {
        /// The import config file (it need not be put).
        config: String,
        /// The file to run (folder/name); default: the newest matching file.
        #[arg(long)]
        key: Option<String>,
        /// Process it here instead of waiting for the stack's processor (the default
        /// with a local emulator, AWS_ENDPOINT_URL).
        #[arg(long)]
        process: bool,
    },
    /// Run discovery once, then process every queued file in-process until the queue is
    /// empty.
    Tick {
        /// Act as if it were this time (RFC 3339, e.g. 2026-12-01T09:00:00Z).
        #[arg(long)]
        now: Option<String>,
    },
    /// Segments of imported users: list, show, members, archive, unarchive.
    #[command(subcommand)]
    Segments(SegmentsCommand),
    /// PGP keys for imports: generate a key pair into Secrets Manager, show a public key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Create the stack's tables, queues and bucket in a local emulator (AWS_ENDPOINT_URL).
    #[command(subcommand)]
    Local(LocalCommand),
    /// The web console: a local server on 127.0.0.1 (imports, runs, reports, set-up,
    /// segments) with your credentials; prints its address (with this start's token)
    /// and opens it where a browser exists.
    Console {
        /// The port on 127.0.0.1 (default: a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Do not open a browser; only print the address.
        #[arg(long)]
        no_open: bool,
        /// The Secrets Manager prefix for a key the set-up generates.
        #[arg(long, env = "S3IMPORTS_SECRETS_PREFIX", default_value = "s3imports/")]
        secrets_prefix: String,
    },
}

#[derive(Subcommand)]
enum SegmentsCommand {
    /// Every segment with its status, member count and the imports that feed it.
    List,
    /// One segment.
    Show { name: String },
    /// A page of a segment's members, in id order.
    Members {
        name: String,
        /// Members per page (1 to 1000, default 100).
        #[arg(long)]
        limit: Option<usize>,
        /// Continue where the previous page ended (the cursor it printed).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Archive a segment: its imports still add their users to it.
    Archive { name: String },
    /// Make an archived segment active again.
    Unarchive { name: String },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a key pair, store the private key (and with --passphrase a random
    /// passphrase) in Secrets Manager bound to --import, and print the public key to
    /// hand to whoever encrypts the files, and the config's `encryption` block.
    Generate {
        /// The key's name: its secret is `<secrets prefix>pgp/<name>`.
        #[arg(long)]
        name: String,
        /// The import(s) that may use the key (space-separated ids).
        #[arg(long)]
        import: String,
        /// cv25519 (Ed25519 + Curve25519, GnuPG's default) or rsa4096.
        #[arg(long, default_value = "cv25519")]
        algorithm: String,
        /// Lock the key with a random passphrase, stored beside it.
        #[arg(long)]
        passphrase: bool,
        /// The key's user id (default: "<name> (s3imports)").
        #[arg(long)]
        user_id: Option<String>,
        /// The Secrets Manager prefix the stack's functions read (its SecretsPrefix).
        #[arg(long, env = "S3IMPORTS_SECRETS_PREFIX", default_value = "s3imports/")]
        secrets_prefix: String,
    },
    /// Print a stored key's public key and fingerprint again.
    Show {
        name: String,
        #[arg(long, env = "S3IMPORTS_SECRETS_PREFIX", default_value = "s3imports/")]
        secrets_prefix: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a config file; with --key, explain whether that S3 key would be imported;
    /// with --sample, check the mapping against a local data file's columns.
    Validate {
        file: String,
        /// An S3 key (folder/name) to check against the folder, prefix and date-time.
        #[arg(long)]
        key: Option<String>,
        /// A local data file (CSV or JSON, gzipped or not) whose columns to check.
        #[arg(long)]
        sample: Option<String>,
        /// The local copy of the mapping file, for configs with `"mapping": {"manifest": ...}`.
        #[arg(long)]
        manifest: Option<String>,
    },
    /// Write a config step by step (source and format, mapping, frequency and
    /// notifications), fetching the newest file to map its columns; then validate,
    /// write and (when confirmed, or with --put) store it.
    New {
        /// registered_users, anonymous_users, events or auxiliary (asked when absent).
        #[arg(long)]
        kind: Option<String>,
        /// Answers as a JSON object of question id to answer, for scripts (no terminal needed).
        #[arg(long)]
        answers: Option<String>,
        /// Where to write the config (default: <id>.json).
        #[arg(long, short)]
        output: Option<String>,
        /// Store it without asking.
        #[arg(long)]
        put: bool,
        /// The Secrets Manager prefix for a key the wizard generates.
        #[arg(long, env = "S3IMPORTS_SECRETS_PREFIX", default_value = "s3imports/")]
        secrets_prefix: String,
    },
    /// Validate and store a config (refusing a duplicate of another active import).
    Put { file: String },
    /// Archive an import: it never runs again.
    Archive { id: String },
    /// Show an import's stored config (secret references redacted) and state.
    Show { id: String },
}

#[derive(Subcommand)]
enum LocalCommand {
    /// Create the stack's resources (idempotent).
    Provision,
}

#[tokio::main]
async fn main() -> ExitCode {
    s3imports::telemetry::init_cli();
    let cli = Cli::parse();
    let out = commands::Output { json: cli.json };
    let stack = match &cli.prefix {
        Some(p) => s3imports::stack::Stack::with_prefix(p),
        None => s3imports::stack::Stack::from_env(),
    };
    let result = match cli.command {
        Command::Config(ConfigCommand::Validate {
            file,
            key,
            sample,
            manifest,
        }) => commands::config::validate(
            &out,
            &file,
            key.as_deref(),
            sample.as_deref(),
            manifest.as_deref(),
        ),
        Command::Config(ConfigCommand::New {
            kind,
            answers,
            output,
            put,
            secrets_prefix,
        }) => {
            commands::config::config_new(
                &stack,
                &commands::config::NewConfig {
                    kind: kind.as_deref(),
                    answers: answers.as_deref(),
                    output: output.as_deref(),
                    put,
                    secrets_prefix: &secrets_prefix,
                },
            )
            .await
        }
        Command::Config(ConfigCommand::Put { file }) => {
            commands::config::put(&out, &stack, &file).await
        }
        Command::Config(ConfigCommand::Archive { id }) => {
            commands::config::archive(&out, &stack, &id).await
        }
        Command::Config(ConfigCommand::Show { id }) => {
            commands::config::show(&out, &stack, &id).await
        }
        Command::Runs {
            id,
            limit,
            cursor,
            files_limit,
            run: None,
        } => {
            commands::history::runs(&out, &stack, &id, limit, cursor.as_deref(), files_limit).await
        }
        Command::Runs {
            id,
            limit,
            cursor,
            run: Some(run),
            ..
        } => commands::history::run_files(&out, &stack, &id, &run, limit, cursor.as_deref()).await,
        Command::Report {
            import_id,
            run_id,
            file_key,
            output,
        } => {
            commands::history::report(
                &out,
                &stack,
                &import_id,
                &run_id,
                &file_key,
                output.as_deref(),
            )
            .await
        }
        Command::Status => commands::history::status(&out, &stack).await,
        Command::Run { id, process } => commands::run::run_now(&out, &stack, &id, process).await,
        Command::Replay {
            id,
            key,
            reason,
            process,
        } => commands::run::replay(&out, &stack, &id, &key, &reason, process).await,
        Command::DryRun {
            config,
            key,
            process,
        } => commands::run::dry_run(&out, &stack, &config, key.as_deref(), process).await,
        Command::Tick { now } => commands::run::tick(&out, &stack, now.as_deref()).await,
        Command::Segments(SegmentsCommand::List) => {
            commands::segments::segments_list(&out, &stack).await
        }
        Command::Segments(SegmentsCommand::Show { name }) => {
            commands::segments::segments_show(&out, &stack, &name).await
        }
        Command::Segments(SegmentsCommand::Members {
            name,
            limit,
            cursor,
        }) => {
            commands::segments::segments_members(&out, &stack, &name, limit, cursor.as_deref())
                .await
        }
        Command::Segments(SegmentsCommand::Archive { name }) => {
            commands::segments::segments_set_status(
                &out,
                &stack,
                &name,
                s3imports::model::segment::SegmentStatus::Archived,
            )
            .await
        }
        Command::Segments(SegmentsCommand::Unarchive { name }) => {
            commands::segments::segments_set_status(
                &out,
                &stack,
                &name,
                s3imports::model::segment::SegmentStatus::Active,
            )
            .await
        }
        Command::Keys(KeysCommand::Generate {
            name,
            import,
            algorithm,
            passphrase,
            user_id,
            secrets_prefix,
        }) => {
            commands::keys::keys_generate(
                &out,
                &commands::keys::NewKey {
                    name: &name,
                    imports: &import,
                    algorithm: &algorithm,
                    passphrase,
                    user_id: user_id.as_deref(),
                    secrets_prefix: &secrets_prefix,
                },
            )
            .await
        }
        Command::Keys(KeysCommand::Show {
            name,
            secrets_prefix,
        }) => commands::keys::keys_show(&out, &name, &secrets_prefix).await,
        Command::Local(LocalCommand::Provision) => commands::local::provision(&out, &stack).await,
        Command::Console {
            port,
            no_open,
            secrets_prefix,
        } => console::serve(
            stack,
            console::Options {
                port,
                open: !no_open,
                secrets_prefix,
            },
        )
        .await
        .map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if cli.json {
                println!("{}", serde_json::json!({"error": format!("{e:#}")}));
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
