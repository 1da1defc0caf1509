//! `s3imports config new` against moto: the real binary in a pseudo-terminal, through
//! all three steps, for a PGP users import (with a wrong folder first, fixed after the
//! preview's message) and an events import; the same answers from `--answers`; and a
//! clear refusal without a terminal or answers.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use s3imports_tests::gpg::{Encrypt, Gpg};
use s3imports_tests::{CliRun, TestEnv, cli_binary, s3imports, workspace_root, write_json};
use serde_json::{Value, json};

/// Runs `s3imports args…` in a pseudo-terminal, answering `steps` in order.
fn in_terminal(env: &TestEnv, args: &[&str], steps: &[(&str, &str)]) -> CliRun {
    let dir = tempfile::tempdir().unwrap();
    let mut argv = vec![cli_binary().to_string_lossy().to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let script = json!({
        "argv": argv,
        "env": env.cli_env(&["config"]).into_iter().collect::<std::collections::HashMap<_, _>>(),
        "steps": steps,
    });
    let path = write_json(dir.path(), "session.json", &script);
    let root = workspace_root();
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/data/pty_drive.py"))
        .arg(&path)
        .current_dir(dir.path())
        .env_remove("S3IMPORTS_PREFIX")
        .output()
        .unwrap();
    CliRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// `config new --answers` (written to `dir/name`), writing `output` and putting it.
fn new_from_answers(
    env: &TestEnv,
    dir: &std::path::Path,
    name: &str,
    answers: &serde_json::Map<String, Value>,
    output: &std::path::Path,
) -> CliRun {
    let path = write_json(dir, name, &Value::Object(answers.clone()));
    s3imports(
        env,
        &[
            "config",
            "new",
            "--answers",
            &path,
            "--output",
            output.to_str().unwrap(),
            "--put",
        ],
    )
}

/// Terminal steps as an answers file's object.
fn answers_of(steps: &[(&str, &str)]) -> serde_json::Map<String, Value> {
    steps
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect()
}

/// The session printed `text`.
fn says(out: &CliRun, text: &str) {
    assert!(out.stdout.contains(text), "no `{text}` in:\n{}", out.stdout);
}

fn stored(env: &TestEnv, id: &str) -> Value {
    let show = s3imports(env, &["--json", "config", "show", id]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    serde_json::from_str(&show.stdout).unwrap()
}

/// A bucket with a PGP users file encrypted (by GnuPG) to a key `keys generate` made
/// for `id`; returns the bucket and the key's `encryption` block.
async fn pgp_users(env: &TestEnv, id: &str) -> (String, Value) {
    let bucket = env.scoped("wizard");
    env.bucket(&bucket).await;
    let prefix = format!("{}/", env.prefix);
    let made = s3imports(
        env,
        &[
            "--json",
            "keys",
            "generate",
            "--name",
            id,
            "--import",
            id,
            "--passphrase",
            "--secrets-prefix",
            &prefix,
        ],
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    let key: Value = serde_json::from_str(&made.stdout).unwrap();
    let gpg = Gpg::new();
    let fpr = gpg.import(key["public_key"].as_str().unwrap());
    let sealed = gpg.encrypt(
        b"ID,First Name,Age\nu1,Ana,30\nu2,Ben,41\n",
        &fpr,
        &Encrypt::default(),
    );
    env.put_object(&bucket, "crm/registered_user_data_20261128.csv.pgp", sealed)
        .await;
    (bucket, key["encryption"].clone())
}

/// The answers for the PGP users import, in the order the wizard asks.
fn users_steps<'a>(bucket: &'a str, encryption: &'a Value) -> Vec<(&'a str, &'a str)> {
    vec![
        ("kind", "registered_users"),
        ("id", "wizard-users"),
        ("name", "CRM users"),
        ("credentials", "default"),
        ("bucket", bucket),
        ("folder", "crm"),
        ("region", ""),
        ("encryption", "existing"),
        (
            "private_key_ref",
            encryption["private_key_ref"].as_str().unwrap(),
        ),
        (
            "passphrase_ref",
            encryption["passphrase_ref"].as_str().unwrap(),
        ),
        ("signer_public_key_file", ""),
        ("file_type", "csv"),
        ("delimiter", ""),
        ("file_prefix", ""),
        ("datetime_format", "1"),
        ("mapping_file", ""),
        ("column.ID", "user_id"),
        ("type.ID", "string"),
        ("column.First Name", ""),
        ("type.First Name", ""),
        ("column.Age", "age"),
        ("type.Age", "integer"),
        ("schedule", "daily"),
        ("time", "06:30"),
        ("timezone", "Europe/Berlin"),
        ("recipients", "ops@acme.example, data@acme.example"),
        ("on_success", "no"),
        ("on_failure", ""),
        ("segment", "CRM"),
    ]
}

fn assert_users_config(config: &Value, encryption: &Value) {
    assert_eq!(config["kind"], json!({"type": "registered_users"}));
    assert_eq!(config["source"]["folder"], "crm");
    assert_eq!(config["source"]["file_prefix"], "registered_user_data_");
    assert_eq!(config["source"]["datetime_format"], "yyyymmdd");
    assert_eq!(config["encryption"]["type"], "pgp");
    let _ = encryption; // refs are redacted by `config show`
    assert_eq!(config["encryption"]["private_key_ref"], "***");
    assert_eq!(
        config["mapping"]["columns"],
        json!([
            {"column": "ID", "attribute": "user_id", "type": "string"},
            {"column": "First Name", "attribute": "first_name", "type": "string"},
            {"column": "Age", "attribute": "age", "type": "integer"}
        ])
    );
    assert_eq!(
        config["schedule"],
        json!({"type": "daily", "time": "06:30"})
    );
    assert_eq!(config["timezone"], "Europe/Berlin");
    assert_eq!(
        config["notifications"],
        json!({"recipients": ["ops@acme.example", "data@acme.example"], "on_success": false, "on_failure": true})
    );
    assert_eq!(config["segment"], json!({"name": "CRM"}));
}

#[tokio::test]
async fn a_pgp_users_import_in_a_terminal_after_fixing_the_folder() {
    let env = TestEnv::new().await;
    let (bucket, encryption) = pgp_users(&env, "wizard-users").await;
    // A wrong folder first: the preview's own message, then the source asked again.
    let mut steps = vec![
        ("kind", "1"),
        ("id", "Not An Id"),
        ("id", "wizard-users"),
        ("name", "CRM users"),
        ("credentials", ""),
        ("bucket", bucket.as_str()),
        ("folder", "nope"),
        ("region", ""),
        ("encryption", "none"),
        ("file_type", ""),
        ("delimiter", ""),
        ("file_prefix", ""),
        ("datetime_format", ""),
        ("after_fetch", "again"),
    ];
    steps.extend(users_steps(&bucket, &encryption).into_iter().skip(3));
    steps.push(("put", "yes"));
    let out = in_terminal(&env, &["config", "new"], &steps);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let text = &out.stdout;
    assert!(
        text.contains("Please check the folder path and try again"),
        "{text}"
    );
    assert!(text.contains("1 to 64 lowercase letters"), "{text}");
    assert!(
        text.contains("1) registered_users — users keyed by your user id"),
        "{text}"
    );
    assert!(
        text.contains("yyyymmdd — a date, e.g. registered_user_data_20220131.csv"),
        "the date-time choices name an example file: {text}"
    );
    // The top rows of the decrypted file, as a table.
    assert!(text.contains("ID | First Name | Age"), "{text}");
    assert!(text.contains("u2 | Ben        | 41"), "{text}");
    assert!(text.contains("import wizard-users created"), "{text}");
    let record = stored(&env, "wizard-users");
    assert_eq!(record["status"], "active");
    assert_users_config(&record["config"], &encryption);
}

#[tokio::test]
async fn an_events_import_in_a_terminal() {
    let env = TestEnv::new().await;
    let bucket = env.scoped("events");
    env.bucket(&bucket).await;
    env.put_object(
        &bucket,
        "shop/Purchase_20261128.csv",
        "customer_id,purchased_at,amount\nc1,2026-11-28 10:00:00,9.5\n",
    )
    .await;
    let steps = [
        ("kind", ""),
        ("event_name", "Purchase"),
        ("id", "shop-purchases"),
        ("name", ""),
        ("credentials", "default"),
        ("bucket", bucket.as_str()),
        ("folder", "/shop/"),
        ("region", ""),
        ("encryption", ""),
        ("file_type", ""),
        ("delimiter", ""),
        ("file_prefix", ""),
        ("datetime_format", "yyyymmdd"),
        ("mapping_file", ""),
        // First without the user id column: the kind's required attribute is missing.
        ("column.customer_id", "skip"),
        ("column.purchased_at", "event_time"),
        ("type.purchased_at", "datetime"),
        ("format.purchased_at", ""),
        ("column.amount", ""),
        ("type.amount", ""),
        ("mapping_fix", "again"),
        ("column.customer_id", "user_id"),
        ("type.customer_id", ""),
        ("column.purchased_at", "event_time"),
        ("type.purchased_at", "datetime"),
        ("format.purchased_at", ""),
        ("column.amount", ""),
        ("type.amount", "number"),
        ("schedule", "every"),
        ("every_unit", "minutes"),
        ("every", "30"),
        ("timezone", ""),
        ("recipients", ""),
        ("on_success", ""),
        ("on_failure", ""),
        ("put", "yes"),
    ];
    let out = in_terminal(&env, &["config", "new", "--kind", "events"], &steps);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    says(&out, "imports need a column mapped to `user_id`");
    says(&out, "e.g. Purchase_20220131.csv");
    let config = &stored(&env, "shop-purchases")["config"];
    assert_eq!(config["kind"]["event_name"], "Purchase");
    assert_eq!(config["name"], "shop-purchases");
    assert_eq!(config["source"]["folder"], "shop");
    assert_eq!(config["source"]["file_prefix"], "Purchase_");
    assert_eq!(
        config["mapping"]["columns"],
        json!([
            {"column": "customer_id", "attribute": "user_id", "type": "string"},
            {"column": "purchased_at", "attribute": "event_time", "type": "datetime", "format": "YYYY-MM-DD hh:mm:ss"},
            {"column": "amount", "attribute": "amount", "type": "number"}
        ])
    );
    assert_eq!(config["schedule"], json!({"type": "every", "minutes": 30}));
    // The stored config imports the file (started now: its first run is in 30 minutes).
    let run = s3imports(&env, &["run", "shop-purchases", "--process"]);
    assert!(
        run.stdout
            .contains("Successful shop/Purchase_20261128.csv: 1 rows (1 imported, 0 failed)"),
        "{}{}",
        run.stdout,
        run.stderr
    );
}

#[tokio::test]
async fn answers_from_a_file_take_the_same_path_and_no_terminal_is_refused() {
    let env = TestEnv::new().await;
    let (bucket, encryption) = pgp_users(&env, "wizard-users").await;
    let answers = answers_of(&users_steps(&bucket, &encryption));
    let dir = tempfile::tempdir().unwrap();
    // A missing answer names the question; an invalid one says why.
    let refused = |name: &str, answers: serde_json::Map<String, Value>, says: &str| {
        let path = write_json(dir.path(), name, &Value::Object(answers));
        let out = s3imports(&env, &["config", "new", "--answers", &path]);
        assert_eq!(out.code, 1, "{name}");
        assert!(out.stderr.contains(says), "{name}: {}", out.stderr);
    };
    let mut short = answers.clone();
    short.remove("bucket");
    refused(
        "short.json",
        short,
        "answer `bucket` (The bucket): an answer is needed",
    );
    let mut wrong = answers.clone();
    wrong.insert("folder".into(), "nope".into());
    refused(
        "wrong.json",
        wrong,
        "Please check the folder path and try again",
    );
    let output = dir.path().join("users.json");
    let out = new_from_answers(&env, dir.path(), "answers.json", &answers, &output);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    assert_eq!(
        written["encryption"], encryption,
        "the file keeps the real references"
    );
    assert_users_config(&stored(&env, "wizard-users")["config"], &encryption);

    // No terminal and no answers: refused, saying what to do.
    let out = s3imports(&env, &["config", "new"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("standard input is not a terminal: answer the questions with --answers FILE"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_key_made_by_the_wizard_and_columns_typed_in_before_any_file_arrives() {
    let env = TestEnv::new().await;
    let bucket = env.scoped("early");
    env.bucket(&bucket).await;
    let answers = json!({
        "kind": "events", "event_name": "Signup", "id": "signups", "name": "Signups",
        "credentials": "default", "bucket": bucket, "folder": "signups", "region": "",
        "encryption": "generate", "key_name": "signups-2026", "key_passphrase": "yes",
        "file_type": "csv", "file_prefix": "", "datetime_format": "custom", "datetime_pattern": "%Y-%m-%d",
        "after_fetch": "columns", "columns": "uid, at",
        "mapping_file": "",
        "column.uid": "user_id", "type.uid": "string",
        "column.at": "event_time", "type.at": "datetime", "format.at": "YYYY-MM-DD hh:mm:ss",
        "schedule": "hourly", "minute": "15", "timezone": "UTC",
        "recipients": "", "on_success": "yes", "on_failure": "yes"
    });
    let dir = tempfile::tempdir().unwrap();
    let path = write_json(dir.path(), "answers.json", &answers);
    let prefix = format!("{}/", env.prefix);
    let output = dir.path().join("signups.json");
    let out = s3imports(
        &env,
        &[
            "config",
            "new",
            "--answers",
            &path,
            "--put",
            "--secrets-prefix",
            &prefix,
            "--output",
            output.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    says(&out, "Please check the folder path and try again");
    says(&out, "-----BEGIN PGP PUBLIC KEY BLOCK-----");
    assert!(!out.stdout.contains("PRIVATE KEY"), "{}", out.stdout);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let secret = format!("{prefix}pgp/signups-2026");
    assert_eq!(
        written["encryption"],
        json!({"type": "pgp", "private_key_ref": format!("{secret}#private_key"), "passphrase_ref": format!("{secret}#passphrase")})
    );
    let tags = env
        .clients
        .secrets
        .describe_secret()
        .secret_id(&secret)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default();
    assert!(
        tags.iter()
            .any(|t| t.key() == Some("s3imports:import-id") && t.value() == Some("signups"))
    );
    let config = &stored(&env, "signups")["config"];
    assert_eq!(config["schedule"], json!({"type": "hourly", "minute": 15}));
    assert_eq!(
        config["mapping"]["columns"][1]["format"],
        "YYYY-MM-DD hh:mm:ss"
    );
}

/// A users file whose `signup` column holds dates alone (`2026-01-05`).
async fn dated_users(env: &TestEnv) -> String {
    let bucket = env.scoped("dates");
    env.bucket(&bucket).await;
    env.put_object(
        &bucket,
        "crm/registered_user_data_20261128.csv",
        "ID,signup\nu1,2026-01-05\nu2,2026-02-11\n",
    )
    .await;
    bucket
}

fn dated_steps(bucket: &str) -> Vec<(&str, &str)> {
    vec![
        ("kind", "registered_users"),
        ("id", "wizard-dates"),
        ("name", ""),
        ("credentials", "default"),
        ("bucket", bucket),
        ("folder", "crm"),
        ("region", ""),
        ("encryption", "none"),
        ("file_type", ""),
        ("delimiter", ""),
        ("file_prefix", ""),
        ("datetime_format", "yyyymmdd"),
        ("mapping_file", ""),
        ("column.ID", "user_id"),
        ("type.ID", ""),
        ("column.signup", ""),
        ("type.signup", ""),
        ("format.signup", ""),
        ("schedule", "once"),
        ("timezone", ""),
        ("recipients", ""),
        ("on_success", ""),
        ("on_failure", ""),
        ("segment", ""),
        ("put", "yes"),
    ]
}

/// The set-up offers a date-time format the fetched values match (not one they do
/// not), and `custom` shows an example name.
#[tokio::test]
async fn a_date_column_is_offered_a_format_its_values_match() {
    let env = TestEnv::new().await;
    let bucket = dated_users(&env).await;
    let out = in_terminal(&env, &["config", "new"], &dated_steps(&bucket));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    says(&out, "[format.signup] YYYY-MM-DD> ");
    says(
        &out,
        "e.g. %Y-%m-%d_%H-%M-%S: registered_user_data_2022-01-31_12-59-30.csv",
    );
    let config = &stored(&env, "wizard-dates")["config"];
    assert_eq!(
        config["mapping"]["columns"][1],
        json!({"column": "signup", "attribute": "signup", "type": "datetime", "format": "YYYY-MM-DD"})
    );
    // The import reads the file it was set up from.
    let run = s3imports(&env, &["run", "wizard-dates", "--process"]);
    assert!(
        run.stdout.contains("2 rows (2 imported, 0 failed)"),
        "{}{}",
        run.stdout,
        run.stderr
    );
}

/// A mapping the fetched rows fail is shown row by row before anything is written:
/// refused from an answers file unless told to keep it.
#[tokio::test]
async fn rows_the_mapping_would_fail_are_shown_before_it_is_written() {
    let env = TestEnv::new().await;
    let bucket = dated_users(&env).await;
    let dir = tempfile::tempdir().unwrap();
    let mut answers = answers_of(&dated_steps(&bucket));
    answers.insert("format.signup".into(), "YYYY-MM-DD hh:mm:ss".into());
    let output = dir.path().join("dates.json");
    let out = new_from_answers(&env, dir.path(), "wrong.json", &answers, &output);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    for text in [
        "the mapping fails the fetched rows",
        "column `signup`",
        "answer `sample_check` with `keep`",
    ] {
        assert!(out.stderr.contains(text), "no `{text}` in {}", out.stderr);
    }
    assert_eq!(
        out.stdout.matches("column `signup`").count(),
        2,
        "{}",
        out.stdout
    );
    let show = s3imports(&env, &["config", "show", "wizard-dates"]);
    assert_ne!(show.code, 0, "nothing was put");
    assert!(!output.exists(), "nothing was written");

    answers.insert("sample_check".into(), "keep".into());
    let out = new_from_answers(&env, dir.path(), "keep.json", &answers, &output);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let config = &stored(&env, "wizard-dates")["config"];
    assert_eq!(
        config["mapping"]["columns"][1]["format"],
        "YYYY-MM-DD hh:mm:ss"
    );
}
