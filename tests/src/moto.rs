//! The moto server behind the strict layer: started once per test binary on a free
//! loopback port (or given by `S3IMPORTS_TEST_ENDPOINT`), and read over plain HTTP.

use super::*;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Points the harness at a running emulator instead of starting one.
pub const ENV_ENDPOINT: &str = "S3IMPORTS_TEST_ENDPOINT";

/// Overrides where `moto_server` is found (default `.venv/bin/moto_server`).
pub const ENV_MOTO_SERVER: &str = "S3IMPORTS_MOTO_SERVER";

static ENDPOINT: OnceLock<Result<String, String>> = OnceLock::new();

/// The emulator's endpoint, starting it the first time it is asked for.
pub fn endpoint() -> String {
    let result = ENDPOINT.get_or_init(|| match std::env::var(ENV_ENDPOINT) {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => start_moto(&[]),
    });
    match result {
        Ok(url) => url.clone(),
        Err(why) => panic!("the local AWS emulator is not available: {why}"),
    }
}

pub(super) fn moto_binary() -> PathBuf {
    std::env::var_os(ENV_MOTO_SERVER)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"))
}

/// The command that serves the emulator: moto behind the strict layer
/// (`tests/strict/`), which holds every request to the role that makes it, as
/// template.yaml grants it, and to AWS's limits (docs/testing.md). It is not
/// optional: a test binary that cannot start it fails.
pub(super) fn moto_command(bin: &Path, port: u16) -> Command {
    let mut cmd = Command::new(bin);
    if std::env::var_os(ENV_MOTO_SERVER).is_none() {
        cmd.arg(workspace_root().join("tests/strict/server.py"));
    }
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("S3IMPORTS_STRICT_USAGE", strict_usage_dir());
    cmd
}

/// Where the strict layer appends what each role used (docs/least-privilege.md is
/// made from it).
pub fn strict_usage_dir() -> PathBuf {
    workspace_root().join("target/strict-usage")
}

/// Starts moto on a free loopback port from a thread that lives as long as the test
/// process, so the server is ended (parent-death signal) when the process exits.
pub(super) fn start_moto(extra_env: &[(&str, &str)]) -> Result<String, String> {
    let bin = moto_binary();
    if !bin.exists() {
        return Err(format!(
            "{} not found; run `make venv` (or set {ENV_MOTO_SERVER} / {ENV_ENDPOINT})",
            bin.display()
        ));
    }
    let port = free_port()?;
    let env: Vec<(String, String)> = extra_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("moto-{port}"))
        .spawn(move || {
            let mut cmd = moto_command(&bin, port);
            cmd.envs(env)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            die_with_parent(&mut cmd);
            match cmd.spawn() {
                Ok(mut child) => {
                    // Drain stderr so moto never blocks on a full pipe; keep the last lines.
                    let stderr = child.stderr.take();
                    let _ = tx.send(Ok(()));
                    if let Some(stderr) = stderr {
                        for _ in BufReader::new(stderr).lines() {}
                    }
                    let _ = child.wait();
                    // Keep this thread (the child's parent) alive until the process ends.
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot start {}: {e}", bin.display())));
                }
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv().map_err(|e| e.to_string())??;
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(port, Duration::from_secs(60))?;
    Ok(url)
}

/// Starts a separate moto server with extra environment (e.g.
/// `INITIAL_NO_AUTH_ACTION_COUNT=0` so it checks access keys); it lives until the
/// test process exits.
pub fn start_moto_with_env(extra_env: &[(&str, &str)]) -> String {
    start_moto(extra_env)
        .unwrap_or_else(|why| panic!("the local AWS emulator is not available: {why}"))
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(super) fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn die_with_parent(_cmd: &mut Command) {}

pub(super) fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

pub(super) fn wait_ready(port: u16, timeout: Duration) -> Result<(), String> {
    use std::io::{Read, Write};
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let req = "GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            let mut buf = [0u8; 12];
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_exact(&mut buf).is_ok()
                && buf.starts_with(b"HTTP/1.")
            {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "moto_server did not answer on port {port} within {timeout:?}"
    ))
}

/// On a moto started with `INITIAL_NO_AUTH_ACTION_COUNT=3`: creates an IAM user allowed
/// everything and returns its access key (three actions).
pub async fn moto_admin_key(endpoint: &str) -> (String, String) {
    let iam = aws_sdk_iam::Client::new(&sdk_config(endpoint));
    iam.create_user()
        .user_name("admin")
        .send()
        .await
        .unwrap_or_else(|e| panic!("create user: {e:?}"));
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    iam.put_user_policy()
        .user_name("admin")
        .policy_name("all")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put user policy: {e:?}"));
    let key = iam
        .create_access_key()
        .user_name("admin")
        .send()
        .await
        .unwrap_or_else(|e| panic!("create access key: {e:?}"));
    let k = key.access_key().unwrap_or_else(|| panic!("no access key"));
    (
        k.access_key_id().to_string(),
        k.secret_access_key().to_string(),
    )
}

/// One HTTP/1.1 request on loopback (the strict layer's control API): status and body.
pub fn http_request(endpoint: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let hostport = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport)
        .unwrap_or_else(|e| panic!("connect {hostport}: {e}"));
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

/// moto's recorded state (`GET /moto-api/data.json`). moto builds it by walking its
/// state: a request another test makes meanwhile can make it answer with an error
/// page, so it is asked again a few times.
pub fn moto_data(endpoint: &str) -> serde_json::Value {
    let mut attempt = 0;
    loop {
        let body = http_get(endpoint, "/moto-api/data.json");
        match serde_json::from_str(&body) {
            Ok(v) => return v,
            Err(e) if attempt < 10 => {
                attempt += 1;
                tracing::debug!(error = %e, "moto's data.json not ready; asking again");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(e) => panic!(
                "moto's data.json: {e}: {}",
                body.chars().take(300).collect::<String>()
            ),
        }
    }
}

/// A plain HTTP GET on loopback, for moto's own API.
pub fn http_get(endpoint: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let hostport = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport)
        .unwrap_or_else(|e| panic!("connect {hostport}: {e}"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    }
}

pub(super) fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}
