//! The three functions wired to a test's stack, each as its own role, and ways to
//! drive them: ticks, SQS events, seeded runs.
use super::*;
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

    pub(super) async fn process_with(
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
