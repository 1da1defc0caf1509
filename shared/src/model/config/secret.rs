//! A reference to a secret: configs name secrets, never hold them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Secrets Manager secret: its name or ARN, optionally `#key` to pick one key of a
/// JSON secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretRef(pub String);

impl SecretRef {
    /// (secret id, json key)
    pub fn parts(&self) -> (&str, Option<&str>) {
        match self.0.rsplit_once('#') {
            Some((id, key)) if !key.is_empty() => (id, Some(key)),
            _ => (&self.0, None),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
