//! The integration-test harness: a moto server per test binary (or one given by
//! `S3IMPORTS_TEST_ENDPOINT`), real AWS SDK clients pointed at it, and a freshly
//! provisioned stack with a unique name prefix per test, so tests in one binary
//! share the server without sharing data.
//!
//! Starting the server is not optional: when it cannot start, the test fails and
//! says why (never skips).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use s3imports::aws::{Clients, provision::provision};
use s3imports::stack::Stack;

/// Points the harness at a running emulator instead of starting one.
pub const ENV_ENDPOINT: &str = "S3IMPORTS_TEST_ENDPOINT";
/// Overrides where `moto_server` is found (default `.venv/bin/moto_server`).
pub const ENV_MOTO_SERVER: &str = "S3IMPORTS_MOTO_SERVER";

pub const REGION: &str = "us-east-1";
/// The harness's own key: what a test sets up and reads back (buckets, objects,
/// scans) is not a function's request and is not checked.
pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";

/// Whom a request runs as, for the strict layer: a function's role, or the operator
/// running a group of CLI commands (the policy docs/operator-policy.json publishes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Discovery,
    Processor,
    Preview,
    /// `s3imports <group> ...`: `config`, `runs`, `tick`, ...
    Cli(&'static str),
}

impl Role {
    /// The access key id the strict layer reads the role (and the stack) from.
    pub fn access_key(self, prefix: &str) -> String {
        match self {
            Self::Discovery => format!("discovery.{prefix}"),
            Self::Processor => format!("processor.{prefix}"),
            Self::Preview => format!("preview.{prefix}"),
            Self::Cli(group) => format!("cli-{group}.{prefix}"),
        }
    }

    /// The CLI command group of `args` (its first word that is not a flag).
    pub fn of_cli(args: &[&str]) -> Self {
        let group = args
            .iter()
            .find(|a| !a.starts_with('-'))
            .copied()
            .unwrap_or("help");
        Self::Cli(cli_group(group))
    }
}

/// The operator policy's group of a CLI command.
fn cli_group(command: &str) -> &'static str {
    match command {
        "config" => "config",
        "runs" | "report" | "status" => "history",
        "run" | "replay" => "run",
        "dry-run" => "dry-run",
        "keys" => "keys",
        "segments" => "segments",
        "tick" => "tick",
        "local" => "local",
        "preview" => "preview",
        _ => "other",
    }
}

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

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

fn moto_binary() -> PathBuf {
    std::env::var_os(ENV_MOTO_SERVER)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"))
}

/// The command that serves the emulator: moto behind the strict layer
/// (`tests/strict/`), which holds every request to the role that makes it, as
/// template.yaml grants it, and to AWS's limits (docs/testing.md). It is not
/// optional: a test binary that cannot start it fails.
fn moto_command(bin: &Path, port: u16) -> Command {
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
fn start_moto(extra_env: &[(&str, &str)]) -> Result<String, String> {
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
fn die_with_parent(cmd: &mut Command) {
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
fn die_with_parent(_cmd: &mut Command) {}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

fn wait_ready(port: u16, timeout: Duration) -> Result<(), String> {
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

/// SDK config for the emulator at `endpoint`, with static test credentials.
pub fn sdk_config(endpoint: &str) -> SdkConfig {
    sdk_config_with(endpoint, ACCESS_KEY, SECRET_KEY)
}

pub fn sdk_config_with(endpoint: &str, access_key: &str, secret_key: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                access_key,
                secret_key,
                None,
                None,
                "s3imports-tests",
            )),
        )
        .build()
}

/// One test's world: clients against the emulator and its own provisioned stack.
pub struct TestEnv {
    /// Unique per test: names the stack and every bucket, secret and address the test makes.
    pub prefix: String,
    pub endpoint: String,
    pub sdk: SdkConfig,
    pub clients: Clients,
    pub stack: Stack,
}

impl TestEnv {
    /// A fresh stack (unique prefix) on the shared emulator.
    pub async fn new() -> Self {
        Self::on(endpoint()).await
    }

    pub async fn on(endpoint: String) -> Self {
        let sdk = sdk_config(&endpoint);
        Self::with_sdk(endpoint, sdk).await
    }

    /// A fresh stack on `endpoint`, reached with `sdk` (e.g. other credentials).
    pub async fn with_sdk(endpoint: String, sdk: SdkConfig) -> Self {
        let clients = Clients::new(&sdk);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("t{}", &id[..10]);
        let mut stack = Stack::with_prefix(&prefix);
        // Outside `SourceBucketPattern` (`<prefix>-*`, the customers' buckets of the
        // test): a grant on source buckets must not reach the stack's own reports.
        stack.reports_bucket = format!("reports-{prefix}");
        provision(&clients, &stack)
            .await
            .unwrap_or_else(|e| panic!("provisioning the test stack in moto failed: {e:#}"));
        let env = Self {
            prefix,
            endpoint,
            sdk,
            clients,
            stack,
        };
        env.register(&[]);
        env
    }

    /// Tells the strict layer about this stack: its names, and the template's
    /// parameters as a deployment of it would set them. `remove` takes grants away
    /// from a role (`("processor", "dynamodb:PutItem")`), for a test that shows a
    /// missing grant is caught.
    pub fn register(&self, remove: &[(&str, &str)]) {
        let s = &self.stack;
        let test = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        let body = serde_json::json!({
            "prefix": self.prefix,
            "test": test,
            "parameters": {
                "SenderEmail": s.sender,
                "SourceBucketPattern": format!("{}-*", self.prefix),
                "SecretsPrefix": format!("{}/", self.prefix),
                "AlertTopicPattern": format!("{}-*", self.prefix),
                "AllowSourcePostProcessing": "true",
                "AssumableRolePattern": "arn:aws:iam::*:role/s3imports-*",
                "CustomerAccountIds": "123456789012",
            },
            "resources": {
                "ConfigsTable": s.configs_table,
                "LedgerTable": s.ledger_table,
                "UsersTable": s.users_table,
                "AnonymousUsersTable": s.anonymous_users_table,
                "EventsTable": s.events_table,
                "AuxiliaryTable": s.auxiliary_table,
                "SegmentsTable": s.segments_table,
                "FilesQueue": s.queue_name,
                "FilesDeadLetterQueue": s.dlq_name,
                "ReportsBucket": s.reports_bucket,
                "AlertsTopic": s.alerts_topic_arn,
            },
            "remove": remove.iter().map(|(role, action)| serde_json::json!({"role": role, "action": action})).collect::<Vec<_>>(),
        });
        let answer = http_request(
            &self.endpoint,
            "POST",
            "/_strict/stack",
            Some(&body.to_string()),
        );
        assert!(
            answer.0 == 200,
            "the strict layer refused the stack ({}): {}",
            answer.0,
            answer.1
        );
    }

    /// Sets how the strict layer contends on this stack's tables (see docs/testing.md):
    /// e.g. `{"partition_write_units_per_second": 50, "transaction_hold_ms": 20}`.
    pub fn contention(&self, settings: serde_json::Value) {
        let mut body = settings;
        body["prefix"] = serde_json::json!(self.prefix);
        let answer = http_request(
            &self.endpoint,
            "POST",
            "/_strict/contention",
            Some(&body.to_string()),
        );
        assert_eq!(answer.0, 200, "contention settings: {}", answer.1);
    }

    /// Throttles and conflicts the strict layer produced on this stack.
    pub fn strict_stats(&self) -> serde_json::Value {
        let (_, body) = http_request(
            &self.endpoint,
            "GET",
            &format!("/_strict/stats?prefix={}", self.prefix),
            None,
        );
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
    }

    /// What the strict layer refused on this stack (IAM, limits), and forgets it: for
    /// a test that provokes a refusal on purpose.
    pub fn take_violations(&self) -> Vec<serde_json::Value> {
        let path = format!("/_strict/violations?prefix={}", self.prefix);
        let (_, body) = http_request(&self.endpoint, "GET", &path, None);
        http_request(&self.endpoint, "DELETE", &path, None);
        serde_json::from_str(&body).unwrap_or_default()
    }

    /// SDK config for requests made as `role` on this stack.
    pub fn role_sdk(&self, role: Role) -> SdkConfig {
        sdk_config_with(&self.endpoint, &role.access_key(&self.prefix), SECRET_KEY)
    }

    /// Clients as `role` holds them (each function's own, built once in its `main`).
    pub fn role_clients(&self, role: Role) -> Clients {
        Clients::new(&self.role_sdk(role))
    }

    /// `name`, made unique to this test (tests share one emulator).
    pub fn scoped(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// The address this test's imports notify; [`TestEnv::sent_emails`] reads its mail.
    pub fn recipient(&self) -> String {
        format!("ops@{}.example", self.prefix)
    }

    /// The environment a child process (the CLI) needs to use this stack, running
    /// `args` (whose command group names the operator policy it is held to).
    pub fn cli_env(&self, args: &[&str]) -> Vec<(String, String)> {
        self.process_env_as(Role::of_cli(args))
    }

    /// The environment a child process needs to use this stack as `role`.
    pub fn process_env_as(&self, role: Role) -> Vec<(String, String)> {
        let mut env = self.process_env();
        env.push(("AWS_ACCESS_KEY_ID".into(), role.access_key(&self.prefix)));
        env
    }

    /// The environment without credentials (see [`TestEnv::cli_env`]).
    fn process_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .stack
            .to_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        for (k, v) in [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            env.push((k.to_string(), v.to_string()));
        }
        env
    }

    /// Every item of a table (test tables hold one page).
    pub async fn scan(
        &self,
        table: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.clients
            .dynamodb
            .scan()
            .table_name(table)
            .send()
            .await
            .unwrap_or_else(|e| panic!("scan {table}: {e}"))
            .items()
            .to_vec()
    }

    /// Creates a bucket (the "customer's" bucket in tests).
    pub async fn bucket(&self, name: &str) -> &Self {
        self.clients
            .s3
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create bucket {name}: {e}"));
        self
    }

    /// An object's bytes.
    pub async fn object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out = self
            .clients
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get s3://{bucket}/{key}: {e}"));
        out.body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("s3://{bucket}/{key}'s body: {e}"))
            .to_vec()
    }

    /// An object of the stack's reports bucket (a failed-rows report), as text.
    pub async fn report(&self, key: &str) -> String {
        let body = self.object(&self.stack.reports_bucket, key).await;
        String::from_utf8(body).unwrap_or_else(|e| panic!("report text: {e}"))
    }

    pub async fn put_object(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.clients
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e}"));
    }

    /// Stores a secret under a name unique to this test, for the imports `import_ids`
    /// (its `s3imports:import-id` tag), and returns that name.
    pub async fn put_secret(&self, name: &str, value: &str, import_ids: &[&str]) -> String {
        let name = format!("{}/{name}", self.prefix);
        let mut req = self
            .clients
            .secrets
            .create_secret()
            .name(&name)
            .secret_string(value);
        if !import_ids.is_empty() {
            req = req.tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(s3imports::ports::SECRET_TAG)
                    .value(import_ids.join(" "))
                    .build(),
            );
        }
        req.send()
            .await
            .unwrap_or_else(|e| panic!("create secret {name}: {e:?}"));
        name
    }

    /// Emails moto has recorded as sent to [`TestEnv::recipient`] (`GET
    /// /moto-api/data.json`), each with `subject`, `body`, `source` and `destinations`.
    /// Raw MIME messages are parsed (by mail-parser, not by our own code) into the same
    /// shape, plus `attachments` (`filename`, `content_type`, `data` as base64) and
    /// `raw` (the message text).
    pub async fn sent_emails(&self) -> Vec<serde_json::Value> {
        let data = moto_data(&self.endpoint);
        let to = serde_json::Value::String(self.recipient());
        let simple = data
            .pointer("/ses/Message")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter(|m| {
                m.pointer("/destinations/ToAddresses")
                    .and_then(|a| a.as_array())
                    .is_some_and(|a| a.contains(&to))
            })
            .cloned();
        let raw = data
            .pointer("/ses/RawMessage")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter(|m| {
                m["destinations"]
                    .as_array()
                    .is_some_and(|a| a.contains(&to))
            })
            .map(parse_raw_email);
        simple.chain(raw).collect()
    }
}

/// The DynamoDB operations a client sent (`GetItem`, `BatchGetItem`, ...), one entry per
/// request, retries included: how tests prove a read is batched and bounded.
#[derive(Debug, Clone, Default)]
pub struct DynamoRequests(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl DynamoRequests {
    /// The operations sent since the last call, and forgets them.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl aws_sdk_dynamodb::config::Intercept for DynamoRequests {
    fn name(&self) -> &'static str {
        "DynamoRequests"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        // `X-Amz-Target: DynamoDB_20120810.BatchGetItem`
        let operation = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_string();
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(operation);
        Ok(())
    }
}

impl TestEnv {
    /// `role`'s clients, with a DynamoDB client that records every request.
    pub fn counted_clients(&self, role: Role) -> (Clients, DynamoRequests) {
        let requests = DynamoRequests::default();
        let sdk = self.role_sdk(role);
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(requests.clone())
            .retry_classifier(s3imports::aws::contention::ContentionClassifier)
            .build();
        let clients = Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(config),
            ..Clients::new(&sdk)
        };
        (clients, requests)
    }
}

/// A raw message moto recorded, as the fields a mail reader shows.
fn parse_raw_email(m: &serde_json::Value) -> serde_json::Value {
    use base64::Engine as _;
    use mail_parser::{MessageParser, MimeHeaders as _};
    let raw = m["raw_data"].as_str().unwrap_or_default();
    let parsed = MessageParser::default()
        .parse(raw.as_bytes())
        .unwrap_or_else(|| panic!("moto recorded a message that is not MIME: {raw}"));
    let attachments: Vec<serde_json::Value> = parsed
        .attachments()
        .map(|a| {
            let ct = a
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()));
            serde_json::json!({
                "filename": a.attachment_name(),
                "content_type": ct,
                "data": base64::engine::general_purpose::STANDARD.encode(a.contents()),
            })
        })
        .collect();
    serde_json::json!({
        "subject": parsed.subject(),
        "body": parsed.body_text(0).map(|b| b.to_string()),
        "source": m["source"],
        "destinations": {"ToAddresses": m["destinations"]},
        "attachments": attachments,
        "raw": raw,
    })
}

/// The IAM principal API Gateway's IAM authorization names on [`api_request`]s.
pub const API_CALLER: &str = "arn:aws:iam::123456789012:user/operator";

/// A request as API Gateway's HTTP API (payload v2) hands it to the preview Lambda; `target` is a path with an optional `?query`.
pub fn api_request(
    method: &str,
    target: &str,
    body: Option<&serde_json::Value>,
) -> lambda_http::Request {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "r1",
            "authorizer": {"iam": {
                "accessKey": "AKIATEST",
                "accountId": "123456789012",
                "callerId": "AIDATEST",
                "userArn": API_CALLER,
                "userId": "AIDATEST"
            }},
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "28/Nov/2026:09:00:00 +0000",
            "timeEpoch": 1_795_856_400_000_i64
        },
        "body": body.map(serde_json::Value::to_string),
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).unwrap_or_else(|e| panic!("API event: {e}"))
}

/// API Gateway's HTTP API payload limit.
/// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
pub const API_GATEWAY_MAX_PAYLOAD: usize = 10 << 20;
/// Lambda's limit on a synchronous invocation's response (and a function's response
/// to the runtime API).
/// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
pub const LAMBDA_MAX_RESPONSE: usize = 6 << 20;

/// What the preview API answered: status, JSON body (Null when none) and headers.
pub struct ApiAnswer {
    pub status: u16,
    pub body: serde_json::Value,
    pub headers: lambda_http::http::HeaderMap,
}

/// Sends a request through the preview Lambda's handler, as API Gateway would.
pub async fn api_call(
    api: &s3imports_preview::Api,
    method: &str,
    target: &str,
    body: Option<&serde_json::Value>,
) -> ApiAnswer {
    let sent = body.map_or(0, |b| b.to_string().len());
    assert!(
        sent <= API_GATEWAY_MAX_PAYLOAD,
        "API Gateway refuses a {sent}-byte request to {target} (its payload limit is 10 MB)"
    );
    let response = s3imports_preview::handler(api, api_request(method, target, body))
        .await
        .unwrap_or_else(|e| panic!("handler: {e}"));
    let bytes: &[u8] = match response.body() {
        lambda_http::Body::Text(t) => t.as_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => &[],
    };
    // The response as the runtime returns it to API Gateway (JSON, headers included,
    // a binary body base64-encoded) must be within Lambda's 6 MB.
    let returned = bytes.len() * 4 / 3
        + response
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 8)
            .sum::<usize>();
    assert!(
        returned <= LAMBDA_MAX_RESPONSE,
        "Lambda refuses a {returned}-byte response of {method} {target} (its limit is 6 MB)"
    );
    ApiAnswer {
        status: response.status().as_u16(),
        body: serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null),
        headers: response.headers().clone(),
    }
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

impl Drop for TestEnv {
    /// A request the stack's roles or AWS's limits would refuse fails the test that
    /// made it, naming the role, operation, resource and the missing grant.
    fn drop(&mut self) {
        let path = format!("/_strict/violations?prefix={}", self.prefix);
        let (status, body) = http_request(&self.endpoint, "GET", &path, None);
        let found: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
        let lines: Vec<String> = found
            .iter()
            .map(|v| {
                format!(
                    "  - [{}] {}",
                    v["kind"].as_str().unwrap_or("?"),
                    v["message"].as_str().unwrap_or_default()
                )
            })
            .collect();
        let refused = format!(
            "AWS would refuse {} request(s) this test made (docs/testing.md):\n{}",
            found.len(),
            lines.join("\n")
        );
        if std::thread::panicking() {
            // The test failed already: say what AWS would have refused, often the
            // reason (a second panic here would abort the process).
            if !found.is_empty() {
                eprintln!("{refused}");
            }
            return;
        }
        assert!(
            status == 200,
            "the strict layer did not answer for {} ({status}): {body}",
            self.prefix
        );
        assert!(found.is_empty(), "{refused}");
    }
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

fn dechunk(body: &str) -> String {
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

/// The `s3imports` binary built next to this test binary (`make test` builds it first).
pub fn cli_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> -> target/<profile>/s3imports
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("target/debug"), Path::to_path_buf);
    let bin = dir.join("s3imports");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build -p s3imports-cli`; `make test` does)",
        bin.display()
    );
    bin
}

pub mod fakes;
pub mod gpg;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use s3imports::Clock;
use s3imports::aws::configs::ConfigStore;
use s3imports::aws::queue::SqsQueue;
use s3imports::discover::Discovery;
use s3imports::discover::report::TickReport;
use s3imports::ports::FileMessage;
use s3imports::process::Processor;
use s3imports::process::settings::ProcessorSettings;

/// The functions of one test stack, wired as the Lambdas wire them, plus the adapters
/// the tests drive directly (the configs table as the CLI writes it, the files queue).
pub struct Pipeline {
    pub discovery: Discovery,
    pub processor: Processor,
    pub configs: ConfigStore,
    pub queue: SqsQueue,
    pub dlq_name: String,
    /// The processor's row writer, to count its DynamoDB requests.
    pub writer: std::sync::Arc<s3imports::aws::sink::DynamoWriter>,
}

impl TestEnv {
    /// The stack's configs table, as the CLI writes it.
    pub fn configs(&self) -> ConfigStore {
        let operator = self.role_clients(Role::Cli("config"));
        ConfigStore::new(operator.dynamodb, &self.stack.configs_table)
    }

    pub fn ledger(&self) -> s3imports::aws::ledger::LedgerStore {
        s3imports::aws::ledger::LedgerStore::new(
            self.clients.dynamodb.clone(),
            &self.stack.ledger_table,
        )
    }

    /// The files queue.
    pub fn queue(&self) -> SqsQueue {
        SqsQueue::named(self.clients.sqs.clone(), &self.stack.queue_name)
    }

    pub async fn pipeline(&self) -> Pipeline {
        let processor_clients = self.role_clients(Role::Processor);
        let writer = std::sync::Arc::new(s3imports::aws::sink::DynamoWriter::new(
            processor_clients.dynamodb.clone(),
            &self.stack,
        ));
        let mut processor = Processor::from_env(
            &processor_clients,
            &self.stack,
            ProcessorSettings::default(),
        );
        processor.writer = writer.clone();
        Pipeline {
            writer,
            discovery: Discovery::from_env(&self.role_clients(Role::Discovery), &self.stack)
                .await
                .unwrap_or_else(|e| panic!("discovery: {e}")),
            processor,
            configs: self.configs(),
            queue: self.queue(),
            dlq_name: self.stack.dlq_name.clone(),
        }
    }
}

/// An SQS event as Lambda delivers it.
pub fn sqs_event(messages: &[(FileMessage, u32)]) -> LambdaEvent<SqsEvent> {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .enumerate()
        .map(|(i, (m, receives))| {
            let mut r = SqsMessage::default();
            r.message_id = Some(format!("m{i}"));
            r.body = Some(serde_json::to_string(m).unwrap_or_default());
            r.attributes
                .insert("ApproximateReceiveCount".into(), receives.to_string());
            r
        })
        .collect();
    LambdaEvent::new(event, Context::default())
}

impl Pipeline {
    /// Stores an import config, as `s3imports config put` does.
    pub async fn put_config(
        &self,
        value: serde_json::Value,
        now: chrono::DateTime<chrono::Utc>,
    ) -> s3imports::model::config::ImportConfig {
        let config = s3imports::model::config::ImportConfig::from_value(value)
            .unwrap_or_else(|e| panic!("invalid config: {e:?}"));
        self.configs
            .put(&config, now)
            .await
            .unwrap_or_else(|e| panic!("put config: {e}"));
        config
    }

    /// Runs the discovery handler once.
    pub async fn tick(&self, clock: &dyn Clock) -> TickReport {
        let report = s3imports_discovery::handler(
            &self.discovery,
            clock,
            LambdaEvent::new(serde_json::json!({}), Context::default()),
        )
        .await
        .unwrap_or_else(|e| panic!("discovery handler: {e}"));
        let size = serde_json::to_vec(&report).map_or(0, |v| v.len());
        assert!(
            size <= LAMBDA_MAX_RESPONSE,
            "Lambda refuses discovery's {size}-byte response (its limit is 6 MB)"
        );
        report
    }

    /// Takes every message off the queue.
    pub async fn take_messages(&self) -> Vec<FileMessage> {
        let sqs = self.queue.client();
        let mut out = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(
                    self.queue
                        .url()
                        .await
                        .unwrap_or_else(|e| panic!("queue url: {e}")),
                )
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap_or_else(|e| panic!("receive: {e}"));
            if got.messages().is_empty() {
                return out;
            }
            for m in got.messages() {
                out.push(
                    serde_json::from_str(m.body().unwrap_or_default())
                        .unwrap_or_else(|e| panic!("message body: {e}")),
                );
                sqs.delete_message()
                    .queue_url(
                        self.queue
                            .url()
                            .await
                            .unwrap_or_else(|e| panic!("queue url: {e}")),
                    )
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("delete: {e}"));
            }
        }
    }

    /// Delivers messages to the processor handler (first delivery each).
    pub async fn process(&self, messages: &[FileMessage], clock: &dyn Clock) -> SqsBatchResponse {
        self.process_with(&self.processor, messages, clock).await
    }

    /// Delivers messages to another Lambda instance: the processor with its own
    /// worker id (concurrent invocations are separate instances).
    pub async fn process_as(
        &self,
        worker: String,
        messages: &[FileMessage],
        clock: &dyn Clock,
    ) -> SqsBatchResponse {
        let mut instance = self.processor.clone();
        instance.settings.worker_id = worker;
        self.process_with(&instance, messages, clock).await
    }

    async fn process_with(
        &self,
        processor: &Processor,
        messages: &[FileMessage],
        clock: &dyn Clock,
    ) -> SqsBatchResponse {
        let with_counts: Vec<(FileMessage, u32)> =
            messages.iter().cloned().map(|m| (m, 1)).collect();
        s3imports_processor::handler(
            processor,
            &self.dlq_name,
            clock,
            s3imports::process::delivery::DEFAULT_MAX_RECEIVES,
            sqs_event(&with_counts),
        )
        .await
        .unwrap_or_else(|e| panic!("processor handler: {e}"))
    }

    /// Delivers the queue's messages, one invocation each with `budget` to its
    /// deadline (a continuation's message included), until the queue is empty or
    /// `max` invocations; returns the number of invocations.
    pub async fn drain_within(
        &self,
        clock: &dyn Clock,
        budget: std::time::Duration,
        max: u32,
    ) -> u32 {
        let mut invocations = 0;
        loop {
            let messages = self.take_messages().await;
            if messages.is_empty() {
                return invocations;
            }
            if invocations >= max {
                // Back on the queue for a later drain.
                s3imports::ports::Queue::send_all(&self.queue, &messages)
                    .await
                    .unwrap_or_else(|e| panic!("send: {e}"));
                return invocations;
            }
            for m in messages {
                invocations += 1;
                let (import_id, key) = (m.import_id.clone(), m.key.clone());
                let mut event = sqs_event(&[(m, 1)]);
                let deadline = std::time::SystemTime::now() + budget;
                event.context.deadline = deadline
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let response = s3imports_processor::handler(
                    &self.processor,
                    &self.dlq_name,
                    clock,
                    s3imports::process::delivery::DEFAULT_MAX_RECEIVES,
                    event,
                )
                .await
                .unwrap_or_else(|e| panic!("processor handler: {e}"));
                if !response.batch_item_failures.is_empty() {
                    let file = self.processor.ledger.file(&import_id, &key).await;
                    panic!("invocation {invocations} failed: {file:?}");
                }
            }
        }
    }

    /// One tick, then every queued file through the processor.
    pub async fn run(&self, clock: &dyn Clock) -> (TickReport, Vec<FileMessage>, SqsBatchResponse) {
        let report = self.tick(clock).await;
        let messages = self.take_messages().await;
        let response = self.process(&messages, clock).await;
        (report, messages, response)
    }
}

/// Records a run of `keys` in the ledger as discovery does (the run, a claim per file,
/// the run's file list), without S3 or SQS: for tests that read history.
pub async fn seed_run(
    ledger: &dyn s3imports::ports::RunLedger,
    import_id: &str,
    run_id: &str,
    bucket: &str,
    keys: &[String],
    now: chrono::DateTime<chrono::Utc>,
) {
    ledger
        .create_run(import_id, run_id, None, now)
        .await
        .unwrap_or_else(|e| panic!("create run: {e}"));
    for key in keys {
        let file = s3imports::model::ledger::FileRecord::queued(
            import_id, run_id, bucket, key, 10, "\"e\"", now,
        );
        assert!(
            ledger
                .claim_file(&file, now)
                .await
                .unwrap_or_else(|e| panic!("claim {key}: {e}")),
            "{key} claimed twice"
        );
    }
    ledger
        .set_run_files(import_id, run_id, keys, now)
        .await
        .unwrap_or_else(|e| panic!("set run files: {e}"));
}

/// A fresh stack with the "customer's" bucket `<prefix>-<name>` and the functions
/// wired to it: what most moto tests start from.
pub async fn stage(name: &str) -> (TestEnv, String, Pipeline) {
    let env = TestEnv::new().await;
    let bucket = env.scoped(name);
    env.bucket(&bucket).await;
    let pipe = env.pipeline().await;
    (env, bucket, pipe)
}

/// A registered-users import of `folder` in the test's `acme-exports` bucket: `ID` and
/// an integer `Age`, hourly on the hour, emailing the test's recipient; `extra`'s
/// top-level fields replace or add to these.
pub fn users_config(
    env: &TestEnv,
    id: &str,
    folder: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": id,
        "name": format!("Users {id}"),
        "kind": {"type": "registered_users"},
        "source": {"bucket": env.scoped("acme-exports"), "folder": folder, "datetime_format": "yyyymmdd"},
        "mapping": {"columns": [
            {"column": "ID", "attribute": "user_id"},
            {"column": "Age", "attribute": "age", "type": "integer"}
        ]},
        "schedule": {"type": "hourly", "minute": 0},
        "notifications": {"recipients": [env.recipient()]}
    });
    for (k, val) in extra.as_object().into_iter().flatten() {
        v[k] = val.clone();
    }
    v
}

/// What a run of the `s3imports` binary printed.
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `s3imports` binary on `env`'s stack, as an operator holding the
/// operator policy's group for the command.
pub fn s3imports(env: &TestEnv, args: &[&str]) -> CliRun {
    let out = std::process::Command::new(cli_binary())
        .args(args)
        .envs(env.cli_env(args))
        .env_remove("S3IMPORTS_PREFIX")
        .output()
        .unwrap_or_else(|e| panic!("run s3imports: {e}"));
    CliRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// Writes `value` as pretty JSON to `dir/name` and returns the path.
pub fn write_json(dir: &Path, name: &str, value: &serde_json::Value) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(value).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.to_string_lossy().to_string()
}
