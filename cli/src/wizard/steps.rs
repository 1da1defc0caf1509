//! The set-up's steps after the fetched file: the kind's details, source, encryption,
//! naming, the mapping of each column, and the schedule.

use super::prompt::{Prompt, Question};
use super::*;
use anyhow::bail;
use s3imports::model::config::ImportKind;
use s3imports::model::mapping_spec::CATALOG;
use s3imports::model::naming::DateTimeFormat;
use s3imports::operate::preview::Preview;
use s3imports::rows::mapping::ColumnMapping;
use serde_json::{Value, json};

pub(super) fn kind_details(p: &mut dyn Prompt, kind: &str) -> anyhow::Result<Value> {
    Ok(match kind {
        "anonymous_users" => {
            json!({"type": kind, "identifier_column": p.ask(&Question::new("identifier_column", "The column that identifies an anonymous user"))?})
        }
        "events" => {
            json!({"type": kind, "event_name": p.ask(&Question::new("event_name", "The event's name (files are named `<event name>_<date-time>`)"))?})
        }
        "auxiliary" => json!({
            "type": kind,
            "dataset": p.ask(&Question::new("dataset", "The dataset's name"))?,
            "key_column": p.ask(&Question::new("key_column", "The column that keys a record"))?,
            "retention_days": number(p, Question::new("retention_days", "Days to keep each record").default("30"))?,
        }),
        _ => json!({"type": kind}),
    })
}

pub(super) fn source(p: &mut dyn Prompt) -> anyhow::Result<Value> {
    let credentials = match p
        .ask(
            &Question::new("credentials", "How to reach the bucket")
                .choices(CREDENTIALS)
                .default("default"),
        )?
        .as_str()
    {
        "assume_role" => json!({"type": "assume_role",
            "role_arn": p.ask(&Question::new("role_arn", "The role's ARN"))?,
            "external_id": p.ask(&Question::new("external_id", "The external id its trust policy requires"))?}),
        "access_key" => json!({"type": "access_key",
            "access_key_id": p.ask(&Question::new("access_key_id", "The access key id"))?,
            "secret_access_key_ref": p.ask(&Question::new("secret_access_key_ref", "The Secrets Manager secret holding the secret access key (name, or name#key)"))?}),
        _ => json!({"type": "default"}),
    };
    let mut source = json!({
        "bucket": p.ask(&Question::new("bucket", "The bucket"))?,
        "folder": p.ask(&Question::new("folder", "The folder (no sub-folders are read)"))?.trim_matches('/'),
        "credentials": credentials,
    });
    let region = p.ask(
        &Question::new(
            "region",
            "The bucket's region (empty: found from the bucket)",
        )
        .default(""),
    )?;
    if !region.is_empty() {
        source["region"] = region.into();
    }
    Ok(source)
}

pub(super) async fn encryption(
    p: &mut dyn Prompt,
    services: &dyn Services,
    id: &str,
    made: &mut Option<Value>,
) -> anyhow::Result<Option<Value>> {
    let how = p.ask(
        &Question::new("encryption", "Are the files PGP-encrypted?")
            .choices(ENCRYPTION)
            .default("none"),
    )?;
    let mut block = match how.as_str() {
        "generate" => match made.clone() {
            Some(block) => {
                p.say("The key made before is kept.");
                block
            }
            None => {
                let name = p.ask(&Question::new("key_name", "The key's name").default(id))?;
                let passphrase = p.ask(
                    &Question::new("key_passphrase", "Lock it with a random passphrase?")
                        .choices(YES_NO)
                        .default("yes"),
                )? == "yes";
                let (public, block) = services.new_key(&name, id, passphrase).await?;
                p.say("Hand this public key to whoever encrypts the files:");
                p.say(public.trim_end());
                *made = Some(block.clone());
                block
            }
        },
        "existing" => {
            let mut block = json!({"type": "pgp",
                "private_key_ref": p.ask(&Question::new("private_key_ref", "The secret holding the private key (name, or name#key)"))?});
            let pass = p.ask(
                &Question::new(
                    "passphrase_ref",
                    "The secret holding its passphrase (empty: none)",
                )
                .default(""),
            )?;
            if !pass.is_empty() {
                block["passphrase_ref"] = pass.into();
            }
            block
        }
        _ => return Ok(None),
    };
    let signer = ask_valid(
        p,
        Question::new(
            "signer_public_key_file",
            "A file with the signer's public key, when files must be signed (empty: none)",
        )
        .default(""),
        |path| {
            if path.is_empty() {
                return Ok(());
            }
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            s3imports::codec::pgp::parse_signer_public_key(&text)
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
    )?;
    if !signer.is_empty() {
        block["signer_public_key"] = std::fs::read_to_string(&signer)?.into();
    }
    Ok(Some(block))
}

pub(super) fn naming(p: &mut dyn Prompt, doc: &mut Value) -> anyhow::Result<()> {
    let file_type = p.ask(
        &Question::new("file_type", "File type")
            .choices(FILE_TYPES)
            .default("csv"),
    )?;
    if file_type == "csv" {
        let delimiter = ask_valid(
            p,
            Question::new(
                "delimiter",
                "The field separator (one character; `\\t` for tab)",
            )
            .default(","),
            |v| {
                (v == "\\t" || v.chars().count() == 1)
                    .then_some(())
                    .ok_or("one character".into())
            },
        )?;
        doc["delimiter"] = if delimiter == "\\t" {
            "\t".into()
        } else {
            delimiter.into()
        };
    } else if let Some(o) = doc.as_object_mut() {
        o.remove("delimiter");
    }
    let kind: ImportKind = serde_json::from_value(doc["kind"].clone())?;
    let prefix =
        p.ask(&Question::new("file_prefix", "File name prefix").default(kind.default_prefix()))?;
    // The choices spelled out with the file name each one matches.
    let examples: Vec<(String, String)> = DATETIME_FORMATS
        .iter()
        .map(|(f, meaning)| {
            // `custom` is no pattern itself: its example is one it could be.
            let (pattern, example) = match *f {
                "custom" => (CUSTOM_EXAMPLE, format!("{CUSTOM_EXAMPLE}: ")),
                f => (f, String::new()),
            };
            let name = DateTimeFormat::parse(pattern)
                .map(|d| d.example())
                .unwrap_or_default();
            (
                f.to_string(),
                format!("{meaning}, e.g. {example}{prefix}{name}.{file_type}"),
            )
        })
        .collect();
    let choices: Vec<(&str, &str)> = examples
        .iter()
        .map(|(f, e)| (f.as_str(), e.as_str()))
        .collect();
    let mut format = p.ask(
        &Question::new("datetime_format", "The date-time in the file names")
            .choices(&choices)
            .default("yyyymmdd"),
    )?;
    if format == "custom" {
        format = ask_valid(
            p,
            Question::new("datetime_pattern", "The pattern (e.g. %Y-%m-%d_%H-%M-%S)"),
            |v| {
                DateTimeFormat::parse(v)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        )?;
        if let Ok(d) = DateTimeFormat::parse(&format) {
            p.say(&format!("  names like {prefix}{}.{file_type}", d.example()));
        }
    }
    doc["file_type"] = file_type.into();
    doc["source"]["file_prefix"] = prefix.into();
    doc["source"]["datetime_format"] = format.into();
    Ok(())
}

/// The pattern the `custom` choice shows as its example.
const CUSTOM_EXAMPLE: &str = "%Y-%m-%d_%H-%M-%S";

/// The newest file's top rows as a table.
pub fn table(preview: &Preview) -> String {
    let mut rows = vec![
        preview
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>(),
    ];
    rows.extend(preview.rows.iter().map(|r| {
        r.iter()
            .map(|v| v.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    }));
    let widths: Vec<usize> = (0..preview.columns.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count().min(30))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut t = format!("{} — top {} rows:\n", preview.file.key, preview.rows.len());
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let c: String = c.chars().take(30).collect();
                format!("{c:<w$}")
            })
            .collect();
        t.push_str(cells.join(" | ").trim_end());
        t.push('\n');
    }
    t
}

/// One question per column: the attribute (a standard one, a new custom one, or
/// `skip`), its type, and for date-times the format.
pub(super) fn map_columns(
    p: &mut dyn Prompt,
    found: &[ColumnInfo],
) -> anyhow::Result<Vec<ColumnMapping>> {
    p.say(&format!(
        "Standard attributes: {}; any other name is a custom attribute; `skip` leaves the column out.",
        CATALOG.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
    ));
    let mut columns = Vec::new();
    for c in found {
        let suggested = c
            .attribute
            .clone()
            .unwrap_or_else(|| attribute_name(&c.name));
        let sample = c.sample.clone().unwrap_or_default();
        let attribute = p.ask(
            &Question::new(
                format!("column.{}", c.name),
                format!("Column `{}` (sample `{sample}`): attribute", c.name),
            )
            .default(suggested),
        )?;
        if attribute == "skip" {
            columns.push(ColumnMapping {
                column: c.name.clone(),
                attribute: None,
                attr_type: None,
                format: None,
                delimiter: None,
                skip: true,
            });
            continue;
        }
        let ty = p.ask(
            &Question::new(
                format!("type.{}", c.name),
                format!("Column `{}`: data type", c.name),
            )
            .choices(TYPES)
            .default(default_type(&attribute, &c.suggested)),
        )?;
        let format = if ty == "datetime" {
            let f = p.ask(
                &Question::new(
                    format!("format.{}", c.name),
                    format!(
                        "Column `{}`: date-time format (e.g. YYYY-MM-DD hh:mm:ss, DD/MM/YYYY)",
                        c.name
                    ),
                )
                .default(c.format.as_deref().unwrap_or("YYYY-MM-DD hh:mm:ss")),
            )?;
            Some(serde_json::from_value(Value::String(f))?)
        } else {
            None
        };
        columns.push(ColumnMapping {
            column: c.name.clone(),
            attribute: Some(attribute),
            attr_type: Some(serde_json::from_value(Value::String(ty))?),
            format,
            delimiter: None,
            skip: false,
        });
    }
    Ok(columns)
}

/// The type offered for a column: a standard attribute's own (a numeric-looking user
/// id is still a `user_id` string), else what its sample suggests.
pub(super) fn default_type<'a>(attribute: &str, suggested: &'a str) -> &'a str {
    match s3imports::model::mapping_spec::standard(attribute).and_then(|a| a.types.first()) {
        Some(t) => t.as_str(),
        None => suggested,
    }
}

/// A column header as an attribute name: lower case, words joined by `_`.
pub(super) fn attribute_name(column: &str) -> String {
    let mut out = String::new();
    for c in column.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

pub(super) fn schedule(p: &mut dyn Prompt) -> anyhow::Result<Value> {
    loop {
        let v = schedule_answers(p)?;
        // The schedule's own checks, where the answers are given.
        let problems =
            match serde_json::from_value::<s3imports::model::schedule::Schedule>(v.clone()) {
                Ok(s) => s.validate(),
                Err(e) => vec![e.to_string()],
            };
        if problems.is_empty() || p.incomplete() {
            return Ok(v);
        }
        if !p.interactive() {
            bail!("the schedule is not valid: {}", problems.join("; "));
        }
        p.say(&format!("  {}; the schedule again:", problems.join("; ")));
    }
}

pub(super) fn number(p: &mut dyn Prompt, q: Question<'_>) -> anyhow::Result<u32> {
    ask_valid(p, q, |v| {
        v.parse::<u32>()
            .map(|_| ())
            .map_err(|_| "a whole number".to_string())
    })
    .map(|v| v.parse().unwrap_or_default())
}

pub(super) fn schedule_answers(p: &mut dyn Prompt) -> anyhow::Result<Value> {
    let kind = p.ask(
        &Question::new("schedule", "How often to run")
            .choices(SCHEDULES)
            .default("daily"),
    )?;
    let time =
        |p: &mut dyn Prompt| p.ask(&Question::new("time", "At what time (HH:MM)").default("09:00"));
    let list = |s: String| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut v = json!({"type": kind});
    match kind.as_str() {
        "hourly" => {
            v["minute"] = number(
                p,
                Question::new("minute", "At what minute of the hour").default("0"),
            )?
            .into();
        }
        "daily" => v["time"] = time(p)?.into(),
        "weekly" => {
            v["days"] = list(p.ask(&Question::new("days", "Which days (e.g. mon,thu)"))?).into();
            v["time"] = time(p)?.into();
        }
        "monthly" => {
            let days = ask_valid(
                p,
                Question::new("days", "Which days of the month (e.g. 1,15)"),
                |v| {
                    let ok = v
                        .split(',')
                        .map(str::trim)
                        .filter(|d| !d.is_empty())
                        .all(|d| d.parse::<u32>().is_ok());
                    ok.then_some(())
                        .ok_or("numbers 1 to 31, comma-separated".into())
                },
            )?;
            let days: Vec<u32> = list(days).iter().filter_map(|d| d.parse().ok()).collect();
            v["days"] = days.into();
            v["time"] = time(p)?.into();
        }
        "every" => {
            let unit = p.ask(
                &Question::new("every_unit", "Minutes or hours")
                    .choices(&[("minutes", ""), ("hours", "")])
                    .default("hours"),
            )?;
            v[unit.as_str()] = number(p, Question::new("every", "How many"))?.into();
        }
        "cron" => {
            v["expression"] = p
                .ask(&Question::new(
                    "cron",
                    "The cron expression (minute hour day month weekday)",
                ))?
                .into();
        }
        _ => {}
    }
    Ok(v)
}
