//! The CLI's commands: each prints text for people or JSON for scripts.

pub mod config;
pub mod history;
pub mod keys;
pub mod local;
pub mod run;
pub mod segments;
use s3imports::aws::{Clients, load_config};

pub struct Output {
    pub json: bool,
}

impl Output {
    fn emit(&self, value: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            print!("{}", text());
        }
    }
}

async fn clients() -> Clients {
    Clients::new(&load_config().await)
}
