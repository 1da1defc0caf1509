//! `s3imports config …`: validate, put, archive, show, and the guided `config new`.

use std::process::ExitCode;

use super::keys::{NewKey, make_key};
use super::segments::segments;
use super::{Output, clients};
use anyhow::{Context as _, bail};
use chrono::Utc;
use s3imports::aws::Clients;
use s3imports::aws::configs::{ConfigStore, PutOutcome};
use s3imports::model::config::{ConfigError, ImportConfig};
use s3imports::ports::{Configs as _, Segments as _};
use s3imports::stack::Stack;
use serde_json::json;

pub(super) fn read_config(file: &str) -> anyhow::Result<Result<ImportConfig, ConfigError>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    Ok(ImportConfig::from_json(&text))
}

/// What a local sample file says about the mapping: unmapped and absent columns, or why
/// the mapping would fail on it.
pub(super) fn check_sample(
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

/// What storing a config did: created or updated, its record now, and the segment it
/// feeds (made, and listing the import, from the moment the config names it).
pub(crate) struct Stored {
    pub verb: &'static str,
    pub record: s3imports::model::config::ConfigRecord,
    pub segment: Option<s3imports::model::segment::Segment>,
}

/// Stores a valid config as `config put` does (refusing a duplicate of another active
/// import, with that import named): `config put`, `config new` and the console.
pub(crate) async fn store_config(
    clients: &Clients,
    stack: &Stack,
    config: &ImportConfig,
) -> Result<Stored, s3imports::ports::StoreError> {
    let store = ConfigStore::new(clients.dynamodb.clone(), &stack.configs_table);
    let outcome = store.put(config, Utc::now()).await?;
    let segment = match &config.segment {
        Some(s) => Some(
            segments(clients, stack)
                .ensure(s, &config.id, Utc::now())
                .await?,
        ),
        None => None,
    };
    let record = store.require(&config.id).await?;
    Ok(Stored {
        verb: match outcome {
            PutOutcome::Created => "created",
            PutOutcome::Updated => "updated",
        },
        record,
        segment,
    })
}

pub async fn put(out: &Output, stack: &Stack, file: &str) -> anyhow::Result<ExitCode> {
    let config = read_config(file)?.with_context(|| format!("{file} is not a valid config"))?;
    let clients = clients().await;
    let Stored {
        verb,
        record,
        segment,
    } = store_config(&clients, stack, &config).await?;
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

/// What `s3imports config new` was asked for.
pub struct NewConfig<'a> {
    pub kind: Option<&'a str>,
    pub answers: Option<&'a str>,
    pub output: Option<&'a str>,
    pub put: bool,
    pub secrets_prefix: &'a str,
}

/// The wizard's services: the preview API's code, and key generation.
pub(crate) struct WizardServices<'a> {
    pub clients: &'a Clients,
    pub stack: &'a Stack,
    pub secrets_prefix: &'a str,
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
        let stored = store_config(&clients, stack, &config).await?;
        prompt.say(&format!(
            "import {} {}; status {}; next run {}",
            config.id,
            stored.verb,
            stored.record.status.as_str(),
            stored
                .record
                .next_run_at
                .map_or_else(|| "none".into(), |t| t.to_rfc3339())
        ));
    } else {
        prompt.say(&format!("Not put: s3imports config put {output}"));
    }
    Ok(ExitCode::SUCCESS)
}
