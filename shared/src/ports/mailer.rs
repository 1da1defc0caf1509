//! Sending the run emails.

use async_trait::async_trait;

use crate::codec::mime::Email;
use crate::error::ServiceError;

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, to: &[String], email: &Email) -> Result<(), ServiceError>;
}
