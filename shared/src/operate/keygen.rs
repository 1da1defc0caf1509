//! PGP key pairs for imports, made with rPGP: the operator keeps the private key in
//! Secrets Manager and hands the public key to whoever encrypts the files.

use pgp::composed::{
    ArmorOptions, Deserializable, EncryptionCaps, KeyType, SecretKeyParamsBuilder, SignedSecretKey,
    SubkeyParamsBuilder,
};
use pgp::crypto::{ecc_curve::ECCCurve, hash::HashAlgorithm, sym::SymmetricKeyAlgorithm};
use pgp::types::{CompressionAlgorithm, KeyDetails};

use crate::codec::pgp::PgpError;

/// The algorithms `s3imports keys generate` offers: what GnuPG makes by default
/// (Ed25519 with a Curve25519 encryption subkey) and RSA 4096 for senders whose tools
/// predate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    #[default]
    Cv25519,
    Rsa4096,
}

impl KeyAlgorithm {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "cv25519" => Some(Self::Cv25519),
            "rsa4096" => Some(Self::Rsa4096),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cv25519 => "cv25519",
            Self::Rsa4096 => "rsa4096",
        }
    }

    /// (primary key, encryption subkey)
    fn key_types(self) -> (KeyType, KeyType) {
        match self {
            Self::Cv25519 => (
                KeyType::Ed25519Legacy,
                KeyType::ECDH(ECCCurve::Curve25519Legacy),
            ),
            Self::Rsa4096 => (KeyType::Rsa(4096), KeyType::Rsa(4096)),
        }
    }
}

/// A new key pair. `Debug` shows the public half only.
pub struct GeneratedKey {
    /// ASCII-armored secret key (locked with the passphrase when one was given).
    pub private_armored: String,
    pub public: PublicKeyInfo,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// What may be shown of a key: the armored public key, its fingerprint and key ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    pub armored: String,
    /// The primary key's fingerprint (40 hex digits for a v4 key, upper case).
    pub fingerprint: String,
    /// The primary key's id and its subkeys' (16 hex digits each), as the files' and
    /// the ledger's messages name them.
    pub key_ids: Vec<String>,
}

fn failed(what: &str) -> impl Fn(pgp::errors::Error) -> PgpError + '_ {
    move |e| PgpError::KeyParse(format!("{what}: {e}"))
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Makes a key pair for `user_id` (e.g. `Acme imports <imports@acme.example>`): a
/// signing primary key and an encryption subkey, both locked with `passphrase` when
/// given.
pub fn generate(
    user_id: &str,
    algorithm: KeyAlgorithm,
    passphrase: Option<&str>,
) -> Result<GeneratedKey, PgpError> {
    let (primary, sub) = algorithm.key_types();
    let subkey = SubkeyParamsBuilder::default()
        .key_type(sub)
        .can_encrypt(EncryptionCaps::All)
        .passphrase(passphrase.map(str::to_string))
        .build()
        .map_err(|e| PgpError::KeyParse(format!("the subkey's parameters: {e}")))?;
    let params = SecretKeyParamsBuilder::default()
        .key_type(primary)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(user_id.to_string())
        .passphrase(passphrase.map(str::to_string))
        .preferred_symmetric_algorithms(
            [
                SymmetricKeyAlgorithm::AES256,
                SymmetricKeyAlgorithm::AES192,
                SymmetricKeyAlgorithm::AES128,
            ]
            .into_iter()
            .collect(),
        )
        .preferred_hash_algorithms(
            [
                HashAlgorithm::Sha256,
                HashAlgorithm::Sha384,
                HashAlgorithm::Sha512,
            ]
            .into_iter()
            .collect(),
        )
        .preferred_compression_algorithms(
            [CompressionAlgorithm::ZLIB, CompressionAlgorithm::ZIP]
                .into_iter()
                .collect(),
        )
        .subkey(subkey)
        .build()
        .map_err(|e| PgpError::KeyParse(format!("the key's parameters: {e}")))?;
    let secret = params
        .generate(rand08::rngs::OsRng)
        .map_err(failed("generating the key"))?;
    let private_armored = secret
        .to_armored_string(ArmorOptions::default())
        .map_err(failed("armoring the private key"))?;
    Ok(GeneratedKey {
        public: public_info(&secret)?,
        private_armored,
    })
}

/// A passphrase for a generated key: 32 random bytes, base64 (URL-safe, no padding).
pub fn random_passphrase() -> String {
    use base64::Engine as _;
    use rand08::RngCore as _;
    let mut bytes = [0u8; 32];
    rand08::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `name` can name a key: letters, digits, `-`, `_` and `.`, 1 to 64.
pub fn valid_key_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The public half of an ASCII-armored secret key (locked or not: the public parts
/// need no passphrase).
pub fn public_key_of(private_armored: &str) -> Result<PublicKeyInfo, PgpError> {
    let (secret, _) = SignedSecretKey::from_string(private_armored.trim()).map_err(|_| {
        PgpError::KeyParse("the private key is not an ASCII-armored OpenPGP secret key".into())
    })?;
    public_info(&secret)
}

fn public_info(secret: &SignedSecretKey) -> Result<PublicKeyInfo, PgpError> {
    let public = secret.to_public_key();
    let armored = public
        .to_armored_string(ArmorOptions::default())
        .map_err(failed("armoring the public key"))?;
    let key_ids = std::iter::once(hex_upper(public.primary_key.legacy_key_id().as_ref()))
        .chain(
            public
                .public_subkeys
                .iter()
                .map(|s| hex_upper(s.key.legacy_key_id().as_ref())),
        )
        .collect();
    Ok(PublicKeyInfo {
        armored,
        fingerprint: hex_upper(public.primary_key.fingerprint().as_bytes()),
        key_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::pgp::PgpKeyring;

    #[test]
    fn a_generated_key_loads_as_an_import_keyring_and_its_public_half_is_stable() {
        let key = generate(
            "Acme <imports@acme.example>",
            KeyAlgorithm::Cv25519,
            Some("pw"),
        )
        .expect("generate");
        assert!(
            key.private_armored
                .starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----")
        );
        assert!(
            key.public
                .armored
                .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
        );
        assert!(!key.public.armored.contains("PRIVATE"));
        assert_eq!(key.public.fingerprint.len(), 40);
        assert_eq!(key.public.key_ids.len(), 2);
        let ring = PgpKeyring::new(&key.private_armored, Some("pw"), None).expect("keyring");
        ring.unlock_check().expect("the passphrase unlocks it");
        assert_eq!(ring.key_ids(), key.public.key_ids);
        let wrong = PgpKeyring::new(&key.private_armored, Some("not it"), None).expect("keyring");
        assert!(wrong.unlock_check().is_err());
        assert_eq!(
            public_key_of(&key.private_armored).expect("public"),
            key.public
        );
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }

    #[test]
    fn algorithms_parse_by_their_cli_names() {
        for a in [KeyAlgorithm::Cv25519, KeyAlgorithm::Rsa4096] {
            assert_eq!(KeyAlgorithm::parse(a.as_str()), Some(a));
        }
        assert_eq!(KeyAlgorithm::parse("dsa"), None);
    }
}
