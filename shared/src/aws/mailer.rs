//! Sends notification emails with SES (v2).

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use super::configs::StoreError;
use super::{classify_sdk, describe_sdk};
use crate::notify::Email;

#[derive(Debug, Clone)]
pub struct Mailer {
    ses: aws_sdk_sesv2::Client,
    sender: String,
}

impl Mailer {
    pub fn new(ses: aws_sdk_sesv2::Client, sender: impl Into<String>) -> Self {
        Self {
            ses,
            sender: sender.into(),
        }
    }

    pub async fn send(&self, to: &[String], email: &Email) -> Result<(), StoreError> {
        let content = |text: &str| {
            Content::builder()
                .data(text)
                .charset("UTF-8")
                .build()
                .map_err(|e| StoreError::Aws {
                    message: e.to_string(),
                    class: crate::ErrorClass::Permanent,
                })
        };
        let message = Message::builder()
            .subject(content(&email.subject)?)
            .body(Body::builder().text(content(&email.text)?).build())
            .build();
        self.ses
            .send_email()
            .from_email_address(&self.sender)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(to.to_vec()))
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| StoreError::Aws {
                class: classify_sdk(&e),
                message: format!("SES: {}", describe_sdk(&e)),
            })?;
        Ok(())
    }
}
