//! Import PGP keys in Secrets Manager: `s3imports keys generate` stores a new private
//! key (and passphrase) as one JSON secret, tagged for its imports; `keys show` reads
//! it back to print the public half. The private key leaves this process only into
//! Secrets Manager.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::Tag;

use super::describe_sdk;
use crate::model::config::{Encryption, SecretRef};
use crate::operate::keygen::{GeneratedKey, PublicKeyInfo, public_key_of};
use crate::ports::SECRET_TAG;

/// The tag that tells a PGP key from an access key (discovery may read only the latter).
pub const SECRET_KIND_TAG: &str = "s3imports:secret-kind";
pub const PGP_KEY_KIND: &str = "pgp-key";
/// The JSON keys of a key secret.
pub const PRIVATE_KEY_FIELD: &str = "private_key";
pub const PASSPHRASE_FIELD: &str = "passphrase";

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error(
        "a secret named `{0}` exists already; a new key needs a new name (during a rotation, the old key stays under its own name as a previous key)"
    )]
    Exists(String),
    #[error("Secrets Manager {operation} on `{secret}` failed: {reason}")]
    Service {
        operation: &'static str,
        secret: String,
        reason: String,
    },
    #[error("secret `{0}` is not a key made by `s3imports keys generate` (no `private_key`)")]
    NotAKey(String),
    #[error(transparent)]
    Pgp(#[from] crate::codec::pgp::PgpError),
}

/// Where a named key lives: `<secrets prefix>pgp/<name>`, under the prefix the
/// functions may read.
pub fn key_secret_name(prefix: &str, name: &str) -> String {
    format!("{prefix}pgp/{name}")
}

/// The config's `encryption` block for a stored key.
pub fn encryption_block(secret: &str, with_passphrase: bool) -> Encryption {
    Encryption::Pgp {
        private_key_ref: SecretRef(format!("{secret}#{PRIVATE_KEY_FIELD}")),
        passphrase_ref: with_passphrase.then(|| SecretRef(format!("{secret}#{PASSPHRASE_FIELD}"))),
        previous_keys: Vec::new(),
        signer_public_key: None,
    }
}

#[derive(Debug, Clone)]
pub struct KeyStore {
    secrets: Client,
}

impl KeyStore {
    pub fn new(secrets: Client) -> Self {
        Self { secrets }
    }

    /// Stores a new key as secret `name`, usable by `imports` (space-separated ids);
    /// never overwrites. Returns the secret's ARN.
    pub async fn create(
        &self,
        name: &str,
        key: &GeneratedKey,
        passphrase: Option<&str>,
        imports: &str,
    ) -> Result<String, KeyStoreError> {
        let mut value = serde_json::Map::new();
        value.insert(PRIVATE_KEY_FIELD.into(), key.private_armored.clone().into());
        if let Some(p) = passphrase {
            value.insert(PASSPHRASE_FIELD.into(), p.into());
        }
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let out = self
            .secrets
            .create_secret()
            .name(name)
            .description(format!(
                "s3imports PGP key {} for import(s) {imports}",
                key.public.fingerprint
            ))
            .secret_string(serde_json::Value::Object(value).to_string())
            .tags(tag(SECRET_TAG, imports))
            .tags(tag(SECRET_KIND_TAG, PGP_KEY_KIND))
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_exists_exception())
                {
                    KeyStoreError::Exists(name.to_string())
                } else {
                    KeyStoreError::Service {
                        operation: "CreateSecret",
                        secret: name.to_string(),
                        reason: describe_sdk(&e),
                    }
                }
            })?;
        Ok(out.arn().unwrap_or(name).to_string())
    }

    /// The public half of stored key `name`.
    pub async fn public_key(&self, name: &str) -> Result<PublicKeyInfo, KeyStoreError> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| KeyStoreError::Service {
                operation: "GetSecretValue",
                secret: name.to_string(),
                reason: describe_sdk(&e),
            })?;
        let private = out
            .secret_string()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .and_then(|v| v.get(PRIVATE_KEY_FIELD)?.as_str().map(str::to_string))
            .ok_or_else(|| KeyStoreError::NotAKey(name.to_string()))?;
        Ok(public_key_of(&private)?)
    }
}
