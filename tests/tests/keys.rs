//! `s3imports keys generate|show` against moto: a key pair made by the CLI, its
//! private key only in Secrets Manager, a file GnuPG encrypts to the printed public key
//! imported with the printed `encryption` block, and a rotation: files encrypted to
//! the previous key still import, and the run says which key opened each file.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use aws_sdk_secretsmanager::types::Tag;
use s3imports_tests::gpg::{Encrypt, Gpg, KeyType};
use s3imports_tests::{TestEnv, api_call, s3imports, write_json};
use serde_json::{Value, json};

fn generate(env: &TestEnv, name: &str, extra: &[&str]) -> Value {
    let prefix = format!("{}/", env.prefix);
    let mut args = vec![
        "--json",
        "keys",
        "generate",
        "--name",
        name,
        "--import",
        "pgp-users",
        "--secrets-prefix",
        &prefix,
    ];
    args.extend_from_slice(extra);
    let out = s3imports(env, &args);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        !out.stdout.contains("PRIVATE KEY") && !out.stderr.contains("PRIVATE KEY"),
        "the private key was printed"
    );
    serde_json::from_str(&out.stdout).unwrap()
}

async fn secret(env: &TestEnv, name: &str) -> (Value, Vec<Tag>) {
    let value = env
        .clients
        .secrets
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .unwrap();
    let tags = env
        .clients
        .secrets
        .describe_secret()
        .secret_id(name)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default();
    (
        serde_json::from_str(value.secret_string().unwrap()).unwrap(),
        tags,
    )
}

#[tokio::test]
async fn generated_keys_import_gnupg_files_and_a_rotation_says_which_key_opened_each() {
    let env = TestEnv::new().await;
    let bucket = env.scoped("acme-exports");
    env.bucket(&bucket).await;

    // The current key, locked with a stored random passphrase; the previous one, RSA.
    let old = generate(&env, "acme-2025", &["--algorithm", "rsa4096"]);
    let new = generate(&env, "acme-2026", &["--passphrase"]);
    let (stored, tags) = secret(&env, new["secret"].as_str().unwrap()).await;
    let passphrase = stored["passphrase"].as_str().unwrap();
    assert!(
        stored["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----")
    );
    assert!(passphrase.len() >= 40);
    let tag = |k: &str| {
        tags.iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_string)
    };
    assert_eq!(tag("s3imports:import-id").as_deref(), Some("pgp-users"));
    assert_eq!(tag("s3imports:secret-kind").as_deref(), Some("pgp-key"));
    assert_eq!(
        new["encryption"],
        json!({
            "type": "pgp",
            "private_key_ref": format!("{}#private_key", new["secret"].as_str().unwrap()),
            "passphrase_ref": format!("{}#passphrase", new["secret"].as_str().unwrap()),
        })
    );
    assert_eq!(old["encryption"].get("passphrase_ref"), None);

    // A name is never reused; `show` prints the same public key again.
    let again = s3imports(
        &env,
        &[
            "keys",
            "generate",
            "--name",
            "acme-2026",
            "--import",
            "pgp-users",
            "--secrets-prefix",
            &format!("{}/", env.prefix),
        ],
    );
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
    let show = s3imports(
        &env,
        &[
            "--json",
            "keys",
            "show",
            "acme-2026",
            "--secrets-prefix",
            &format!("{}/", env.prefix),
        ],
    );
    assert_eq!(show.code, 0, "{}", show.stderr);
    let shown: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(shown["public_key"], new["public_key"]);
    assert_eq!(shown["fingerprint"], new["fingerprint"]);

    // The customer imports our public keys into GnuPG and encrypts to them; one file
    // goes to a key of their own that the config does not name.
    let customer = Gpg::new();
    let old_fpr = customer.import(old["public_key"].as_str().unwrap());
    let new_fpr = customer.import(new["public_key"].as_str().unwrap());
    assert_eq!(new_fpr, new["fingerprint"].as_str().unwrap());
    customer.key("stray@acme.example", KeyType::Curve25519);
    let files = [
        ("u1,30\n", old_fpr.as_str(), None, "20261101"),
        ("u2,41\n", new_fpr.as_str(), None, "20261102"),
        ("u3,52\n", "stray@acme.example", None, "20261103"),
        // To both keys (a sender mid-rotation): the current key is the one named.
        (
            "u4,63\n",
            old_fpr.as_str(),
            Some(new_fpr.as_str()),
            "20261104",
        ),
    ];
    for (rows, to, also_to, day) in files {
        let sealed = customer.encrypt(
            format!("ID,Age\n{rows}").as_bytes(),
            to,
            &Encrypt {
                armor: day == "20261102",
                also_to,
                ..Encrypt::default()
            },
        );
        env.put_object(
            &bucket,
            &format!("in/registered_user_data_{day}.csv.pgp"),
            sealed,
        )
        .await;
    }

    let mut encryption = new["encryption"].clone();
    encryption["previous_keys"] = json!([{
        "private_key_ref": old["encryption"]["private_key_ref"],
    }]);
    let config = json!({
        "id": "pgp-users",
        "name": "PGP users",
        "kind": {"type": "registered_users"},
        "source": {"bucket": bucket, "folder": "in", "datetime_format": "yyyymmdd"},
        "encryption": encryption,
        "mapping": {"columns": [
            {"column": "ID", "attribute": "user_id"},
            {"column": "Age", "attribute": "age", "type": "integer"}
        ]},
        "schedule": {"type": "once"},
    });
    let dir = tempfile::tempdir().unwrap();
    let path = write_json(dir.path(), "pgp-users.json", &config);
    let put = s3imports(&env, &["config", "put", &path]);
    assert_eq!(put.code, 0, "{}{}", put.stdout, put.stderr);
    let tick = s3imports(&env, &["tick"]);
    assert_eq!(tick.code, 0, "{}{}", tick.stdout, tick.stderr);

    let old_id = old["key_ids"][0].as_str().unwrap();
    let new_id = new["key_ids"][0].as_str().unwrap();
    let runs = s3imports(&env, &["--json", "runs", "pgp-users"]);
    let body: Value = serde_json::from_str(&runs.stdout).unwrap();
    let run = &body["runs"][0];
    let file = |day: &str| {
        run["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"].as_str().unwrap().contains(day))
            .unwrap()
            .clone()
    };
    assert_eq!(file("20261101")["status"], "succeeded");
    assert_eq!(
        file("20261101")["decrypted_with"],
        format!("previous key {old_id}")
    );
    assert_eq!(file("20261102")["status"], "succeeded");
    assert_eq!(
        file("20261102")["decrypted_with"],
        format!("current key {new_id}")
    );
    assert_eq!(
        file("20261104")["decrypted_with"],
        format!("current key {new_id}")
    );
    let stray = file("20261103");
    assert_eq!(stray["status"], "failed");
    let reason = stray["reason"].as_str().unwrap();
    assert!(
        reason.contains("not encrypted to the configured key")
            && reason.contains(old_id)
            && reason.contains(new_id),
        "{reason}"
    );
    assert_eq!(
        run["keys_used"],
        json!([
            format!("current key {new_id}"),
            format!("previous key {old_id}")
        ])
    );
    // The text the operator reads, and the API, say the same.
    let text = s3imports(&env, &["runs", "pgp-users"]).stdout;
    assert!(
        text.contains(&format!("decrypted with the previous key {old_id}")),
        "{text}"
    );
    let api = s3imports_preview::Api::from_env(
        &env.role_clients(s3imports_tests::Role::Preview),
        &env.stack,
    );
    let body = api_call(&api, "GET", "/imports/pgp-users/runs", None)
        .await
        .body;
    assert_eq!(body["runs"][0]["keys_used"], run["keys_used"], "{body}");
    // Nothing of either key reached the items.
    let items = env.scan(&env.stack.users_table).await;
    assert_eq!(items.len(), 3);
    let text = format!("{items:?}");
    assert!(
        !text.contains("PGP") && !text.contains(passphrase),
        "{text}"
    );
}
