//! PGP: streaming decryption and signature verification with rPGP.
//!
//! rPGP's default SEIPDv1 mode (`CheckFirst`) holds the whole message in memory (up
//! to 1 GB). We decrypt in `Streaming` mode instead, writing plaintext to the caller's
//! output (a spool file) as it comes; the integrity (MDC) check and the signature
//! check happen at the end of the stream, and the caller uses the output only when
//! [`decrypt_to`] returns `Ok`. So memory stays flat and unauthenticated plaintext is
//! never parsed.

use std::fmt;
use std::io::{self, BufReader, Cursor, Read, Write};
use std::sync::{Arc, Mutex};

use pgp::composed::{
    DecryptionOptions, Deserializable, Esk, InnerRingResult, Message, SignedPublicKey,
    SignedSecretKey, TheRing,
};
use pgp::types::{
    Fingerprint, KeyDetails, KeyVersion, Password, S2kParams, SecretParams, Seipdv1ReadMode,
    StringToKey, VerifyingKey,
};

use crate::error::{Classify, ErrorClass};

/// How many leading bytes we read to tell a PGP message from anything else; armor may
/// follow some blank lines.
const SNIFF_LEN: usize = 1024;
/// Read/copy buffer: big enough for throughput, small enough for a Lambda.
const BUF_LEN: usize = 64 * 1024;
/// Compressed packets may nest; more than this is a decompression bomb, not a file.
const MAX_COMPRESSION_NESTING: usize = 4;
/// The PKESK key id of a hidden recipient (`gpg --throw-keyids`).
const WILDCARD_ID: &str = "0000000000000000";
/// GnuPG's private S2K type for secret keys that are not there ("gnu-dummy" stubs
/// from `--export-secret-subkeys`, or keys on a smartcard).
const GNU_STUB_S2K: u8 = 101;

#[derive(Debug, thiserror::Error)]
pub enum PgpError {
    #[error("{}", not_ours(.recipients, .ours))]
    NotEncryptedToKey {
        /// Key ids the file is encrypted to (empty: passphrase-only encryption).
        recipients: Vec<String>,
        ours: Vec<String>,
    },
    #[error("the passphrase does not unlock the private key")]
    WrongPassphrase,
    #[error("the encrypted data is corrupted or truncated: {0}")]
    Corrupt(String),
    #[error(
        "the file is not signed, but the import requires a signature by the configured signer's key"
    )]
    MissingSignature,
    #[error(
        "the file's signature is not a valid signature by the configured signer's key: {reason}"
    )]
    BadSignature { reason: String },
    #[error("the file is not a PGP-encrypted message")]
    NotPgp,
    #[error("{0}")]
    KeyParse(String),
    #[error("reading or writing the file failed: {0}")]
    Io(#[from] io::Error),
}

fn not_ours(recipients: &[String], ours: &[String]) -> String {
    let theirs = if recipients.is_empty() {
        "it is encrypted with a passphrase only, not to any key".to_string()
    } else {
        let ids: Vec<String> = recipients
            .iter()
            .map(|r| {
                if r == WILDCARD_ID {
                    format!("{r} (hidden recipient)")
                } else {
                    r.clone()
                }
            })
            .collect();
        format!("it is for key(s) {}", ids.join(", "))
    };
    format!(
        "the file is not encrypted to the configured key: {theirs}, the configured key is {}",
        ours.join(", ")
    )
}

impl Classify for PgpError {
    fn class(&self) -> ErrorClass {
        // `Io` only ever carries errors of the caller's reader or writer (network,
        // disk); everything rPGP reports about the data itself is `Corrupt` & co.
        match self {
            Self::Io(_) => ErrorClass::Retryable,
            _ => ErrorClass::Permanent,
        }
    }
}

/// The import's keys: the private key to decrypt with (and, during a rotation, the
/// previous ones), each with its passphrase, and the signer's public key when files
/// must be signed.
pub struct PgpKeyring {
    keys: Vec<Key>,
    signer: Option<SignedPublicKey>,
}

/// One private key of the keyring.
struct Key {
    secret: SignedSecretKey,
    password: Password,
    /// "current", or "previous" for a key kept through a rotation.
    role: &'static str,
}

impl fmt::Debug for PgpKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ids only: never key material or the passphrase.
        f.debug_struct("PgpKeyring")
            .field("key_ids", &self.key_ids())
            .field("signer", &self.signer.as_ref().map(signer_ids))
            .finish()
    }
}

/// What a successful decryption found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// Plaintext bytes written to the output.
    pub bytes: u64,
    /// The id of the (sub)key whose signature verified, when a signer is configured.
    pub signer: Option<String>,
    pub compressed: bool,
    /// Which of the import's keys decrypted it: "current key <id>" or "previous key
    /// <id>" (the primary key's id), so an operator sees when a rotated-out key is no
    /// longer used.
    pub key: String,
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn id_of(key: &impl KeyDetails) -> String {
    hex_upper(key.legacy_key_id().as_ref())
}

/// The legacy key id inside a fingerprint (v4: the last 8 bytes, v5/v6: the first 8).
fn id_from_fingerprint(fp: &Fingerprint) -> String {
    let bytes = fp.as_bytes();
    match fp.version() {
        Some(KeyVersion::V4) if bytes.len() >= 8 => hex_upper(&bytes[bytes.len() - 8..]),
        _ => hex_upper(&bytes[..bytes.len().min(8)]),
    }
}

fn signer_ids(signer: &SignedPublicKey) -> Vec<String> {
    std::iter::once(id_of(&signer.primary_key))
        .chain(signer.public_subkeys.iter().map(|s| id_of(&s.key)))
        .collect()
}

/// Whether secret params are a GnuPG stub, i.e. the secret is not in this key.
fn is_stub(params: &SecretParams) -> bool {
    match params {
        SecretParams::Plain(_) => false,
        SecretParams::Encrypted(enc) => match enc.string_to_key_params() {
            S2kParams::Cfb { s2k, .. } | S2kParams::MalleableCfb { s2k, .. } => {
                matches!(s2k, StringToKey::Private { typ, .. } if *typ == GNU_STUB_S2K)
            }
            _ => false,
        },
    }
}

/// Parses the signer's ASCII-armored public key, as processing does; config validation
/// calls it too, so a key that would fail every file is refused when the config is put.
pub fn parse_signer_public_key(text: &str) -> Result<SignedPublicKey, PgpError> {
    // rPGP's parse errors can quote the input; ours never do.
    SignedPublicKey::from_string(text.trim())
        .map(|(key, _)| key)
        .map_err(|_| {
            PgpError::KeyParse(
                "the signer's public key is not an ASCII-armored OpenPGP public key".into(),
            )
        })
}

/// Parses an ASCII-armored secret key and refuses one that holds no secret.
fn parse_secret_key(armored: &str) -> Result<SignedSecretKey, PgpError> {
    // rPGP's parse errors can quote the input; ours never do.
    let (secret, _) = SignedSecretKey::from_string(armored.trim()).map_err(|_| {
        PgpError::KeyParse("the private key is not an ASCII-armored OpenPGP secret key".into())
    })?;
    let all_stubs = is_stub(secret.primary_key.secret_params())
        && secret
            .secret_subkeys
            .iter()
            .all(|s| is_stub(s.key.secret_params()));
    if all_stubs {
        return Err(PgpError::KeyParse(
            "the private key holds no secret key material (it is a GnuPG stub; export it \
             with `gpg --armor --export-secret-keys` from the machine that has the key)"
                .into(),
        ));
    }
    Ok(secret)
}

impl Key {
    fn new(armored: &str, passphrase: Option<&str>, role: &'static str) -> Result<Self, PgpError> {
        Ok(Self {
            secret: parse_secret_key(armored)?,
            password: passphrase.map_or_else(Password::empty, Password::from),
            role,
        })
    }

    fn ids(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(id_of(&self.secret.primary_key))
            .chain(self.secret.secret_subkeys.iter().map(|k| id_of(&k.key)))
    }

    fn describe(&self) -> String {
        format!("{} key {}", self.role, id_of(&self.secret.primary_key))
    }

    fn unlock_check(&self) -> Result<(), PgpError> {
        let wrong = |_| PgpError::WrongPassphrase;
        let primary = &self.secret.primary_key;
        if !is_stub(primary.secret_params()) {
            primary
                .unlock(&self.password, |_, _| Ok(()))
                .map_err(wrong)?
                .map_err(wrong)?;
        }
        for sub in &self.secret.secret_subkeys {
            if !is_stub(sub.key.secret_params()) {
                sub.key
                    .unlock(&self.password, |_, _| Ok(()))
                    .map_err(wrong)?
                    .map_err(wrong)?;
            }
        }
        Ok(())
    }

    /// Whether the secret for key id `id` is actually present (not a stub).
    fn holds_secret_for(&self, id: &str) -> bool {
        let primary = &self.secret.primary_key;
        (id_of(primary) == id && !is_stub(primary.secret_params()))
            || self
                .secret
                .secret_subkeys
                .iter()
                .any(|s| id_of(&s.key) == id && !is_stub(s.key.secret_params()))
    }
}

impl PgpKeyring {
    pub fn new(
        private_key_armored: &str,
        passphrase: Option<&str>,
        signer_public_key_armored: Option<&str>,
    ) -> Result<Self, PgpError> {
        let key = Key::new(private_key_armored, passphrase, "current")?;
        let signer = signer_public_key_armored
            .map(parse_signer_public_key)
            .transpose()?;
        Ok(Self {
            keys: vec![key],
            signer,
        })
    }

    /// Adds a previous key, kept through a rotation: files encrypted to it still
    /// decrypt, and say so.
    pub fn add_previous(
        &mut self,
        private_key_armored: &str,
        passphrase: Option<&str>,
    ) -> Result<(), PgpError> {
        self.keys
            .push(Key::new(private_key_armored, passphrase, "previous")?);
        Ok(())
    }

    /// Ids of every private key and its subkeys (16 hex digits, upper case).
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().flat_map(Key::ids).collect()
    }

    /// Checks that each passphrase unlocks its key and subkeys (stubs, which hold no
    /// secret, are skipped).
    pub fn unlock_check(&self) -> Result<(), PgpError> {
        self.keys.iter().try_for_each(Key::unlock_check)
    }
}

/// Whether `head` (the first bytes of a file) starts an OpenPGP message: ASCII armor or
/// a binary packet that can begin one.
pub fn looks_like_pgp(head: &[u8]) -> bool {
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    if head[start..].starts_with(b"-----BEGIN PGP MESSAGE-----") {
        return true;
    }
    packet_header(head).is_some_and(|(tag, len, body)| plausible_first_packet(tag, len, body))
}

/// The first packet's tag, body length (None: partial or indeterminate) and the start
/// of its body (RFC 9580 section 4.2), or None when the bytes are no packet header.
fn packet_header(head: &[u8]) -> Option<(u8, Option<u64>, &[u8])> {
    let first = *head.first()?;
    // Bit 7 is always set in a packet header; ASCII text and gzip never have it.
    if first & 0x80 == 0 {
        return None;
    }
    let be = |bytes: &[u8]| bytes.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
    if first & 0x40 != 0 {
        let tag = first & 0x3f;
        let l0 = *head.get(1)?;
        let (len, header) = match l0 {
            0..=191 => (Some(u64::from(l0)), 2),
            192..=223 => (
                Some((u64::from(l0 - 192) << 8) + u64::from(*head.get(2)?) + 192),
                3,
            ),
            255 => (Some(be(head.get(2..6)?)), 6),
            // Partial lengths are for data packets only.
            _ if matches!(tag, 8 | 9 | 11 | 18 | 20) => (None, 2),
            _ => return None,
        };
        Some((tag, len, head.get(header..)?))
    } else {
        let tag = (first >> 2) & 0x0f;
        let (len, header) = match first & 3 {
            0 => (Some(u64::from(*head.get(1)?)), 2),
            1 => (Some(be(head.get(1..3)?)), 3),
            2 => (Some(be(head.get(1..5)?)), 5),
            _ => (None, 1),
        };
        Some((tag, len, head.get(header..)?))
    }
}

/// Whether a packet can open an encrypted message: its version byte (and for session
/// key packets, a sane length and algorithm) must be one the standard defines. Text
/// that happens to start with a byte like 0xC3 (`É`, `Ä`, `é`...) fails here, since its
/// next bytes are never the control bytes that PGP versions are.
fn plausible_first_packet(tag: u8, len: Option<u64>, body: &[u8]) -> bool {
    let Some(&version) = body.first() else {
        return false;
    };
    let sized = |min: u64, max: u64| len.is_some_and(|l| (min..=max).contains(&l));
    match tag {
        // Public-key encrypted session key: v3 (key id, algorithm) or v6.
        1 => match version {
            3 => {
                sized(12, 4096)
                    && body
                        .get(9)
                        .is_some_and(|a| matches!(a, 1 | 2 | 16 | 18 | 22 | 25 | 26))
            }
            6 => sized(4, 4096),
            _ => false,
        },
        // Symmetric-key encrypted session key: v4 (cipher, S2K type), v5 or v6.
        3 => match version {
            4 => {
                sized(4, 512)
                    && body.get(1).is_some_and(|c| (1..=13).contains(c))
                    && body.get(2).is_some_and(|s| matches!(s, 0 | 1 | 3 | 4))
            }
            5 | 6 => sized(4, 512),
            _ => false,
        },
        2 => (3..=6).contains(&version) && len.is_some_and(|l| l >= 4),
        4 => matches!(version, 3 | 6) && len.is_some_and(|l| l >= 13),
        8 => version <= 3,
        18 => matches!(version, 1 | 2),
        _ => false,
    }
}

/// Keeps the first error of the caller's reader, so that it surfaces as a retryable
/// [`PgpError::Io`] rather than whatever rPGP wraps it in.
#[derive(Clone, Default)]
struct InputFailure(Arc<Mutex<Option<io::Error>>>);

impl InputFailure {
    fn record(&self, e: io::Error) -> io::Error {
        let stand_in = io::Error::new(e.kind(), "reading the input failed");
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(e);
        }
        stand_in
    }

    fn take(&self) -> Option<io::Error> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }

    /// An rPGP failure as our error: the input's own I/O error if there was one.
    fn or_corrupt(&self, e: impl fmt::Display) -> PgpError {
        match self.take() {
            Some(io) => PgpError::Io(io),
            None => PgpError::Corrupt(e.to_string()),
        }
    }
}

/// The caller's reader as rPGP wants it (`Debug + Send`), recording its errors.
struct Source<R> {
    inner: R,
    failure: InputFailure,
}

impl<R> fmt::Debug for Source<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Source")
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.failure.record(e)),
                Ok(n) => return Ok(n),
            }
        }
    }
}

/// The key ids a message's PKESK packets name (hidden recipients as all zeros).
fn recipients(esk: &[Esk]) -> Vec<String> {
    esk.iter()
        .filter_map(|e| match e {
            Esk::PublicKeyEncryptedSessionKey(p) => match (p.id(), p.fingerprint()) {
                (Ok(id), _) => Some(hex_upper(id.as_ref())),
                (_, Ok(Some(fp))) => Some(id_from_fingerprint(fp)),
                (_, Ok(None)) => Some(WILDCARD_ID.to_string()),
                _ => None,
            },
            Esk::SymKeyEncryptedSessionKey(_) => None,
        })
        .collect()
}

/// The session key packets of an encrypted message, also when a signature wraps the
/// encrypted data (rare, but valid).
fn esk_of<'m>(message: &'m Message<'_>) -> Option<&'m [Esk]> {
    match message {
        Message::Encrypted { esk, .. } => Some(esk),
        Message::Signed { reader, .. } => esk_of(reader.get_ref()),
        _ => None,
    }
}

fn is_compressed(message: &Message<'_>) -> bool {
    match message {
        Message::Compressed { .. } => true,
        Message::Signed { reader, .. } => is_compressed(reader.get_ref()),
        _ => false,
    }
}

/// Decrypts `input` into `output`, streaming, and verifies integrity (and the signature
/// when the keyring has a signer) at the very end. On `Err`, whatever reached `output`
/// must be discarded.
///
/// `R: Send` because rPGP boxes its source as `dyn BufRead + Send`.
pub fn decrypt_to<R: Read + Send, W: Write>(
    mut input: R,
    mut output: W,
    keys: &PgpKeyring,
) -> Result<Decrypted, PgpError> {
    // Sniff a fixed amount: a short first read (S3 streams) must not look like "not PGP".
    let mut head = Vec::with_capacity(SNIFF_LEN);
    (&mut input).take(SNIFF_LEN as u64).read_to_end(&mut head)?;
    if !looks_like_pgp(&head) {
        return Err(PgpError::NotPgp);
    }
    let failure = InputFailure::default();
    let source = BufReader::with_capacity(
        BUF_LEN,
        Source {
            inner: Cursor::new(head).chain(input),
            failure: failure.clone(),
        },
    );
    let (message, _) = Message::from_reader(source).map_err(|e| failure.or_corrupt(e))?;
    let Some(esk) = esk_of(&message) else {
        // Signed-only or plain literal data: PGP, but nothing to decrypt.
        return Err(PgpError::NotPgp);
    };
    let recipients = recipients(esk);
    let ours = keys.key_ids();
    let maybe_ours = recipients
        .iter()
        .any(|r| r == WILDCARD_ID || ours.contains(r));
    if !maybe_ours {
        return Err(PgpError::NotEncryptedToKey { recipients, ours });
    }

    let ring = TheRing {
        secret_keys: keys.keys.iter().map(|k| &k.secret).collect(),
        key_passwords: keys.keys.iter().map(|k| &k.password).collect(),
        decrypt_options: DecryptionOptions::new().set_seipdv1_read_mode(Seipdv1ReadMode::Streaming),
        ..Default::default()
    };
    let (mut message, found) = match message.decrypt_the_ring(ring, true) {
        Ok(decrypted) => decrypted,
        Err(e) => return Err(decrypt_failure(e, &failure, keys, recipients, ours)),
    };
    // The first of our keys (current first) the file names; rPGP's ring result only
    // says what the last session-key packet matched, so it decides only for hidden
    // recipients.
    let key = keys
        .keys
        .iter()
        .find(|k| k.ids().any(|id| recipients.contains(&id)))
        .or_else(|| {
            found
                .secret_keys
                .iter()
                .position(|r| *r == InnerRingResult::Ok)
                .and_then(|i| keys.keys.get(i))
        })
        .map_or_else(|| "a key of the import".to_string(), Key::describe);

    let compressed = is_compressed(&message);
    for _ in 0..MAX_COMPRESSION_NESTING {
        if !is_compressed(&message) {
            break;
        }
        message = message.decompress().map_err(|e| failure.or_corrupt(e))?;
    }
    if is_compressed(&message) {
        return Err(PgpError::Corrupt(
            "too many nested compression layers".into(),
        ));
    }
    if message.is_encrypted() {
        return Err(PgpError::Corrupt(
            "the decrypted data is itself encrypted, which is not supported".into(),
        ));
    }

    // rPGP checks the MDC and looks for trailing packets when the read returns 0, so
    // reading to 0 is what makes the data trustworthy.
    let mut bytes = 0u64;
    let mut buf = vec![0u8; BUF_LEN];
    loop {
        let n = match message.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failure.or_corrupt(e)),
        };
        if n == 0 {
            break;
        }
        output.write_all(&buf[..n])?;
        bytes += n as u64;
    }
    output.flush()?;

    let signer = match &keys.signer {
        None => None,
        Some(signer) => Some(check_signature(&message, signer)?),
    };
    Ok(Decrypted {
        bytes,
        signer,
        compressed,
        key,
    })
}

/// Why no session key came out. rPGP says `MissingKey` both for a foreign key and for
/// a wrong passphrase; the recipients matched, so we look closer.
fn decrypt_failure(
    e: pgp::errors::Error,
    failure: &InputFailure,
    keys: &PgpKeyring,
    recipients: Vec<String>,
    ours: Vec<String>,
) -> PgpError {
    if let Some(io) = failure.take() {
        return PgpError::Io(io);
    }
    if !matches!(e, pgp::errors::Error::MissingKey) {
        return PgpError::Corrupt(e.to_string());
    }
    let named: Vec<&String> = recipients.iter().filter(|r| ours.contains(r)).collect();
    // A key the file names (or any, for hidden recipients) that its passphrase does not
    // unlock.
    let locked = keys.keys.iter().any(|k| {
        (named.is_empty() || k.ids().any(|id| named.contains(&&id))) && k.unlock_check().is_err()
    });
    if locked {
        return PgpError::WrongPassphrase;
    }
    if named.is_empty() {
        // Only hidden recipients, and none was us.
        return PgpError::NotEncryptedToKey { recipients, ours };
    }
    if named
        .iter()
        .all(|id| !keys.keys.iter().any(|k| k.holds_secret_for(id)))
    {
        let ids: Vec<&str> = named.iter().map(|s| s.as_str()).collect();
        return PgpError::KeyParse(format!(
            "the file is encrypted to key {}, but the configured private key holds only a \
             GnuPG stub for it, not the secret; export the full secret key",
            ids.join(", ")
        ));
    }
    PgpError::Corrupt("the session key could not be decrypted with the configured key".into())
}

/// Finds a signature in the (fully read) message that verifies with the signer's
/// primary key or one of its subkeys; returns that key's id.
fn check_signature(message: &Message<'_>, signer: &SignedPublicKey) -> Result<String, PgpError> {
    let Message::Signed { reader, .. } = message else {
        return Err(PgpError::MissingSignature);
    };
    let candidates: Vec<(String, &dyn VerifyingKey)> =
        std::iter::once((id_of(&signer.primary_key), signer as &dyn VerifyingKey))
            .chain(
                signer
                    .public_subkeys
                    .iter()
                    .map(|s| (id_of(&s.key), s as &dyn VerifyingKey)),
            )
            .collect();
    let mut issuers: Vec<String> = Vec::new();
    let mut failed: Option<String> = None;
    for index in 0..reader.num_signatures() {
        let mut named = Vec::new();
        if let Some(sig) = reader.signature(index) {
            named.extend(sig.issuer_key_id().iter().map(|id| hex_upper(id.as_ref())));
            named.extend(
                sig.issuer_fingerprint()
                    .iter()
                    .map(|fp| id_from_fingerprint(fp)),
            );
        }
        for (id, key) in &candidates {
            match message.verify_nested_explicit(index, *key) {
                Ok(_) => return Ok(id.clone()),
                Err(e) if named.contains(id) => {
                    failed.get_or_insert_with(|| {
                        format!("the signature by key {id} is invalid: {e}")
                    });
                }
                Err(_) => {}
            }
        }
        for id in named {
            if !issuers.contains(&id) {
                issuers.push(id);
            }
        }
    }
    let expected = candidates
        .iter()
        .map(|(id, _)| id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let reason = match failed {
        Some(reason) => reason,
        None if !issuers.is_empty() => format!(
            "it is signed by key(s) {}, not by the configured signer's key(s) {expected}",
            issuers.join(", ")
        ),
        None => format!("no signature by the configured signer's key(s) {expected}"),
    };
    Err(PgpError::BadSignature { reason })
}

#[cfg(test)]
mod tests;
