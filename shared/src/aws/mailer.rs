//! Sends notification emails with SES (v2): a simple message when there is nothing
//! to attach, else a raw MIME message (SES's own `Attachment` type is newer than
//! what local emulators record, and raw MIME works everywhere).

use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, RawMessage};

use async_trait::async_trait;

use crate::codec::mime::Email;
use crate::error::{ErrorClass, ServiceError};
use crate::ports::Mailer;

#[derive(Debug, Clone)]
pub struct SesMailer {
    ses: aws_sdk_sesv2::Client,
    sender: String,
}

impl SesMailer {
    pub fn new(ses: aws_sdk_sesv2::Client, sender: impl Into<String>) -> Self {
        Self {
            ses,
            sender: sender.into(),
        }
    }
}

/// SES refuses a message with more than 50 destinations (To, Cc and Bcc together):
/// longer lists go out as several messages, each to at most this many.
/// https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_Destination.html
pub const MAX_DESTINATIONS: usize = 50;

#[async_trait]
impl Mailer for SesMailer {
    /// Every group gets its message: a retryable failure is tried again here (a
    /// retry of the whole email would send the groups before it twice), and a group
    /// that still fails does not keep the others from theirs. The call fails only
    /// when the first group failed (nothing went out, so a retry duplicates nothing);
    /// a later group's failure is logged.
    async fn send(&self, to: &[String], email: &Email) -> Result<(), ServiceError> {
        for (i, group) in to.chunks(MAX_DESTINATIONS).enumerate() {
            let mut tries = 0;
            let sent = loop {
                match self.send_one(group, email).await {
                    Err(e) if e.class == ErrorClass::Retryable && tries < GROUP_TRIES => {
                        tries += 1;
                        super::backoff(tries).await;
                    }
                    other => break other,
                }
            };
            match sent {
                Err(e) if i == 0 => return Err(e),
                Err(e) => {
                    tracing::warn!(group = i + 1, recipients = group.len(), error = %e, "an email's group of recipients did not get it");
                }
                Ok(()) => {}
            }
        }
        Ok(())
    }
}

/// Further tries at one group's message.
const GROUP_TRIES: u32 = 3;

impl SesMailer {
    /// One message to at most [`MAX_DESTINATIONS`] addresses.
    async fn send_one(&self, to: &[String], email: &Email) -> Result<(), ServiceError> {
        let invalid = |e: String| ServiceError::new("SES", "SendEmail", ErrorClass::Permanent, e);
        let content = |text: &str| {
            Content::builder()
                .data(text)
                .charset("UTF-8")
                .build()
                .map_err(|e| invalid(e.to_string()))
        };
        let email_content = if email.attachments.is_empty() {
            let message = Message::builder()
                .subject(content(&email.subject)?)
                .body(Body::builder().text(content(&email.text)?).build())
                .build();
            EmailContent::builder().simple(message).build()
        } else {
            let mime = email
                .to_mime(&self.sender, to, chrono::Utc::now())
                .map_err(|e| invalid(e.to_string()))?;
            let raw = RawMessage::builder()
                .data(Blob::new(mime))
                .build()
                .map_err(|e| invalid(e.to_string()))?;
            EmailContent::builder().raw(raw).build()
        };
        self.ses
            .send_email()
            .from_email_address(&self.sender)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(to.to_vec()))
                    .build(),
            )
            .content(email_content)
            .send()
            .await
            .map_err(|e| super::service_error("SES", "SendEmail", e))?;
        Ok(())
    }
}
