use super::check::valid_bucket_name;
use super::*;
use crate::model::ledger::MAX_FILE_KEY_BYTES;
use crate::model::naming::FileType;

fn base() -> serde_json::Value {
    serde_json::json!({
        "id": "users-daily",
        "name": "Users daily",
        "kind": {"type": "registered_users"},
        "source": {
            "bucket": "acme-exports",
            "folder": "moengage/users",
            "datetime_format": "yyyymmdd"
        },
        "mapping": {"columns": [
            {"column": "ID", "attribute": "user_id"},
            {"column": "Email", "attribute": "email"}
        ]},
        "schedule": {"type": "daily", "time": "09:30"},
        "timezone": "Asia/Kolkata",
        "notifications": {"recipients": ["ops@acme.example"]}
    })
}

#[test]
fn parses_a_valid_config_with_defaults() {
    let c = ImportConfig::from_value(base()).unwrap();
    assert_eq!(c.status, ImportStatus::Active);
    assert_eq!(c.file_type, FileType::Csv);
    assert_eq!(c.delimiter, ',');
    assert_eq!(c.file_prefix(), "registered_user_data_");
    assert_eq!(c.timezone, chrono_tz::Asia::Kolkata);
    assert!(c.notifications.on_failure && c.notifications.on_success);
    assert_eq!(
        c.duplicate_key(),
        "users|registered|acme-exports|moengage/users"
    );
}

#[test]
fn event_prefix_defaults_to_event_name() {
    let mut v = base();
    v["kind"] = serde_json::json!({"type": "events", "event_name": "Purchase Summary"});
    v["mapping"] = serde_json::json!({"columns": [
        {"column": "uid", "attribute": "user_id"},
        {"column": "at", "attribute": "event_time", "type": "datetime"}
    ]});
    let c = ImportConfig::from_value(v).unwrap();
    assert_eq!(c.file_prefix(), "Purchase Summary_");
    assert_eq!(
        c.duplicate_key(),
        "events|Purchase Summary|acme-exports|moengage/users"
    );
}

#[test]
fn rejects_plaintext_secrets_naming_the_field() {
    let mut v = base();
    v["source"]["credentials"] = serde_json::json!({
        "type": "access_key", "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    });
    let err = ImportConfig::from_value(v).unwrap_err();
    let ConfigError::Invalid(problems) = err else {
        panic!("expected problems")
    };
    assert_eq!(problems[0].field, "source.credentials.secret_access_key");
    assert!(problems[0].message.contains("secret_access_key_ref"));
    assert!(!problems[0].message.contains("wJalr"));
}

#[test]
fn a_segment_is_for_user_imports_with_a_plain_name() {
    let mut v = base();
    v["segment"] = serde_json::json!({"name": "VIP customers", "description": "from the CRM"});
    assert!(ImportConfig::from_value(v.clone()).is_ok());
    v["segment"]["name"] = serde_json::json!("#segments");
    let p = problems_of(v.clone());
    assert_eq!(p[0].field, "segment.name");
    v["segment"]["name"] = serde_json::json!("ok");
    v["kind"] = serde_json::json!({"type": "events", "event_name": "Bought"});
    let p = problems_of(v);
    assert!(p.iter().any(|p| p.field == "segment"), "{p:?}");
}

#[test]
fn rejects_an_inline_private_key() {
    let mut v = base();
    v["encryption"] = serde_json::json!({
        "type": "pgp", "private_key_ref": "-----BEGIN PGP PRIVATE KEY BLOCK-----\nabc"
    });
    let ConfigError::Invalid(problems) = ImportConfig::from_value(v).unwrap_err() else {
        panic!()
    };
    assert_eq!(problems[0].field, "encryption.private_key_ref");
}

#[test]
fn returns_every_problem_at_once() {
    let mut v = base();
    v["id"] = "Users Daily".into();
    v["source"]["folder"] = "/moengage/users/".into();
    v["source"]["bucket"] = "Acme_Exports".into();
    v["source"]["file_prefix"] = "bad/prefix".into();
    v["notifications"]["recipients"] = serde_json::json!(["not-an-email"]);
    let ConfigError::Invalid(problems) = ImportConfig::from_value(v).unwrap_err() else {
        panic!()
    };
    let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "id",
            "source.bucket",
            "source.folder",
            "source.file_prefix",
            "notifications.recipients[0]"
        ]
    );
}

#[test]
fn root_folder_is_refused() {
    let mut v = base();
    v["source"]["folder"] = "".into();
    let ConfigError::Invalid(problems) = ImportConfig::from_value(v).unwrap_err() else {
        panic!()
    };
    assert_eq!(problems[0].field, "source.folder");
    assert!(problems[0].message.contains("bucket root"));
}

#[test]
fn unknown_fields_are_errors() {
    let mut v = base();
    v["schedulee"] = "daily".into();
    let err = ImportConfig::from_value(v).unwrap_err().to_string();
    assert!(err.contains("schedulee"), "{err}");
}

#[test]
fn redaction_hides_secret_references() {
    let mut v = base();
    v["encryption"] = serde_json::json!({
        "type": "pgp", "private_key_ref": "s3imports/pgp-key", "passphrase_ref": "s3imports/pgp-pass"
    });
    let c = ImportConfig::from_value(v).unwrap();
    let r = c.redacted().to_string();
    assert!(!r.contains("s3imports/pgp-key") && !r.contains("s3imports/pgp-pass"));
    assert!(r.contains("***"));
}

#[test]
fn secret_ref_parts() {
    assert_eq!(SecretRef("a/b#key".into()).parts(), ("a/b", Some("key")));
    assert_eq!(
        SecretRef("arn:x:secret".into()).parts(),
        ("arn:x:secret", None)
    );
}

#[test]
fn bucket_names() {
    assert!(valid_bucket_name("acme-exports.eu"));
    assert!(!valid_bucket_name("ab"));
    assert!(!valid_bucket_name("-acme"));
    assert!(!valid_bucket_name("Acme"));
}

fn problems_of(v: serde_json::Value) -> Vec<Problem> {
    match ImportConfig::from_value(v) {
        Err(ConfigError::Invalid(problems)) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn alerts_post_processing_and_duplicates_are_checked_field_by_field() {
    let mut v = base();
    v["notifications"] = serde_json::json!({
        "recipients": ["ops@acme.example"],
        "alert_when": {"rows_failed_percent": 150},
        "sns_topic_arn": "arn:aws:sqs:us-east-1:123456789012:q",
        "webhook": {"url": "http://hooks.acme.example/x", "signing_key_ref": "s3imports/k"}
    });
    v["post_processing"] = serde_json::json!({
        "move_to": {"failed": "../up"},
        "delete": ["failed"]
    });
    let fields: Vec<String> = problems_of(v).into_iter().map(|p| p.field).collect();
    for f in [
        "notifications.alert_when.rows_failed_percent",
        "notifications.sns_topic_arn",
        "notifications.webhook.url",
        "post_processing.move_to.failed",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} not in {fields:?}");
    }
    let mut v = base();
    v["on_duplicate_content"] = "ignore".into();
    assert!(
        syntax_error(v)
            .contains("unknown variant `ignore`, expected one of `import`, `warn`, `skip`")
    );
    let mut v = base();
    v["on_duplicate_content"] = "skip".into();
    assert_eq!(
        ImportConfig::from_value(v).unwrap().on_duplicate_content,
        DuplicateContent::Skip
    );
}

#[test]
fn every_example_config_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.to_string_lossy().to_string();
        if !name.ends_with(".json") || name.ends_with(".mapping.json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        ImportConfig::from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        n += 1;
    }
    assert!(n >= 4, "{n} examples");
}

fn syntax_error(v: serde_json::Value) -> String {
    match ImportConfig::from_value(v) {
        Err(ConfigError::Syntax(s)) => s,
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn unknown_fields_next_to_a_variant_without_fields_are_errors() {
    let mut v = base();
    v["kind"] = serde_json::json!({"type": "registered_users", "bogus": 1});
    let err = syntax_error(v);
    assert!(err.contains("unknown field `bogus`"), "{err}");
    let mut v = base();
    v["source"]["credentials"] = serde_json::json!({
        "type": "default", "role_arn": "arn:aws:iam::123456789012:role/s3imports-x"
    });
    let err = syntax_error(v);
    assert!(err.contains("unknown field `role_arn`"), "{err}");
    // The valid forms read and write as before.
    let mut v = base();
    v["source"]["credentials"] = serde_json::json!({"type": "default"});
    let c = ImportConfig::from_value(v).unwrap();
    assert_eq!(c.kind, ImportKind::RegisteredUsers {});
    assert_eq!(c.source.credentials, Credentials::default());
    let written = serde_json::to_value(&c).unwrap();
    assert_eq!(
        written["kind"],
        serde_json::json!({"type": "registered_users"})
    );
    assert_eq!(
        written["source"]["credentials"],
        serde_json::json!({"type": "default"})
    );
    assert_eq!(ImportConfig::from_value(written).unwrap(), c);
}

#[test]
fn an_event_name_that_cannot_be_a_prefix_needs_an_explicit_one() {
    // Found by `make fuzz`: the default prefix `Antarctica/Troll_` put every file name
    // in a sub-folder, so the import could never match a file.
    let events = |prefix: Option<&str>| {
        let mut v = base();
        v["kind"] = serde_json::json!({"type": "events", "event_name": "Antarctica/Troll"});
        v["mapping"]["columns"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"column": "at", "attribute": "event_time"}));
        if let Some(p) = prefix {
            v["source"]["file_prefix"] = p.into();
        }
        ImportConfig::from_value(v)
    };
    let Err(ConfigError::Invalid(p)) = events(None) else {
        panic!("accepted a prefix with a `/`")
    };
    assert!(
        p.iter()
            .any(|p| p.field == "source.file_prefix" && p.message.contains("`Antarctica/Troll_`")),
        "{p:?}"
    );
    let c = events(Some("troll_")).unwrap();
    let example = format!("{}/{}", c.source.folder, c.file_pattern().example_name());
    assert!(c.file_pattern().match_key(&example).is_ok());
}

#[test]
fn an_assumed_role_needs_an_external_id() {
    let mut v = base();
    v["source"]["credentials"] = serde_json::json!({
        "type": "assume_role", "role_arn": "arn:aws:iam::111122223333:role/s3imports-reader"
    });
    let Err(ConfigError::Invalid(p)) = ImportConfig::from_value(v.clone()) else {
        panic!("accepted without an external id")
    };
    assert_eq!(p[0].field, "source.credentials.external_id");
    assert!(
        p[0].message.contains("needs an external id"),
        "{}",
        p[0].message
    );
    v["source"]["credentials"]["external_id"] = "acme-s3imports".into();
    ImportConfig::from_value(v).unwrap();
}

#[test]
fn the_folder_leaves_room_for_the_longest_key_in_the_ledger() {
    // The longest name base() matches: default prefix, yyyymmdd, .csv.gz.pgp.
    let name = "registered_user_data_20261127.csv.gz.pgp";
    let mut accepted = Vec::new();
    for len in 960..1000 {
        let folder = format!("f/{}", "x".repeat(len - 2));
        let mut v = base();
        v["source"]["folder"] = folder.clone().into();
        match ImportConfig::from_value(v) {
            Ok(c) => {
                let key = format!("{folder}/{name}");
                assert!(c.file_pattern().match_key(&key).is_ok());
                accepted.push(key.len());
            }
            Err(ConfigError::Invalid(p)) => {
                assert_eq!(p.len(), 1, "{p:?}");
                assert_eq!(p[0].field, "source.folder");
                assert!(p[0].message.contains("too long"), "{}", p[0].message);
                let key = format!("{folder}/{name}");
                assert!(key.len() > MAX_FILE_KEY_BYTES);
            }
            Err(e) => panic!("{e}"),
        }
    }
    // Every folder whose longest key fits is accepted, up to exactly the limit.
    assert_eq!(
        accepted.iter().max(),
        Some(&MAX_FILE_KEY_BYTES),
        "{accepted:?}"
    );
    // A long prefix leaves less room.
    let mut v = base();
    v["source"]["folder"] = "x".repeat(950).into();
    assert!(ImportConfig::from_value(v.clone()).is_ok());
    v["source"]["file_prefix"] = "p".repeat(100).into();
    assert_eq!(problems_of(v)[0].field, "source.folder");
}

#[test]
fn delimiters_the_csv_reader_cannot_use_are_refused() {
    for bad in ["\r", "\n", "\u{0}", "\"", "é", "€"] {
        let mut v = base();
        v["delimiter"] = bad.into();
        let p = problems_of(v);
        assert_eq!(p.len(), 1, "{bad:?}: {p:?}");
        assert_eq!(p[0].field, "delimiter", "{bad:?}");
        assert!(p[0].message.contains("ASCII"), "{}", p[0].message);
    }
    for good in ["\t", ";", "|", ",", "\u{1}"] {
        let mut v = base();
        v["delimiter"] = good.into();
        assert!(ImportConfig::from_value(v).is_ok(), "{good:?}");
    }
}

const SIGNER: &str = concat!(
    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
    "\n",
    "mDMEawvjNBYJKwYBBAHaRw8BAQdA2TpvJ+p/vdS/usFOBBplfZDlz8DG97WlDfjK\n",
    "1rBPFeq0G1NpZ25lciA8c2lnbmVyQGV4YW1wbGUuY29tPoiQBBMWCAA4FiEEnKXh\n",
    "4r3JAHwb5Pebq6d7FjU8x7EFAmsL4zQCGwMFCwkIBwIGFQoJCAsCBBYCAwECHgEC\n",
    "F4AACgkQq6d7FjU8x7EzjgEAteqfVbCDh05Xts/psDZTuH3j2stW2JNDl0C9+ie3\n",
    "sVIA/AiPuOaGxTiBBSqgle5SWuUtZYb63apjia/jC4rW7zAL\n",
    "=tg9u\n",
    "-----END PGP PUBLIC KEY BLOCK-----\n",
);

#[test]
fn a_signer_key_must_parse_as_processing_parses_it() {
    let with_signer = |key: &str| {
        let mut v = base();
        v["encryption"] = serde_json::json!({
            "type": "pgp", "private_key_ref": "s3imports/k", "signer_public_key": key
        });
        v
    };
    assert!(ImportConfig::from_value(with_signer(SIGNER)).is_ok());
    let lines: Vec<&str> = SIGNER.lines().collect();
    let truncated = [&lines[..4], &lines[lines.len() - 2..]].concat().join("\n");
    for bad in [
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----",
        truncated.as_str(),
        "mDMEawvjNBYJKwYBBAHaRw8BAQdA2TpvJ",
    ] {
        let p = problems_of(with_signer(bad));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "encryption.signer_public_key");
        assert!(
            p[0].message
                .starts_with("the signer's public key is not an ASCII-armored OpenPGP public key"),
            "{}",
            p[0].message
        );
    }
}

#[test]
fn nul_characters_are_refused_where_they_stand() {
    let mut v = base();
    v["source"]["folder"] = "moengage/us\u{0}ers".into();
    v["kind"] = serde_json::json!({"type": "events", "event_name": "Pur\u{0}chase"});
    v["mapping"]["columns"] = serde_json::json!([
        {"column": "ID", "attribute": "user_id"},
        {"column": "At", "attribute": "event_time", "type": "datetime"},
        {"column": "Em\u{0}ail", "attribute": "email"}
    ]);
    let p = problems_of(v);
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    for field in [
        "kind.event_name",
        "source.folder",
        "mapping.columns[2].column",
    ] {
        assert!(fields.contains(&field), "{field} not in {fields:?}");
    }
    assert!(p.iter().all(|p| !p.message.is_empty()));
    assert!(
        p.iter()
            .filter(|p| p.field == "source.folder")
            .any(|p| p.message.contains("NUL"))
    );
}

#[test]
fn values_that_become_keys_are_bounded() {
    let mut v = base();
    v["kind"] = serde_json::json!({
        "type": "auxiliary", "dataset": "d".repeat(101), "key_column": "ID", "retention_days": 30
    });
    v["mapping"] = serde_json::json!({"columns": [{"column": "ID", "attribute": "code"}]});
    let p = problems_of(v.clone());
    assert_eq!(p[0].field, "kind.dataset");
    v["kind"]["dataset"] = "d".repeat(100).into();
    assert!(ImportConfig::from_value(v).is_ok());
    let mut v = base();
    v["id"] = "a".repeat(65).into();
    assert_eq!(problems_of(v)[0].field, "id");
    let mut v = base();
    v["source"]["datetime_format"] = format!("%Y%m%d{}", "-".repeat(100)).into();
    let err = syntax_error(v);
    assert!(err.contains("at most 100 characters"), "{err}");
}
