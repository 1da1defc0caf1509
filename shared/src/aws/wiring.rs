//! The services wired to their AWS adapters: what `main` of each function and the CLI
//! build once per process.

use std::sync::Arc;

use super::Clients;
use super::configs::ConfigStore;
use super::ledger::LedgerStore;
use super::mailer::SesMailer;
use super::queue::SqsQueue;
use super::reports::ReportStore;
use super::segments::SegmentStore;
use super::sink::DynamoWriter;
use super::source::SourceAccess;
use crate::codec::limits::Limits;
use crate::discover::Discovery;
use crate::metrics::Metrics;
use crate::operate::preview::Previewer;
use crate::ports::StoreError;
use crate::process::Processor;
use crate::process::settings::ProcessorSettings;
use crate::stack::Stack;

/// The adapters every service shares, built from the process's clients.
struct Adapters {
    configs: Arc<ConfigStore>,
    ledger: Arc<LedgerStore>,
    access: Arc<SourceAccess>,
    mailer: Arc<SesMailer>,
    queue: Arc<SqsQueue>,
}

impl Adapters {
    fn new(clients: &Clients, stack: &Stack) -> Self {
        Self {
            configs: Arc::new(ConfigStore::new(
                clients.dynamodb.clone(),
                &stack.configs_table,
            )),
            ledger: Arc::new(LedgerStore::new(
                clients.dynamodb.clone(),
                &stack.ledger_table,
            )),
            access: Arc::new(SourceAccess::new(&clients.sdk)),
            mailer: Arc::new(SesMailer::new(clients.ses.clone(), &stack.sender)),
            queue: Arc::new(SqsQueue::named(clients.sqs.clone(), &stack.queue_name)),
        }
    }
}

impl Processor {
    pub fn from_env(clients: &Clients, stack: &Stack, settings: ProcessorSettings) -> Self {
        let a = Adapters::new(clients, stack);
        Self {
            configs: a.configs,
            ledger: a.ledger,
            sources: a.access.clone(),
            secrets: a.access,
            writer: Arc::new(
                DynamoWriter::new(clients.dynamodb.clone(), stack)
                    .with_counters(clients.dynamo_counters.clone()),
            ),
            reports: Arc::new(ReportStore::new(clients.s3.clone(), &stack.reports_bucket)),
            mailer: a.mailer,
            queue: a.queue,
            segments: Arc::new(SegmentStore::new(
                clients.dynamodb.clone(),
                &stack.segments_table,
            )),
            metrics: Metrics::from_env().with_counters(clients.dynamo_counters.clone()),
            alerts: crate::notify::alerts::Alerting {
                sink: Arc::new(super::alerts::Alerts::new(clients.sns.clone())),
                topic_arn: Some(stack.alerts_topic_arn.clone()).filter(|t| !t.is_empty()),
                reports_bucket: stack.reports_bucket.clone(),
            },
            settings,
        }
    }
}

impl Discovery {
    pub async fn from_env(clients: &Clients, stack: &Stack) -> Result<Self, StoreError> {
        Ok(Self::wired(clients, stack))
    }

    /// Discovery on the stack's adapters (the API's run-now uses it too).
    pub fn wired(clients: &Clients, stack: &Stack) -> Self {
        let a = Adapters::new(clients, stack);
        Self {
            configs: a.configs,
            ledger: a.ledger,
            queue: a.queue,
            sources: a.access,
            mailer: a.mailer,
            metrics: Metrics::from_env().with_counters(clients.dynamo_counters.clone()),
        }
    }
}

impl Previewer {
    pub fn from_env(
        clients: &Clients,
        stack: &Stack,
        spool_dir: std::path::PathBuf,
        limits: Limits,
    ) -> Self {
        let access = Arc::new(SourceAccess::new(&clients.sdk));
        Self {
            configs: Arc::new(ConfigStore::new(
                clients.dynamodb.clone(),
                &stack.configs_table,
            )),
            sources: access.clone(),
            secrets: access,
            spool_dir,
            limits,
            pgp_max_bytes: crate::operate::preview::PREVIEW_PGP_MAX_BYTES,
        }
    }
}
