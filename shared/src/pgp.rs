//! PGP: streaming decryption and signature verification with rPGP.
//!
//! rPGP's default SEIPDv1 mode (`CheckFirst`) holds the whole message in memory (up
//! to 1 GB). We decrypt in `Streaming` mode instead, writing plaintext to the caller's
//! output (a spool file) as it comes; the integrity (MDC) check and the signature
//! check happen at the end of the stream, and the caller uses the output only when
//! [`decrypt_to`] returns `Ok`. So memory stays flat and unauthenticated plaintext is
//! never parsed.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};

use pgp::composed::{Deserializable, Esk, Message, SignedPublicKey, SignedSecretKey, TheRing};
use pgp::types::{KeyDetails, Password, Seipdv1ReadMode};

use crate::error::{Classify, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum PgpError {
    #[error(
        "the file is not encrypted to the configured key: it is for key(s) {}, the configured key is {}",
        .recipients.join(", "), .ours.join(", ")
    )]
    NotEncryptedToKey {
        recipients: Vec<String>,
        ours: Vec<String>,
    },
    #[error("the passphrase does not unlock the private key")]
    WrongPassphrase,
    #[error("the encrypted data is corrupted or truncated: {0}")]
    Corrupt(String),
    #[error("the file is not signed, but the import requires a signature by the configured signer")]
    MissingSignature,
    #[error("the signature does not verify against the configured signer's key: {reason}")]
    BadSignature { reason: String },
    #[error("the file is not a PGP message")]
    NotPgp,
    #[error("{0}")]
    KeyParse(String),
    #[error("reading or writing the file: {0}")]
    Io(#[from] io::Error),
}

impl Classify for PgpError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Io(e) if e.kind() != io::ErrorKind::InvalidData => ErrorClass::Retryable,
            _ => ErrorClass::Permanent,
        }
    }
}

/// The import's keys: the private key (and passphrase) to decrypt with, and the
/// signer's public key when files must be signed.
pub struct PgpKeyring {
    secret: SignedSecretKey,
    password: Password,
    signer: Option<SignedPublicKey>,
}

impl fmt::Debug for PgpKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key material or the passphrase.
        f.debug_struct("PgpKeyring")
            .field("key_ids", &self.key_ids())
            .field(
                "signer",
                &self.signer.as_ref().map(|s| hex_id(&s.legacy_key_id())),
            )
            .finish()
    }
}

/// What a successful decryption found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    pub bytes: u64,
    /// The key id whose signature verified, when a signer is configured.
    pub signer: Option<String>,
    pub compressed: bool,
}

fn hex_id(id: &impl fmt::Display) -> String {
    id.to_string().to_uppercase()
}

impl PgpKeyring {
    pub fn new(
        private_key_armored: &str,
        passphrase: Option<&str>,
        signer_public_key_armored: Option<&str>,
    ) -> Result<Self, PgpError> {
        let (secret, _) =
            SignedSecretKey::from_string(private_key_armored.trim()).map_err(|_| {
                PgpError::KeyParse(
                    "the private key is not an ASCII-armored OpenPGP secret key".into(),
                )
            })?;
        let signer = match signer_public_key_armored {
            Some(text) => Some(
                SignedPublicKey::from_string(text.trim())
                    .map_err(|_| {
                        PgpError::KeyParse(
                            "the signer's public key is not an ASCII-armored OpenPGP public key"
                                .into(),
                        )
                    })?
                    .0,
            ),
            None => None,
        };
        Ok(Self {
            secret,
            password: passphrase.map_or_else(Password::empty, Password::from),
            signer,
        })
    }

    /// Ids of the private key and its subkeys (16 hex digits, upper case).
    pub fn key_ids(&self) -> Vec<String> {
        std::iter::once(hex_id(&self.secret.primary_key.legacy_key_id()))
            .chain(
                self.secret
                    .secret_subkeys
                    .iter()
                    .map(|k| hex_id(&k.key.legacy_key_id())),
            )
            .collect()
    }

    /// Checks that the passphrase unlocks the key (and its subkeys).
    pub fn unlock_check(&self) -> Result<(), PgpError> {
        let wrong = |_| PgpError::WrongPassphrase;
        self.secret
            .primary_key
            .unlock(&self.password, |_, _| Ok(()))
            .map_err(wrong)?
            .map_err(wrong)?;
        for sub in &self.secret.secret_subkeys {
            sub.key
                .unlock(&self.password, |_, _| Ok(()))
                .map_err(wrong)?
                .map_err(wrong)?;
        }
        Ok(())
    }
}

/// Whether `head` (the first bytes of a file) starts an OpenPGP message: ASCII armor or
/// a binary packet that can begin one.
pub fn looks_like_pgp(head: &[u8]) -> bool {
    let trimmed: &[u8] = {
        let start = head
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(head.len());
        &head[start..]
    };
    if trimmed.starts_with(b"-----BEGIN PGP MESSAGE-----") {
        return true;
    }
    let Some(&first) = head.first() else {
        return false;
    };
    if first & 0x80 == 0 {
        return false;
    }
    let tag = if first & 0x40 != 0 {
        first & 0x3f // new format
    } else {
        (first >> 2) & 0x0f // old format
    };
    // PKESK, SKESK, signature, one-pass signature, compressed, SEIPD.
    matches!(tag, 1 | 2 | 3 | 4 | 8 | 18)
}

/// A reader rPGP accepts (it wants `Debug + Send`), whatever the caller's reader is.
struct Source<R>(R);

impl<R> fmt::Debug for Source<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Source")
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

fn corrupt(e: impl fmt::Display) -> PgpError {
    PgpError::Corrupt(e.to_string())
}

/// Decrypts `input` into `output`, streaming, and verifies integrity (and the signature
/// when the keyring has a signer) at the end. On `Err`, whatever reached `output` must
/// be discarded.
pub fn decrypt_to<R: Read + Send, W: Write>(
    input: R,
    mut output: W,
    keys: &PgpKeyring,
) -> Result<Decrypted, PgpError> {
    let mut source = BufReader::with_capacity(64 * 1024, Source(input));
    if !looks_like_pgp(source.fill_buf()?) {
        return Err(PgpError::NotPgp);
    }
    let (message, _) = Message::from_reader(source).map_err(|e| match e {
        pgp::errors::Error::IO { source, .. } if source.kind() != io::ErrorKind::InvalidData => {
            PgpError::Io(source)
        }
        other => corrupt(other),
    })?;
    let Message::Encrypted { esk, .. } = &message else {
        return Err(PgpError::Corrupt("the message is not encrypted".into()));
    };
    let recipients: Vec<String> = esk
        .iter()
        .filter_map(|e| match e {
            Esk::PublicKeyEncryptedSessionKey(p) => p.id().ok().map(hex_id),
            Esk::SymKeyEncryptedSessionKey(_) => None,
        })
        .collect();
    let ours = keys.key_ids();
    if !recipients.is_empty()
        && !recipients
            .iter()
            .any(|r| ours.contains(r) || r == "0000000000000000")
    {
        return Err(PgpError::NotEncryptedToKey { recipients, ours });
    }
    let ring = TheRing {
        secret_keys: vec![&keys.secret],
        key_passwords: vec![&keys.password],
        decrypt_options: pgp::composed::DecryptionOptions::new()
            .set_seipdv1_read_mode(Seipdv1ReadMode::Streaming),
        ..Default::default()
    };
    let (mut message, _) = message.decrypt_the_ring(ring, true).map_err(|e| match e {
        // rPGP says MissingKey for a wrong passphrase too; the recipients matched, so
        // it is the passphrase.
        pgp::errors::Error::MissingKey => PgpError::WrongPassphrase,
        other if keys.unlock_check().is_err() => {
            let _ = other;
            PgpError::WrongPassphrase
        }
        other => corrupt(other),
    })?;
    let compressed = message.is_compressed();
    while message.is_compressed() {
        message = message.decompress().map_err(corrupt)?;
    }
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = message.read(&mut buf).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::Other => corrupt(e),
            _ => PgpError::Io(e),
        })?;
        if n == 0 {
            break;
        }
        output.write_all(&buf[..n])?;
        bytes += n as u64;
    }
    output.flush()?;
    let signer = match &keys.signer {
        None => None,
        Some(signer) => {
            if !message.is_signed() {
                return Err(PgpError::MissingSignature);
            }
            let mut verified = message
                .verify(signer)
                .map(|_| hex_id(&signer.legacy_key_id()));
            for sub in &signer.public_subkeys {
                if verified.is_ok() {
                    break;
                }
                verified = message
                    .verify(sub)
                    .map(|_| hex_id(&sub.key.legacy_key_id()));
            }
            Some(verified.map_err(|e| PgpError::BadSignature {
                reason: e.to_string(),
            })?)
        }
    };
    Ok(Decrypted {
        bytes,
        signer,
        compressed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::sync::OnceLock;

    const PASS: &str = "test passphrase";

    /// A GnuPG home with an RSA key, a Curve25519 key and a signer key, made once.
    struct Fixture {
        home: tempfile::TempDir,
    }

    fn gpg(home: &std::path::Path, args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
        let mut child = Command::new("gpg")
            .env("GNUPGHOME", home)
            .args([
                "--batch",
                "--quiet",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--trust-model",
                "always",
                "--passphrase",
                PASS,
            ])
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gpg (GnuPG) must be installed for the PGP tests");
        if let Some(data) = input {
            let mut stdin = child.stdin.take().unwrap();
            let data = data.to_vec();
            std::thread::spawn(move || stdin.write_all(&data));
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| {
            let home = tempfile::tempdir().unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700))
                    .unwrap();
            }
            for (email, primary, sub) in [
                ("rsa@x.com", "rsa2048", "rsa2048"),
                ("cv@x.com", "ed25519", "cv25519"),
                ("signer@x.com", "ed25519", "cv25519"),
                ("other@x.com", "rsa2048", "rsa2048"),
            ] {
                gpg(
                    home.path(),
                    &[
                        "--quick-gen-key",
                        &format!("T <{email}>"),
                        primary,
                        "sign",
                        "never",
                    ],
                    None,
                );
                let list = String::from_utf8(gpg(
                    home.path(),
                    &["--with-colons", "--list-keys", email],
                    None,
                ))
                .unwrap();
                let fpr = list
                    .lines()
                    .find(|l| l.starts_with("fpr:"))
                    .unwrap()
                    .split(':')
                    .nth(9)
                    .unwrap()
                    .to_string();
                gpg(
                    home.path(),
                    &["--quick-add-key", &fpr, sub, "encr", "never"],
                    None,
                );
            }
            Fixture { home }
        })
    }

    impl Fixture {
        fn secret(&self, email: &str) -> String {
            String::from_utf8(gpg(
                self.home.path(),
                &["--armor", "--export-secret-keys", email],
                None,
            ))
            .unwrap()
        }
        fn public(&self, email: &str) -> String {
            String::from_utf8(gpg(self.home.path(), &["--armor", "--export", email], None)).unwrap()
        }
        fn encrypt(&self, data: &[u8], to: &str, extra: &[&str]) -> Vec<u8> {
            let mut args = vec!["--recipient", to, "--output", "-"];
            args.extend_from_slice(extra);
            args.push("--encrypt");
            gpg(self.home.path(), &args, Some(data))
        }
        fn keyring(&self, email: &str, signer: Option<&str>) -> PgpKeyring {
            let signer = signer.map(|s| self.public(s));
            PgpKeyring::new(&self.secret(email), Some(PASS), signer.as_deref()).unwrap()
        }
    }

    fn decrypt(file: &[u8], keys: &PgpKeyring) -> Result<(Vec<u8>, Decrypted), PgpError> {
        let mut out = Vec::new();
        let d = decrypt_to(file, &mut out, keys)?;
        Ok((out, d))
    }

    const CSV: &[u8] = b"ID,Email\nu1,a@x.com\nu2,b@x.com\n";

    #[test]
    fn rsa_and_curve25519_armored_binary_and_every_compression() {
        let f = fixture();
        for email in ["rsa@x.com", "cv@x.com"] {
            let keys = f.keyring(email, None);
            for armor in [false, true] {
                for algo in ["none", "zip", "zlib", "bzip2"] {
                    let mut extra = vec!["--compress-algo", algo];
                    if armor {
                        extra.push("--armor");
                    }
                    let file = f.encrypt(CSV, email, &extra);
                    assert!(looks_like_pgp(&file), "{email} {algo} armor={armor}");
                    let (plain, d) = decrypt(&file, &keys)
                        .unwrap_or_else(|e| panic!("{email} {algo} armor={armor}: {e}"));
                    assert_eq!(plain, CSV);
                    assert_eq!(d.bytes, CSV.len() as u64);
                    assert_eq!(d.compressed, algo != "none", "{algo}");
                }
            }
        }
    }

    #[test]
    fn large_files_round_trip_byte_for_byte() {
        let f = fixture();
        let big: Vec<u8> = (0..12_000_000u32).map(|i| (i % 251) as u8).collect();
        let file = f.encrypt(&big, "cv@x.com", &["--compress-algo", "none"]);
        let (plain, _) = decrypt(&file, &f.keyring("cv@x.com", None)).unwrap();
        assert!(plain == big);
    }

    #[test]
    fn signatures() {
        let f = fixture();
        let keys = f.keyring("rsa@x.com", Some("signer@x.com"));
        let signed = f.encrypt(
            CSV,
            "rsa@x.com",
            &["--local-user", "signer@x.com", "--sign"],
        );
        let (plain, d) = decrypt(&signed, &keys).unwrap();
        assert_eq!(plain, CSV);
        assert!(d.signer.is_some());
        let by_other = f.encrypt(CSV, "rsa@x.com", &["--local-user", "other@x.com", "--sign"]);
        assert!(matches!(
            decrypt(&by_other, &keys),
            Err(PgpError::BadSignature { .. })
        ));
        let unsigned = f.encrypt(CSV, "rsa@x.com", &[]);
        assert!(matches!(
            decrypt(&unsigned, &keys),
            Err(PgpError::MissingSignature)
        ));
        // Without a configured signer, a signature is not required (nor checked).
        assert!(decrypt(&by_other, &f.keyring("rsa@x.com", None)).is_ok());
    }

    #[test]
    fn wrong_key_and_wrong_passphrase_are_told_apart() {
        let f = fixture();
        let file = f.encrypt(CSV, "other@x.com", &[]);
        let keys = f.keyring("rsa@x.com", None);
        match decrypt(&file, &keys) {
            Err(PgpError::NotEncryptedToKey { recipients, ours }) => {
                assert!(!recipients.is_empty());
                assert_eq!(ours, keys.key_ids());
                assert!(recipients.iter().all(|r| !ours.contains(r)));
            }
            other => panic!("{other:?}"),
        }
        let wrong = PgpKeyring::new(&f.secret("rsa@x.com"), Some("not it"), None).unwrap();
        let file = f.encrypt(CSV, "rsa@x.com", &[]);
        assert!(matches!(
            decrypt(&file, &wrong),
            Err(PgpError::WrongPassphrase)
        ));
        assert!(matches!(
            wrong.unlock_check(),
            Err(PgpError::WrongPassphrase)
        ));
        assert!(keys.unlock_check().is_ok());
        let e = PgpError::WrongPassphrase.to_string();
        assert!(!e.contains("not it"));
    }

    #[test]
    fn tampered_and_truncated_files_fail() {
        let f = fixture();
        let keys = f.keyring("rsa@x.com", None);
        let data: Vec<u8> = CSV.repeat(2000);
        let file = f.encrypt(&data, "rsa@x.com", &["--compress-algo", "none"]);
        let mut tampered = file.clone();
        let mid = tampered.len() / 2;
        tampered[mid] ^= 0x01;
        assert!(
            matches!(decrypt(&tampered, &keys), Err(PgpError::Corrupt(_))),
            "tampered"
        );
        let truncated = &file[..file.len() - 30];
        assert!(
            matches!(decrypt(truncated, &keys), Err(PgpError::Corrupt(_))),
            "truncated"
        );
    }

    #[test]
    fn sniffing_and_key_errors() {
        let f = fixture();
        let binary = f.encrypt(CSV, "cv@x.com", &[]);
        let armored = f.encrypt(CSV, "cv@x.com", &["--armor"]);
        assert!(looks_like_pgp(&binary));
        assert!(looks_like_pgp(&armored));
        assert!(!looks_like_pgp(CSV));
        assert!(!looks_like_pgp(&[0x1f, 0x8b, 0x08]));
        assert!(!looks_like_pgp(b""));
        assert!(matches!(
            decrypt(CSV, &f.keyring("cv@x.com", None)),
            Err(PgpError::NotPgp)
        ));
        let e = PgpKeyring::new(
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nsecret-material\n",
            None,
            None,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("secret-material"));
        assert!(PgpKeyring::new(&f.secret("cv@x.com"), Some(PASS), Some("nope")).is_err());
        let debug = format!("{:?}", f.keyring("cv@x.com", None));
        assert!(!debug.contains(PASS));
    }
}
