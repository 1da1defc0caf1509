//! `s3imports keys …`: PGP keys made and stored in Secrets Manager.

use std::process::ExitCode;

use super::{Output, clients};
use anyhow::{Context as _, bail};
use s3imports::aws::Clients;
use serde_json::json;

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
pub(super) struct MadeKey {
    pub(super) secret: String,
    pub(super) arn: String,
    pub(super) algorithm: &'static str,
    pub(super) public: s3imports::operate::keygen::PublicKeyInfo,
    pub(super) encryption: serde_json::Value,
}

/// Makes a key pair and stores its private half (and passphrase) in Secrets Manager.
pub(super) async fn make_key(clients: &Clients, new: &NewKey<'_>) -> anyhow::Result<MadeKey> {
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
