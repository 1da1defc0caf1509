//! `s3imports config new`: MoEngage's three set-up steps in the terminal (source and
//! format, mapping, frequency and notifications), built on the same config model,
//! validation and preview as everything else: the answers become the JSON document
//! `config put` takes, the newest file is fetched through the preview service, and the
//! result is checked by `ImportConfig::from_value` before it is written.
//!
//! Every question has an id; `--answers FILE` (a JSON object of id to answer) answers
//! them without a terminal, so scripts and tests take the same path.

pub mod form;
pub mod prompt;

pub use self::prompt::{Answers, Prompt, Question, Terminal};
mod steps;

pub use self::steps::table;
use self::steps::{encryption, kind_details, map_columns, naming, schedule, source};

use anyhow::{Context as _, bail};
use s3imports::model::config::{ImportConfig, ImportKind};
use s3imports::operate::preview::{Preview, PreviewError};
use s3imports::rows::mapping::{column_problems, parse_manifest};
use serde_json::{Value, json};

const KINDS: &[(&str, &str)] = &[
    ("registered_users", "users keyed by your user id"),
    ("anonymous_users", "users keyed by an anonymous id column"),
    (
        "events",
        "one event a row, for the user in the user_id column",
    ),
    (
        "auxiliary",
        "reference data keyed by a column, kept for a number of days",
    ),
];
const CREDENTIALS: &[(&str, &str)] = &[
    (
        "default",
        "the stack's own role (buckets in SourceBucketPattern)",
    ),
    (
        "assume_role",
        "a role the bucket's owner lets us assume, with an external id (preferred)",
    ),
    (
        "access_key",
        "an access key id, its secret key in Secrets Manager",
    ),
];
const ENCRYPTION: &[(&str, &str)] = &[
    ("none", "files are not PGP-encrypted"),
    (
        "generate",
        "make a key pair now (s3imports keys generate) and print its public key",
    ),
    ("existing", "a private key already in Secrets Manager"),
];
const FILE_TYPES: &[(&str, &str)] = &[
    ("csv", "comma (or other) separated, with a header row"),
    ("json", "JSON lines or an array of objects"),
];
/// MoEngage's file-name formats, and the pattern form for anything else.
const DATETIME_FORMATS: &[(&str, &str)] = &[
    ("yyyymmdd", "a date"),
    ("ddmmyyyy", "day first"),
    ("mmddyyyy", "month first"),
    ("yyyymmdd_hhmm", "a date and time"),
    ("mm_yyyy", "a month"),
    ("mon_yyyy", "a month by name"),
    ("%Y-%m-%d", "a date with dashes"),
    ("%s", "seconds since 1970"),
    ("custom", "a pattern of %Y %m %d %H %M %S %b"),
];
const SCHEDULES: &[(&str, &str)] = &[
    ("once", "one run, as soon as possible"),
    ("hourly", "every hour at a minute"),
    ("daily", "every day at a time"),
    ("weekly", "on days of the week at a time"),
    ("monthly", "on days of the month at a time"),
    ("every", "every N minutes or hours"),
    ("cron", "a 5-field cron expression"),
];
const TYPES: &[(&str, &str)] = &[
    ("string", "text"),
    ("integer", "whole number"),
    ("number", "decimal number"),
    ("boolean", "true/false, yes/no, 1/0"),
    ("datetime", "date and time (asks the format)"),
    ("list", "several values"),
];
const YES_NO: &[(&str, &str)] = &[("yes", ""), ("no", "")];
const MAPPING_FIX: &[(&str, &str)] = &[
    ("again", "map the columns again"),
    ("file", "load a mapping file instead"),
    ("quit", "stop without writing anything"),
];
const SAMPLE_FIX: &[(&str, &str)] = &[
    ("again", "map the columns again"),
    ("file", "load a mapping file instead"),
    ("keep", "keep this mapping: those rows will fail"),
    ("quit", "stop without writing anything"),
];
const AFTER_FETCH: &[(&str, &str)] = &[
    (
        "again",
        "answer the source, encryption and file name questions again",
    ),
    ("columns", "go on without a file: type its columns"),
];

/// A column to map: from the fetched file (with a sample), or typed in.
struct ColumnInfo {
    name: String,
    sample: Option<String>,
    suggested: String,
    /// A date-time format the fetched values match.
    format: Option<String>,
    attribute: Option<String>,
}

/// What the wizard needs from the stack: a preview of the newest matching file, and
/// (for `generate`) a new key's encryption block.
#[async_trait::async_trait(?Send)]
pub trait Services {
    async fn preview(&self, config: &Value) -> Result<Preview, PreviewError>;
    /// Generates and stores a key for `import_id`; returns its public key and block.
    async fn new_key(
        &self,
        name: &str,
        import_id: &str,
        passphrase: bool,
    ) -> anyhow::Result<(String, Value)>;
}

/// The three steps; returns the config document (valid, or with the problems the
/// answers file left, as an error).
pub async fn run(
    p: &mut dyn Prompt,
    services: &dyn Services,
    kind: Option<&str>,
) -> anyhow::Result<ImportConfig> {
    p.say("Step 1 of 3: source and format");
    let mut kind_q = Question::new("kind", "What do the files hold?").choices(KINDS);
    if let Some(k) = kind {
        kind_q = kind_q.default(k);
    }
    let kind = p.ask(&kind_q)?;
    let kind_value = kind_details(p, &kind)?;
    let id = ask_valid(
        p,
        Question::new("id", "Import id (lowercase letters, digits, -)"),
        |v| {
            (!v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .then_some(())
            .ok_or("1 to 64 lowercase letters, digits and `-`".into())
        },
    )?;
    let name = p.ask(&Question::new("name", "A name people read in emails").default(&id))?;
    let mut doc = json!({"id": id, "name": name, "kind": kind_value, "mapping": {"columns": []},
                         "schedule": {"type": "once"}});
    // A key made on an earlier pass is in Secrets Manager already: kept, not made again.
    let mut made: Option<Value> = None;
    let found = loop {
        doc["source"] = source(p)?;
        if let Some(e) = encryption(p, services, &id, &mut made).await? {
            doc["encryption"] = e;
        } else if let Some(o) = doc.as_object_mut() {
            o.remove("encryption");
        }
        naming(p, &mut doc)?;
        p.say("Fetching the newest matching file…");
        match services.preview(&doc).await {
            Ok(preview) => {
                p.say(&table(&preview));
                break preview
                    .columns
                    .iter()
                    .map(|c| ColumnInfo {
                        name: c.name.clone(),
                        sample: c.sample.clone(),
                        suggested: c.suggested_type.as_str().to_string(),
                        format: c.suggested_format.map(str::to_string),
                        attribute: c.attribute.clone(),
                    })
                    .collect::<Vec<_>>();
            }
            Err(e) => {
                let mut said = e.message.clone();
                if let Some(d) = &e.detail {
                    said.push_str(&format!(" ({d})"));
                }
                for problem in &e.problems {
                    said.push_str(&format!("\n  {problem}"));
                }
                p.say(&said);
                // No file yet (a key just made, say): the columns can be typed in.
                let next = p
                    .ask(&Question::new("after_fetch", "What now?").choices(AFTER_FETCH))
                    .map_err(|_| anyhow::anyhow!("the file could not be fetched: {said}"))?;
                if next == "columns" {
                    let names = ask_valid(
                        p,
                        Question::new("columns", "The file's columns, in order (comma-separated)"),
                        |v| {
                            v.split(',')
                                .any(|c| !c.trim().is_empty())
                                .then_some(())
                                .ok_or("at least one column".into())
                        },
                    )?;
                    break names
                        .split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(|n| ColumnInfo {
                            name: n.to_string(),
                            sample: None,
                            suggested: "string".into(),
                            format: None,
                            attribute: None,
                        })
                        .collect();
                }
                // The same answers again would fetch the same way.
                if !p.interactive() {
                    bail!("the file could not be fetched: {said}");
                }
            }
        }
    };

    p.say("Step 2 of 3: mapping");
    let file = p.ask(
        &Question::new(
            "mapping_file",
            "A MoEngage mapping file or an s3imports manifest to load (empty: map each column here)",
        )
        .default(""),
    )?;
    let import_kind: ImportKind = serde_json::from_value(doc["kind"].clone())?;
    let mut file = file;
    let columns = loop {
        let columns = if file.is_empty() {
            map_columns(p, &found)?
        } else {
            match std::fs::read_to_string(&file)
                .with_context(|| format!("reading {file}"))
                .and_then(|t| Ok(parse_manifest(&t)?))
            {
                Ok(c) => c,
                Err(e) if p.interactive() => {
                    p.say(&format!("  {e:#}"));
                    Vec::new()
                }
                Err(e) => return Err(e),
            }
        };
        let problems = column_problems(&columns, &import_kind, "mapping.columns");
        if problems.is_empty() && !columns.is_empty() {
            // The fetched rows through the whole mapping, as the import will read them.
            let failures = sample_failures(services, &doc, &columns, &found).await?;
            if failures.is_empty() {
                break columns;
            }
            p.say(&format!(
                "The fetched rows under this mapping ({} problem{}):",
                failures.len(),
                if failures.len() == 1 { "" } else { "s" }
            ));
            for failure in &failures {
                p.say(&format!("  {failure}"));
            }
            let mut q = Question::new("sample_check", "Fix the mapping how?").choices(SAMPLE_FIX);
            if p.interactive() {
                q = q.default("again");
            }
            match p.ask(&q).map_err(|_| {
                anyhow::anyhow!(
                    "the mapping fails the fetched rows ({}); answer `sample_check` with `keep` to write it anyway",
                    failures.join("; ")
                )
            })?.as_str() {
                "keep" => break columns,
                "file" => {
                    file = p.ask(&Question::new("mapping_file", "The mapping file to load"))?;
                }
                "quit" => bail!("stopped at the mapping; nothing was written"),
                _ if !p.interactive() => bail!(
                    "the mapping fails the fetched rows: {}",
                    failures.join("; ")
                ),
                _ => file.clear(),
            }
            continue;
        }
        for problem in &problems {
            p.say(&format!("  {problem}"));
        }
        if !p.interactive() {
            bail!(
                "the mapping is not complete: {}",
                problems
                    .first()
                    .map_or("no column".to_string(), ToString::to_string)
            );
        }
        match p
            .ask(
                &Question::new("mapping_fix", "Fix the mapping how?")
                    .choices(MAPPING_FIX)
                    .default("again"),
            )?
            .as_str()
        {
            "file" => {
                file = p.ask(&Question::new("mapping_file", "The mapping file to load"))?;
            }
            "quit" => bail!("stopped at the mapping; nothing was written"),
            _ => file.clear(),
        }
    };
    doc["mapping"] = json!({"columns": columns});

    p.say("Step 3 of 3: frequency and notifications");
    doc["schedule"] = schedule(p)?;
    doc["timezone"] = ask_valid(
        p,
        Question::new("timezone", "Time zone the schedule runs in (IANA name)").default("UTC"),
        |v| {
            v.parse::<chrono_tz::Tz>()
                .map(|_| ())
                .map_err(|_| "an IANA time zone, e.g. Europe/Berlin or Asia/Kolkata".into())
        },
    )?
    .into();
    let recipients: Vec<String> = p
        .ask(
            &Question::new(
                "recipients",
                "Email addresses for the run's notifications (comma-separated, empty for none)",
            )
            .default(""),
        )?
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    let on_success = p.ask(
        &Question::new("on_success", "Email when a run succeeds?")
            .choices(YES_NO)
            .default("yes"),
    )? == "yes";
    let on_failure = p.ask(
        &Question::new("on_failure", "Email when a run fails or partly fails?")
            .choices(YES_NO)
            .default("yes"),
    )? == "yes";
    doc["notifications"] =
        json!({"recipients": recipients, "on_success": on_success, "on_failure": on_failure});
    if matches!(
        import_kind,
        ImportKind::RegisteredUsers {} | ImportKind::AnonymousUsers { .. }
    ) {
        let segment = p.ask(
            &Question::new(
                "segment",
                "Add the imported users to a segment (its name; empty for none)",
            )
            .default(""),
        )?;
        if !segment.is_empty() {
            doc["segment"] = json!({"name": segment});
        }
    }
    Ok(ImportConfig::from_value(doc)?)
}

/// The problems the fetched file's top rows would have under `columns`: the preview
/// again, with the mapping (none when the columns were typed in, with no file).
async fn sample_failures(
    services: &dyn Services,
    doc: &Value,
    columns: &[s3imports::rows::mapping::ColumnMapping],
    found: &[ColumnInfo],
) -> anyhow::Result<Vec<String>> {
    if found.iter().all(|c| c.sample.is_none()) {
        return Ok(Vec::new());
    }
    let mut doc = doc.clone();
    doc["mapping"] = json!({"columns": columns});
    match services.preview(&doc).await {
        Ok(preview) => Ok(preview.row_failures),
        // The file was fetched a moment ago: a failure now is the stack's, not the
        // mapping's, and the config is still checked before it is written.
        Err(e) => Ok(vec![format!(
            "the rows could not be checked: {}",
            e.message
        )]),
    }
}

/// Asks until `valid` accepts (or, from a file, fails with its reason).
fn ask_valid(
    p: &mut dyn Prompt,
    q: Question<'_>,
    valid: impl Fn(&str) -> Result<(), String>,
) -> anyhow::Result<String> {
    loop {
        let answer = p.ask(&q)?;
        if p.placeholder(&answer) {
            return Ok(answer);
        }
        match valid(&answer) {
            Ok(()) => return Ok(answer),
            Err(e) if p.interactive() => p.say(&format!("  {e}; again:")),
            Err(e) => bail!("answer `{}`: {e}", q.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::steps::{attribute_name, default_type};
    use super::*;

    #[test]
    fn answers_pick_choices_by_value_or_number_and_fall_back_to_defaults() {
        let q = Question::new("kind", "?").choices(KINDS).default("events");
        assert_eq!(q.check("").unwrap(), "events");
        assert_eq!(q.check("2").unwrap(), "anonymous_users");
        assert_eq!(q.check("auxiliary").unwrap(), "auxiliary");
        assert!(q.check("9").is_err() && q.check("users").is_err());
        assert!(Question::new("id", "?").check("  ").is_err());
        assert_eq!(attribute_name("First Name"), "first_name");
        // A user id that looks like a number is still a user id.
        assert_eq!(default_type("user_id", "integer"), "string");
        assert_eq!(default_type("birthday", "string"), "datetime");
        assert_eq!(default_type("lifetime_value", "number"), "number");
        assert_eq!(attribute_name(" E-mail (work) "), "e_mail_work");
    }
}
