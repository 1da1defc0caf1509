use lambda_runtime::{Error, service_fn};
use s3imports::SystemClock;
use s3imports::aws::{Clients, load_config};
use s3imports::discover::Discovery;
use s3imports::stack::Stack;

#[tokio::main]
async fn main() -> Result<(), Error> {
    s3imports::telemetry::init_lambda();
    let clients = Clients::new(&load_config().await);
    let discovery = Discovery::from_env(&clients, &Stack::from_env()).await?;
    let discovery = &discovery;
    lambda_runtime::run(service_fn(move |event| async move {
        s3imports_discovery::handler(discovery, &SystemClock, event).await
    }))
    .await
}
