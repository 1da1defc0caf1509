//! A run's outcome, told: the email, the alerts (SNS and webhooks) and the
//! post-processing of source files.

pub mod alerts;
pub mod email;
pub mod post_process;
