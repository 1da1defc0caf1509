use lambda_runtime::{Error, service_fn};
use s3imports::SystemClock;
use s3imports::aws::{Clients, load_config};
use s3imports::process::Processor;
use s3imports::process::settings::ProcessorSettings;
use s3imports::stack::Stack;
use s3imports_processor::handler;

// Rows become a few small allocations each; see docs/performance.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    s3imports::telemetry::init_lambda();
    let clients = Clients::new(&load_config().await);
    let settings = ProcessorSettings::default();
    // A crashed invocation may have left a report file in this environment's /tmp.
    if let Err(e) = s3imports::rows::report::sweep_spool(&settings.spool_dir) {
        tracing::warn!(error = %e, "the spool directory could not be swept");
    }
    let stack = Stack::from_env();
    let processor = Processor::from_env(&clients, &stack, settings);
    let max_receives = s3imports::process::delivery::max_receives_from_env();
    let (processor, dlq) = (&processor, stack.dlq_name.as_str());
    lambda_runtime::run(service_fn(move |event| async move {
        handler(processor, dlq, &SystemClock, max_receives, event).await
    }))
    .await
}
