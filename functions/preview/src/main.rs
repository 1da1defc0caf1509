use lambda_http::{Error, service_fn};
use s3imports::aws::{Clients, load_config};
use s3imports::processor::{Processor, ProcessorSettings};
use s3imports::stack::Stack;

#[tokio::main]
async fn main() -> Result<(), Error> {
    s3imports::telemetry::init_lambda();
    let clients = Clients::new(&load_config().await);
    let settings = ProcessorSettings {
        limits: s3imports_preview::limits(),
        ..ProcessorSettings::default()
    };
    let processor = Processor::from_env(&clients, &Stack::from_env(), settings);
    let processor = &processor;
    lambda_http::run(service_fn(move |request| async move {
        s3imports_preview::handler(processor, request).await
    }))
    .await
}
