use super::*;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const PASS: &str = "test passphrase";
const CSV: &[u8] = b"ID,Email\nu1,a@x.com\nu2,b@x.com\n";

/// A throwaway GNUPGHOME. Dropping it stops its gpg-agent (gpg starts one per home,
/// and it would outlive the test run) and deletes the directory.
struct GpgHome(tempfile::TempDir);

impl GpgHome {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        Self(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.path())
            .args(["--kill", "gpg-agent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The test keys as armored exports, generated once (key generation is the slow
/// part) in a home that is gone afterwards.
struct Keys {
    secret: HashMap<&'static str, String>,
    public: HashMap<&'static str, String>,
    /// `cv@x.com` exported with `--export-secret-subkeys`: a stub primary key.
    cv_subkeys_only: String,
}

/// One test's GnuPG home, holding all the test keys.
struct Fixture {
    home: GpgHome,
    secret: &'static HashMap<&'static str, String>,
    public: &'static HashMap<&'static str, String>,
    cv_subkeys_only: &'static str,
}

fn gpg(home: &Path, args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("gpg")
        .env("GNUPGHOME", home)
        .args([
            "--batch",
            "--quiet",
            "--yes",
            "--no-tty",
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
    // Feed stdin from a thread: gpg writes while it reads, and pipes are small.
    let feeder = input.map(|data| {
        let mut stdin = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || stdin.write_all(&data))
    });
    let out = child.wait_with_output().unwrap();
    if let Some(feeder) = feeder {
        feeder.join().unwrap().unwrap();
    }
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn fingerprint(home: &Path, email: &str) -> String {
    let list =
        String::from_utf8(gpg(home, &["--with-colons", "--list-keys", email], None)).unwrap();
    list.lines()
        .find(|l| l.starts_with("fpr:"))
        .unwrap()
        .split(':')
        .nth(9)
        .unwrap()
        .to_string()
}

/// (email, primary algorithm, primary usage, [(subkey algorithm, usage)])
type KeySpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const KEYS: &[KeySpec] = &[
    ("rsa@x.com", "rsa2048", "default", &[("rsa2048", "encr")]),
    ("cv@x.com", "ed25519", "sign", &[("cv25519", "encr")]),
    // Signs with a subkey, as many real keys do.
    ("signer@x.com", "ed25519", "cert", &[("ed25519", "sign")]),
    ("other@x.com", "ed25519", "sign", &[("cv25519", "encr")]),
];

fn keys() -> &'static Keys {
    static KEYS_ONCE: OnceLock<Keys> = OnceLock::new();
    KEYS_ONCE.get_or_init(|| {
        let home = GpgHome::new();
        let export = |args: &[&str]| String::from_utf8(gpg(home.path(), args, None)).unwrap();
        let (mut secret, mut public) = (HashMap::new(), HashMap::new());
        for (email, algo, usage, subkeys) in KEYS {
            let uid = format!("Test <{email}>");
            gpg(
                home.path(),
                &["--quick-gen-key", &uid, algo, usage, "never"],
                None,
            );
            let fpr = fingerprint(home.path(), email);
            for (algo, usage) in *subkeys {
                gpg(
                    home.path(),
                    &["--quick-add-key", &fpr, algo, usage, "never"],
                    None,
                );
            }
            secret.insert(*email, export(&["--armor", "--export-secret-keys", email]));
            public.insert(*email, export(&["--armor", "--export", email]));
        }
        let cv_subkeys_only = export(&["--armor", "--export-secret-subkeys", "cv@x.com"]);
        Keys {
            secret,
            public,
            cv_subkeys_only,
        }
    })
}

fn fixture() -> Fixture {
    let keys = keys();
    let home = GpgHome::new();
    let all: Vec<&str> = keys.secret.values().map(String::as_str).collect();
    gpg(home.path(), &["--import"], Some(all.join("\n").as_bytes()));
    Fixture {
        home,
        secret: &keys.secret,
        public: &keys.public,
        cv_subkeys_only: &keys.cv_subkeys_only,
    }
}

impl Fixture {
    fn run(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        gpg(self.home.path(), args, Some(input))
    }

    fn encrypt(&self, data: &[u8], to: &str, extra: &[&str]) -> Vec<u8> {
        let mut args = vec!["--recipient", to, "--output", "-"];
        args.extend_from_slice(extra);
        args.push("--encrypt");
        self.run(&args, data)
    }

    fn keyring(&self, email: &str, signer: Option<&str>) -> PgpKeyring {
        let signer = signer.map(|s| self.public[s].as_str());
        PgpKeyring::new(&self.secret[email], Some(PASS), signer).unwrap()
    }
}

fn decrypt(file: &[u8], keys: &PgpKeyring) -> Result<(Vec<u8>, Decrypted), PgpError> {
    let mut out = Vec::new();
    let d = decrypt_to(file, &mut out, keys)?;
    Ok((out, d))
}

/// Data that does not compress to nothing (an LCG), so sizes are realistic.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

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
                let what = format!("{email} {algo} armor={armor}");
                assert!(looks_like_pgp(&file), "{what}");
                let (plain, d) = decrypt(&file, &keys).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(plain, CSV, "{what}");
                assert_eq!(d.bytes, CSV.len() as u64, "{what}");
                assert_eq!(d.compressed, algo != "none", "{what}");
                assert_eq!(d.signer, None, "{what}");
            }
        }
    }
}

#[test]
fn armor_after_blank_lines_decrypts() {
    let f = fixture();
    let mut file = b"\r\n  \n".to_vec();
    file.extend(f.encrypt(CSV, "cv@x.com", &["--armor"]));
    let (plain, _) = decrypt(&file, &f.keyring("cv@x.com", None)).unwrap();
    assert_eq!(plain, CSV);
}

/// Records how much ciphertext had been read when the first plaintext was written.
struct Probe<'a> {
    data: &'a [u8],
    pos: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Read for Probe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.data.read(buf)?;
        self.pos.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
        Ok(n)
    }
}

#[test]
fn large_files_stream_and_round_trip_byte_for_byte() {
    let f = fixture();
    let big = noise(12 * 1024 * 1024);
    let keys = f.keyring("rsa@x.com", None);
    for algo in ["none", "zlib"] {
        let file = f.encrypt(&big, "rsa@x.com", &["--compress-algo", algo]);
        let pos = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let probe = Probe {
            data: &file,
            pos: pos.clone(),
        };
        // The plaintext must start flowing long before the ciphertext is all read:
        // that is what streaming (not CheckFirst) means.
        let mut read_at_first_write = None;
        let mut out = Vec::with_capacity(big.len());
        struct Sink<'a, F: FnMut()>(&'a mut Vec<u8>, F);
        impl<F: FnMut()> Write for Sink<'_, F> {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                (self.1)();
                self.0.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink(&mut out, || {
            read_at_first_write.get_or_insert(pos.load(std::sync::atomic::Ordering::SeqCst));
        });
        let d = decrypt_to(probe, sink, &keys).unwrap();
        assert_eq!(d.bytes, big.len() as u64, "{algo}");
        assert!(out == big, "{algo}: plaintext differs");
        let first = read_at_first_write.unwrap();
        assert!(
            first < file.len() / 4,
            "{algo}: {first} of {} read before output",
            file.len()
        );
    }
}

#[test]
fn signatures() {
    let f = fixture();
    let keys = f.keyring("rsa@x.com", Some("signer@x.com"));
    let signer_ids = f.keyring("signer@x.com", None).key_ids();
    for extra in [&["--compress-algo", "none"][..], &["--armor"][..]] {
        let mut args = vec!["--local-user", "signer@x.com", "--sign"];
        args.extend_from_slice(extra);
        let signed = f.encrypt(CSV, "rsa@x.com", &args);
        let (plain, d) = decrypt(&signed, &keys).unwrap();
        assert_eq!(plain, CSV);
        // gpg signs with the signing subkey, not the certify-only primary.
        assert_eq!(d.signer.as_deref(), Some(signer_ids[1].as_str()));
    }

    let by_other = f.encrypt(CSV, "rsa@x.com", &["--local-user", "other@x.com", "--sign"]);
    match decrypt(&by_other, &keys) {
        Err(PgpError::BadSignature { reason }) => {
            let other_id = &f.keyring("other@x.com", None).key_ids()[0];
            assert!(reason.contains(other_id.as_str()), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let unsigned = f.encrypt(CSV, "rsa@x.com", &[]);
    assert!(matches!(
        decrypt(&unsigned, &keys),
        Err(PgpError::MissingSignature)
    ));
    // Without a configured signer, a signature is neither required nor checked.
    let (plain, d) = decrypt(&by_other, &f.keyring("rsa@x.com", None)).unwrap();
    assert_eq!(plain, CSV);
    assert_eq!(d.signer, None);
}

#[test]
fn wrong_key_and_wrong_passphrase_are_told_apart() {
    let f = fixture();
    let keys = f.keyring("rsa@x.com", None);
    let other_ids = f.keyring("other@x.com", None).key_ids();
    let file = f.encrypt(CSV, "other@x.com", &[]);
    match decrypt(&file, &keys) {
        Err(e @ PgpError::NotEncryptedToKey { .. }) => {
            let text = e.to_string();
            let PgpError::NotEncryptedToKey { recipients, ours } = e else {
                unreachable!()
            };
            assert_eq!(recipients, vec![other_ids[1].clone()]);
            assert_eq!(ours, keys.key_ids());
            assert!(
                text.contains(&other_ids[1]) && text.contains(&ours[0]),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }

    let wrong = PgpKeyring::new(&f.secret["rsa@x.com"], Some("not it"), None).unwrap();
    let none = PgpKeyring::new(&f.secret["rsa@x.com"], None, None).unwrap();
    let file = f.encrypt(CSV, "rsa@x.com", &[]);
    for k in [&wrong, &none] {
        assert!(matches!(decrypt(&file, k), Err(PgpError::WrongPassphrase)));
        assert!(matches!(k.unlock_check(), Err(PgpError::WrongPassphrase)));
    }
    keys.unlock_check().unwrap();

    // Passphrase-only encryption has no key to match.
    let sym = f.run(&["--output", "-", "--symmetric"], CSV);
    match decrypt(&sym, &keys) {
        Err(e @ PgpError::NotEncryptedToKey { .. }) => {
            assert!(e.to_string().contains("passphrase only"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn subkey_only_export_decrypts() {
    let f = fixture();
    let keys = PgpKeyring::new(f.cv_subkeys_only, Some(PASS), None).unwrap();
    keys.unlock_check().unwrap();
    let file = f.encrypt(CSV, "cv@x.com", &[]);
    assert_eq!(decrypt(&file, &keys).unwrap().0, CSV);
}

#[test]
fn tampered_and_truncated_files_fail() {
    let f = fixture();
    let keys = f.keyring("rsa@x.com", None);
    let data = noise(200_000);
    for algo in ["none", "zlib"] {
        let file = f.encrypt(&data, "rsa@x.com", &["--compress-algo", algo]);
        let mut tampered = file.clone();
        let mid = tampered.len() / 2;
        for b in &mut tampered[mid..mid + 4] {
            *b ^= 0x55;
        }
        let result = decrypt(&tampered, &keys);
        assert!(
            matches!(result, Err(PgpError::Corrupt(_))),
            "{algo} tampered: {result:?}"
        );
        for cut in [1, 10, 30, file.len() / 2] {
            let result = decrypt(&file[..file.len() - cut], &keys);
            assert!(
                matches!(result, Err(PgpError::Corrupt(_))),
                "{algo} cut {cut}: {result:?}"
            );
        }
    }
    let armored = f.encrypt(&data, "rsa@x.com", &["--armor"]);
    let text = String::from_utf8(armored).unwrap();
    let cut = &text[..text.len() * 2 / 3];
    let result = decrypt(cut.as_bytes(), &keys);
    assert!(
        matches!(result, Err(PgpError::Corrupt(_))),
        "armored cut: {result:?}"
    );
    assert_eq!(
        PgpError::Corrupt(String::new()).class(),
        ErrorClass::Permanent
    );
}

/// Fails with a network-ish error after `ok` bytes.
struct Flaky<'a> {
    data: &'a [u8],
    ok: usize,
}

impl Read for Flaky<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "reset by peer",
            ));
        }
        let n = buf.len().min(self.ok);
        let n = self.data.read(&mut buf[..n])?;
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn reader_and_writer_failures_are_retryable_io() {
    let f = fixture();
    let keys = f.keyring("cv@x.com", None);
    let file = f.encrypt(&noise(300_000), "cv@x.com", &["--compress-algo", "none"]);
    for ok in [0, 100, file.len() / 2] {
        let err = decrypt_to(Flaky { data: &file, ok }, io::sink(), &keys).unwrap_err();
        assert!(
            matches!(&err, PgpError::Io(e) if e.kind() == io::ErrorKind::ConnectionReset),
            "after {ok}: {err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Retryable);
    }
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let err = decrypt_to(&file[..], Full, &keys).unwrap_err();
    assert!(matches!(err, PgpError::Io(_)), "{err:?}");
    assert!(err.is_retryable());
}

/// No text is taken for PGP, whatever letter starts it, and no bytes make the
/// packet-header parser panic.
#[test]
fn sniffing_never_takes_text_for_pgp() {
    let starts = ('\u{80}'..='\u{7FF}').chain(('\u{800}'..='\u{FFFF}').step_by(7));
    for c in starts.chain(['\u{1F600}', '\u{10FFFF}']) {
        for rest in ["mail,Name\n1,2\n", ",x\n", "\t1\n", "4,5\n"] {
            let text = format!("{c}{rest}");
            assert!(!looks_like_pgp(text.as_bytes()), "{text:?}");
        }
    }
    let mut next = crate::test_support::xorshift(0x1234_5678_9abc_def1);
    for _ in 0..200_000 {
        let len = (next() % 24) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = looks_like_pgp(&bytes);
    }
}

#[test]
fn sniffing() {
    let f = fixture();
    let binary = f.encrypt(CSV, "cv@x.com", &[]);
    let armored = f.encrypt(CSV, "cv@x.com", &["--armor"]);
    assert!(looks_like_pgp(&binary));
    assert!(looks_like_pgp(&armored));
    assert!(looks_like_pgp(b"\n \r\n-----BEGIN PGP MESSAGE-----\n"));
    // Packet headers as the standard lays them out: PKESK v3 (new and old format),
    // SKESK v4, compressed, SEIPD v1.
    let mut pkesk = vec![0xC1, 0x0C, 3, 1, 2, 3, 4, 5, 6, 7, 8, 18];
    assert!(looks_like_pgp(&pkesk));
    pkesk[0] = 0x84; // old format, one-octet length
    assert!(looks_like_pgp(&pkesk));
    assert!(looks_like_pgp(&[0xC3, 0x0D, 4, 9, 3, 8]));
    assert!(looks_like_pgp(&[0xC8, 0xE0, 1]));
    assert!(looks_like_pgp(&[0xD2, 0xE0, 1]));
    // A tag byte alone is not enough: text whose first letter is É, Ä, Ö, Ü, é or ñ
    // (UTF-8 lead byte 0xC3, the SKESK tag), or Ғ (0xD2, the SEIPD tag).
    for header in [
        "Émail,Name\n",
        "Äpfel;Menge\n",
        "Öl,x\n",
        "Über,a\n",
        "éte,b\n",
        "ñandú,c\n",
        "Ғ,d\n",
        "Ą\n",
    ] {
        assert!(!looks_like_pgp(header.as_bytes()), "{header}");
    }
    // A PNG is not PGP either (0x89 would be an old-format tag 2 header).
    assert!(!looks_like_pgp(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
    assert!(!looks_like_pgp(CSV));
    assert!(!looks_like_pgp(&[0x1f, 0x8b, 0x08, 0x00]));
    assert!(!looks_like_pgp(b"\xEF\xBB\xBFID,Email\n")); // UTF-8 BOM
    assert!(!looks_like_pgp(&[0xCB, 0x10])); // bare literal data
    assert!(!looks_like_pgp(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    assert!(!looks_like_pgp(b""));

    let keys = f.keyring("cv@x.com", None);
    assert!(matches!(decrypt(CSV, &keys), Err(PgpError::NotPgp)));
    assert!(matches!(decrypt(b"", &keys), Err(PgpError::NotPgp)));
    // Signed but not encrypted: PGP, yet nothing to decrypt.
    let signed_only = f.run(
        &["--local-user", "cv@x.com", "--output", "-", "--sign"],
        CSV,
    );
    assert!(looks_like_pgp(&signed_only));
    assert!(matches!(
        decrypt(&signed_only, &keys),
        Err(PgpError::NotPgp)
    ));
}

#[test]
fn key_errors_never_echo_secrets() {
    let f = fixture();
    let err = PgpKeyring::new(
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nsecret-material\n",
        Some("hunter2"),
        None,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PgpError::KeyParse(_)));
    assert!(
        text.contains("not an ASCII-armored OpenPGP secret key"),
        "{text}"
    );
    assert!(!text.contains("secret-material") && !text.contains("hunter2"));
    // A public key where the private key belongs.
    assert!(matches!(
        PgpKeyring::new(&f.public["cv@x.com"], Some(PASS), None),
        Err(PgpError::KeyParse(_))
    ));
    assert!(matches!(
        PgpKeyring::new(&f.secret["cv@x.com"], Some(PASS), Some("nope")),
        Err(PgpError::KeyParse(_))
    ));
    let keys = f.keyring("cv@x.com", Some("signer@x.com"));
    let ids = keys.key_ids();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|id| {
        id.len() == 16
            && id
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    }));
    let debug = format!("{keys:?}");
    assert!(debug.contains(&ids[0]) && !debug.contains(PASS), "{debug}");
    assert!(!PgpError::WrongPassphrase.to_string().contains(PASS));
    // The Lambdas share one keyring across tasks and send errors across threads.
    fn shareable<T: Send + Sync>() {}
    shareable::<PgpKeyring>();
    shareable::<PgpError>();
}
