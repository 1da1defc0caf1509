//! Sending the run emails.

use async_trait::async_trait;

use crate::error::ServiceError;
use crate::notify::email::Email;

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, to: &[String], email: &Email) -> Result<(), ServiceError>;
}
