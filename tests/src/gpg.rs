//! PGP fixtures made by the real GnuPG, in a private GNUPGHOME per keyring.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A GnuPG home with keys made for one test.
pub struct Gpg {
    home: tempfile::TempDir,
    pub passphrase: String,
}

/// Key types the fixtures use.
#[derive(Debug, Clone, Copy)]
pub enum KeyType {
    Rsa,
    Curve25519,
}

/// How to encrypt a fixture.
#[derive(Debug, Clone, Default)]
pub struct Encrypt<'a> {
    pub armor: bool,
    /// `none`, `zip`, `zlib` or `bzip2`; gpg's default when None.
    pub compress: Option<&'a str>,
    /// Sign with this key (an email of a key in the same home).
    pub sign_with: Option<&'a str>,
    /// A second recipient (the file then has two session-key packets).
    pub also_to: Option<&'a str>,
}

impl Default for Gpg {
    fn default() -> Self {
        Self::new()
    }
}

impl Gpg {
    pub fn new() -> Self {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        // gpg warns about, and may refuse, a home others can read.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700));
        }
        Self {
            home,
            passphrase: "correct horse battery staple".into(),
        }
    }

    fn gpg(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path())
            .args([
                "--batch",
                "--quiet",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--trust-model",
                "always",
            ])
            .args(["--passphrase", &self.passphrase]);
        c
    }

    fn run(&self, mut c: Command, input: Option<&[u8]>) -> Vec<u8> {
        c.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run gpg (install GnuPG): {e}"));
        if let Some(data) = input {
            let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("gpg stdin"));
            let data = data.to_vec();
            std::thread::spawn(move || {
                let _ = stdin.write_all(&data);
            });
        }
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("gpg: {e}"));
        assert!(
            out.status.success(),
            "gpg failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Makes a key for `email` (with the passphrase).
    pub fn key(&self, email: &str, kind: KeyType) -> &Self {
        let uid = format!("Test <{email}>");
        match kind {
            // As gpg makes them by default: a signing primary key, an encryption subkey.
            KeyType::Rsa => self.key_pair(&uid, email, "rsa2048", "rsa2048"),
            KeyType::Curve25519 => self.key_pair(&uid, email, "ed25519", "cv25519"),
        }
        self
    }

    fn key_pair(&self, uid: &str, email: &str, primary: &str, sub: &str) {
        let mut c = self.gpg();
        c.args(["--quick-gen-key", uid, primary, "sign", "never"]);
        self.run(c, None);
        let fpr = self.fingerprint(email);
        let mut c = self.gpg();
        c.args(["--quick-add-key", &fpr, sub, "encr", "never"]);
        self.run(c, None);
    }

    fn fingerprint(&self, email: &str) -> String {
        let mut c = self.gpg();
        c.args(["--with-colons", "--list-keys", email]);
        let out = String::from_utf8_lossy(&self.run(c, None)).to_string();
        out.lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no fingerprint for {email}"))
    }

    pub fn secret_key(&self, email: &str) -> String {
        let mut c = self.gpg();
        c.args(["--armor", "--export-secret-keys", email]);
        String::from_utf8(self.run(c, None)).unwrap_or_default()
    }

    pub fn public_key(&self, email: &str) -> String {
        let mut c = self.gpg();
        c.args(["--armor", "--export", email]);
        String::from_utf8(self.run(c, None)).unwrap_or_default()
    }

    /// Encrypts `plaintext` to `recipient`.
    pub fn encrypt(&self, plaintext: &[u8], recipient: &str, opts: &Encrypt<'_>) -> Vec<u8> {
        let mut c = self.gpg();
        c.args(["--recipient", recipient]);
        if let Some(other) = opts.also_to {
            c.args(["--recipient", other]);
        }
        if opts.armor {
            c.arg("--armor");
        }
        if let Some(algo) = opts.compress {
            c.args(["--compress-algo", algo]);
        }
        if let Some(signer) = opts.sign_with {
            c.args(["--local-user", signer, "--sign"]);
        }
        c.args(["--output", "-", "--encrypt"]);
        self.run(c, Some(plaintext))
    }

    /// Imports an ASCII-armored public key (a customer receiving ours) and returns
    /// its fingerprint, to encrypt to.
    pub fn import(&self, public_armored: &str) -> String {
        let mut c = self.gpg();
        c.args(["--import"]);
        self.run(c, Some(public_armored.as_bytes()));
        let mut c = self.gpg();
        c.args(["--with-colons", "--import-options", "show-only", "--import"]);
        let out =
            String::from_utf8_lossy(&self.run(c, Some(public_armored.as_bytes()))).to_string();
        out.lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no fingerprint in the imported key"))
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }
}
