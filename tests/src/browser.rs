//! The console in a real browser: `s3imports console` on the test's stack, and Debian's
//! Chromium driven over WebDriver by its chromedriver. Neither is optional: without
//! them the test fails and names the command that installs them.
use super::*;
use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL: &str = "apt-get install -y chromium chromium-driver";

/// Kills processes by id, each one named (never a group, never -1): the ones whose
/// command line contains `marker` (a browser's own profile directory).
fn kill_marked(marker: &str) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    let me = std::process::id();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid <= 1 || pid == me {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            let _ = Command::new("kill")
                .args(["-9", "--", &pid.to_string()])
                .status();
        }
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// `s3imports console` serving the test's stack, as an operator holding the
/// operator policy's `console` group.
pub struct ConsoleServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The printed address, with this start's token.
    pub url: String,
}

impl ConsoleServer {
    pub fn start(env: &TestEnv) -> Self {
        Self::start_with(env, &[])
    }

    /// With `extra` environment over the group's (other credentials, say).
    pub fn start_with(env: &TestEnv, extra: &[(&str, &str)]) -> Self {
        let mut child = Command::new(cli_binary())
            .args(["console", "--no-open"])
            .envs(env.cli_env(&["console"]))
            .envs(extra.iter().copied())
            .env_remove("S3IMPORTS_PREFIX")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start s3imports console: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.strip_prefix("open ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("s3imports console printed no address within 60 s"));
        let base = url.split("/?token=").next().unwrap_or_default().to_string();
        Self { child, base, url }
    }
}

impl Drop for ConsoleServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// One browser at a time in a test binary: each Chromium is a dozen processes, and on
/// 2 cores several at once only make every page slower.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Headless Chromium under its chromedriver.
pub struct Browser {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    driver: Child,
    pub client: Client,
    profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Self {
        let turn = ONE_AT_A_TIME.lock().await;
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is missing: the console's browser tests need Debian's Chromium and its driver; install them with `{INSTALL}` (.ci/run does)"
            );
        }
        let port = moto::free_port().unwrap_or_else(|e| panic!("{e}"));
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        // The flags Chromium needs on a machine with no network but loopback, as root.
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let caps = caps.as_object().cloned().unwrap_or_default();
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("a WebDriver session in {CHROMIUM}: {e}"));
        Self {
            _turn: turn,
            driver,
            client,
            profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The page's visible text (empty while a page is loading).
    pub async fn text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "no `{css}` on {}: {e}\n{}",
                self.url().await,
                self.text().await
            ),
        }
    }

    /// Types `text` into the field `css` (emptied first).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("choose {value} in {css}: {e}"));
    }

    /// Chooses `value` in a select that updates the page when it changes (the set-up's
    /// choices), and waits for the new page.
    pub async fn select_live(&self, css: &str, value: &str) {
        let old = self.find("html").await;
        self.select(css, value).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        // The old page's element goes stale once the new page has replaced it.
        while old.tag_name().await.is_ok() {
            assert!(
                Instant::now() < deadline,
                "choosing {value} in {css} did not update the page"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.find("body").await;
    }

    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Waits until the page's text contains `needle` (pages that post, or refresh).
    pub async fn wait_text(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text().await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "`{needle}` never showed on {}:\n{text}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves a screenshot as `name.png` in `S3IMPORTS_SCREENSHOTS`, when it is set
    /// (`make screenshots`: docs/console.md's pictures).
    pub async fn screenshot(&self, name: &str) {
        let Ok(dir) = std::env::var("S3IMPORTS_SCREENSHOTS") else {
            return;
        };
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        let _ = std::fs::create_dir_all(&dir);
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png)
            .unwrap_or_else(|e| panic!("write screenshot {name}: {e}"));
    }

    /// Ends the session (a test that fails ends it by dropping the browser).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        stop(&mut self.driver);
        // Chromium's own processes, found by this browser's profile directory.
        kill_marked(&format!(
            "--user-data-dir={}",
            self.profile.path().display()
        ));
    }
}

/// A raw HTTP/1.1 request to the console (headers as given: a forged Host, no cookie,
/// a POST from elsewhere), for what a browser would not send. Returns the status and
/// the body.
pub fn raw_http(base: &str, request_head: &str, body: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let addr = base.trim_start_matches("http://");
    let mut stream =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let request = format!(
        "{request_head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("send: {e}"));
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
