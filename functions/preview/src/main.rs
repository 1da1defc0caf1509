use lambda_http::{Error, service_fn};
use s3imports::aws::{Clients, load_config};
use s3imports::stack::Stack;
use s3imports_preview::Api;

#[tokio::main]
async fn main() -> Result<(), Error> {
    s3imports::telemetry::init_lambda();
    let clients = Clients::new(&load_config().await);
    let api = Api::from_env(&clients, &Stack::from_env());
    let api = &api;
    lambda_http::run(service_fn(move |request| async move {
        s3imports_preview::handler(api, request).await
    }))
    .await
}
