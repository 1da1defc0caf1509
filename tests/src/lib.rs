//! The integration-test harness: a moto server per test binary (or one given by
//! `S3IMPORTS_TEST_ENDPOINT`), real AWS SDK clients pointed at it, and a freshly
//! provisioned stack with a unique name prefix per test, so tests in one binary
//! share the server without sharing data.
//!
//! Starting the server is not optional: when it cannot start, the test fails and
//! says why (never skips).
//!
//! By concern: `moto` (the server), this file (a test's stack, its clients and roles),
//! `api` (the preview API as API Gateway calls it), `pipeline` (the functions wired to
//! the stack), `cli` (the `s3imports` binary as an operator), `browser` (the console in Chromium), `fixtures` (what many
//! tests start from), `fakes` (in-memory ports with faults), `gpg` (files by GnuPG).

mod api;
mod browser;
mod cli;
pub mod fakes;
mod fixtures;
pub mod gpg;
mod moto;
mod pipeline;

pub use api::*;
pub use browser::*;
pub use cli::*;
pub use fixtures::*;
pub use moto::*;
pub use pipeline::*;
use std::path::{Path, PathBuf};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use s3imports::aws::{Clients, provision::provision};
use s3imports::stack::Stack;

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

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
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
