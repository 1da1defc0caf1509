//! The import config: one document per import, written by the operator, stored as
//! one item of the configs table, documented in `docs/config.md` and
//! `docs/config.schema.json`.
//!
//! Parsing is strict (unknown fields are errors, so a typo never silently disables
//! a setting) and validation returns every problem at once, each naming its field.
//!
//! `import` holds the document's types, `check` parses and validates it, `redact`
//! shows it without its secret references, `record` is the import as stored.

mod check;
mod import;
mod record;
mod redact;
mod secret;

pub use check::{ConfigError, Problem};
pub use import::{
    Credentials, DuplicateContent, Encryption, EventTimeZone, ImportConfig, ImportKind,
    ImportStatus, MAX_PREVIOUS_KEYS, Notifications, PgpKeyRef, Source,
};
pub use record::ConfigRecord;
pub use secret::SecretRef;

#[cfg(test)]
mod tests;
