//! `s3imports config new`: MoEngage's three set-up steps in the terminal (source and
//! format, mapping, frequency and notifications), built on the same config model,
//! validation and preview as everything else: the answers become the JSON document
//! `config put` takes, the newest file is fetched through the preview service, and the
//! result is checked by `ImportConfig::from_value` before it is written.
//!
//! Every question has an id; `--answers FILE` (a JSON object of id to answer) answers
//! them without a terminal, so scripts and tests take the same path.

use std::io::{BufRead, IsTerminal as _, Write};

use anyhow::{Context as _, bail};
use s3imports::model::config::{ImportConfig, ImportKind};
use s3imports::model::mapping_spec::CATALOG;
use s3imports::model::naming::DateTimeFormat;
use s3imports::operate::preview::{Preview, PreviewError};
use s3imports::rows::mapping::{ColumnMapping, column_problems, parse_manifest};
use serde_json::{Value, json};

/// One question: its id (the key in an answers file), what to ask, a default, and the
/// choices with what each means (empty: free text).
pub struct Question<'a> {
    pub id: String,
    pub text: String,
    pub default: Option<String>,
    pub choices: &'a [(&'a str, &'a str)],
}

impl<'a> Question<'a> {
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
            default: None,
            choices: &[],
        }
    }

    pub fn default(mut self, d: impl Into<String>) -> Self {
        self.default = Some(d.into());
        self
    }

    pub fn choices(mut self, c: &'a [(&'a str, &'a str)]) -> Self {
        self.choices = c;
        self
    }

    /// The answer as given, or the error that says why it is not one.
    fn check(&self, raw: &str) -> Result<String, String> {
        let raw = raw.trim();
        let answer = if raw.is_empty() {
            self.default.clone().ok_or("an answer is needed")?
        } else {
            raw.to_string()
        };
        if self.choices.is_empty() {
            return Ok(answer);
        }
        if let Ok(n) = answer.parse::<usize>()
            && (1..=self.choices.len()).contains(&n)
        {
            return Ok(self.choices[n - 1].0.to_string());
        }
        self.choices
            .iter()
            .find(|(v, _)| *v == answer)
            .map(|(v, _)| v.to_string())
            .ok_or_else(|| {
                format!(
                    "`{answer}` is not one of {}",
                    self.choices
                        .iter()
                        .map(|(v, _)| *v)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// Where answers come from.
pub trait Prompt {
    fn ask(&mut self, q: &Question<'_>) -> anyhow::Result<String>;
    fn say(&mut self, text: &str);
    /// A person answers (a problem can be fixed by asking again).
    fn interactive(&self) -> bool;
}

/// A person at a terminal.
pub struct Terminal<R, W> {
    input: R,
    output: W,
}

impl Terminal<std::io::StdinLock<'static>, std::io::Stdout> {
    /// Standard input and output, when standard input is a terminal.
    pub fn stdio() -> anyhow::Result<Self> {
        if !std::io::stdin().is_terminal() {
            bail!(
                "standard input is not a terminal: answer the questions with --answers FILE (a JSON object of question id to answer; see docs/config.md)"
            );
        }
        Ok(Self {
            input: std::io::stdin().lock(),
            output: std::io::stdout(),
        })
    }
}

impl<R: BufRead, W: Write> Prompt for Terminal<R, W> {
    fn ask(&mut self, q: &Question<'_>) -> anyhow::Result<String> {
        loop {
            let _ = writeln!(self.output, "{}", q.text);
            for (i, (value, meaning)) in q.choices.iter().enumerate() {
                let _ = writeln!(self.output, "  {}) {value} — {meaning}", i + 1);
            }
            let _ = match &q.default {
                Some(d) => write!(self.output, "[{}] {d}> ", q.id),
                None => write!(self.output, "[{}]> ", q.id),
            };
            let _ = self.output.flush();
            let mut line = String::new();
            if self.input.read_line(&mut line)? == 0 {
                bail!("input ended before `{}` was answered", q.id);
            }
            match q.check(&line) {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    let _ = writeln!(self.output, "  {e}; again:");
                }
            }
        }
    }

    fn say(&mut self, text: &str) {
        let _ = writeln!(self.output, "{text}");
    }

    fn interactive(&self) -> bool {
        true
    }
}

/// Answers from a file: each question's id, or its default.
pub struct Answers {
    answers: serde_json::Map<String, Value>,
}

impl Answers {
    pub fn from_file(path: &str) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        match serde_json::from_str(&text).with_context(|| format!("{path} is not JSON"))? {
            Value::Object(answers) => Ok(Self { answers }),
            _ => bail!("{path}: the answers are a JSON object of question id to answer"),
        }
    }
}

impl Prompt for Answers {
    fn ask(&mut self, q: &Question<'_>) -> anyhow::Result<String> {
        let raw = match self.answers.get(&q.id) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_string(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(","),
            Some(other) => other.to_string(),
        };
        q.check(&raw)
            .map_err(|e| anyhow::anyhow!("answer `{}` ({}): {e}", q.id, q.text))
    }

    fn say(&mut self, text: &str) {
        println!("{text}");
    }

    fn interactive(&self) -> bool {
        false
    }
}

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
    let columns = loop {
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
            map_columns(p, &columns)?
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
            break columns;
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

/// Asks until `valid` accepts (or, from a file, fails with its reason).
fn ask_valid(
    p: &mut dyn Prompt,
    q: Question<'_>,
    valid: impl Fn(&str) -> Result<(), String>,
) -> anyhow::Result<String> {
    loop {
        let answer = p.ask(&q)?;
        match valid(&answer) {
            Ok(()) => return Ok(answer),
            Err(e) if p.interactive() => p.say(&format!("  {e}; again:")),
            Err(e) => bail!("answer `{}`: {e}", q.id),
        }
    }
}

fn kind_details(p: &mut dyn Prompt, kind: &str) -> anyhow::Result<Value> {
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

fn source(p: &mut dyn Prompt) -> anyhow::Result<Value> {
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

async fn encryption(
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

fn naming(p: &mut dyn Prompt, doc: &mut Value) -> anyhow::Result<()> {
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
            let example = DateTimeFormat::parse(f)
                .map(|d| d.example())
                .unwrap_or_default();
            (
                f.to_string(),
                format!("{meaning}, e.g. {prefix}{example}.{file_type}"),
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
    }
    doc["file_type"] = file_type.into();
    doc["source"]["file_prefix"] = prefix.into();
    doc["source"]["datetime_format"] = format.into();
    Ok(())
}

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
fn map_columns(p: &mut dyn Prompt, found: &[ColumnInfo]) -> anyhow::Result<Vec<ColumnMapping>> {
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
                .default("YYYY-MM-DD hh:mm:ss"),
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
fn default_type<'a>(attribute: &str, suggested: &'a str) -> &'a str {
    match s3imports::model::mapping_spec::standard(attribute).and_then(|a| a.types.first()) {
        Some(t) => t.as_str(),
        None => suggested,
    }
}

/// A column header as an attribute name: lower case, words joined by `_`.
fn attribute_name(column: &str) -> String {
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

fn schedule(p: &mut dyn Prompt) -> anyhow::Result<Value> {
    loop {
        let v = schedule_answers(p)?;
        // The schedule's own checks, where the answers are given.
        let problems =
            match serde_json::from_value::<s3imports::model::schedule::Schedule>(v.clone()) {
                Ok(s) => s.validate(),
                Err(e) => vec![e.to_string()],
            };
        if problems.is_empty() {
            return Ok(v);
        }
        if !p.interactive() {
            bail!("the schedule is not valid: {}", problems.join("; "));
        }
        p.say(&format!("  {}; the schedule again:", problems.join("; ")));
    }
}

fn number(p: &mut dyn Prompt, q: Question<'_>) -> anyhow::Result<u32> {
    ask_valid(p, q, |v| {
        v.parse::<u32>()
            .map(|_| ())
            .map_err(|_| "a whole number".to_string())
    })
    .map(|v| v.parse().unwrap_or_default())
}

fn schedule_answers(p: &mut dyn Prompt) -> anyhow::Result<Value> {
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

#[cfg(test)]
mod tests {
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
