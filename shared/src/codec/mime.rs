//! An email as data, and its MIME encoding for SES's raw content: every header word
//! and body base64, so nothing a file holds can change the message's structure.

use std::fmt::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left as they are in a URL path segment or query value (RFC 3986's
/// unreserved set); everything else is percent-encoded.
pub const URL_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// An email header or address that would break the message's structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MimeError {
    #[error("the {0} address contains a line break or is empty")]
    BadAddress(&'static str),
}

impl Email {
    /// The email as a MIME message (RFC 5322, 2045-2047, 2231): the text, then each
    /// attachment, all base64, so no content (customer file names and rows included)
    /// can end a part or add a header.
    pub fn to_mime(
        &self,
        from: &str,
        to: &[String],
        date: DateTime<Utc>,
    ) -> Result<String, MimeError> {
        let address_ok = |a: &str| !a.is_empty() && !a.contains(['\r', '\n']);
        if !address_ok(from) {
            return Err(MimeError::BadAddress("sender"));
        }
        if !to.iter().all(|a| address_ok(a)) {
            return Err(MimeError::BadAddress("recipient"));
        }
        // Unique enough that no base64 line (A-Z a-z 0-9 + / =) can contain it.
        let boundary = format!("=_s3imports_{}", uuid::Uuid::new_v4().simple());
        let mut m = String::new();
        let _ = write!(m, "From: {from}\r\n");
        let _ = write!(m, "To: {}\r\n", to.join(", "));
        let _ = write!(m, "Subject: {}\r\n", encode_header_words(&self.subject));
        let _ = write!(m, "Date: {}\r\n", date.to_rfc2822());
        m.push_str("MIME-Version: 1.0\r\n");
        let _ = write!(
            m,
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
        );
        let _ = write!(m, "--{boundary}\r\n");
        m.push_str("Content-Type: text/plain; charset=UTF-8\r\n");
        m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        push_base64_lines(&mut m, self.text.as_bytes());
        for a in &self.attachments {
            let _ = write!(m, "--{boundary}\r\n");
            let name = short_file_name(&a.filename);
            let ascii_name = ascii_file_name(&name);
            let _ = write!(
                m,
                "Content-Type: {}; name=\"{ascii_name}\"\r\n",
                content_type_token(&a.content_type)
            );
            m.push_str("Content-Transfer-Encoding: base64\r\n");
            let _ = write!(
                m,
                "Content-Disposition: attachment; filename=\"{ascii_name}\""
            );
            // RFC 2231's form only where the plain one had to change the name: some
            // readers prefer the plain one when both are given.
            if ascii_name != name {
                let _ = write!(
                    m,
                    ";\r\n filename*=UTF-8''{}",
                    utf8_percent_encode(&name, URL_VALUE)
                );
            }
            m.push_str("\r\n\r\n");
            push_base64_lines(&mut m, &a.data);
        }
        let _ = write!(m, "--{boundary}--\r\n");
        Ok(m)
    }
}

/// RFC 2047 encoded words, each within the 75-character limit, folded onto lines of
/// their own: any subject (non-ASCII, or with line breaks from a config's name)
/// becomes one safe header value.
fn encode_header_words(s: &str) -> String {
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        // 45 bytes of UTF-8 encode to 60 characters, 72 with the `=?UTF-8?B?` frame.
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", BASE64.encode(w)))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// The most characters of a file name kept in headers: with RFC 2231's encoding (up to
/// 12 bytes a character) a header line stays under RFC 5322's 998.
const MAX_NAME_CHARS: usize = 80;

/// A file name cut to its last [`MAX_NAME_CHARS`] characters (which hold its
/// extension).
fn short_file_name(name: &str) -> String {
    let count = name.chars().count();
    name.chars()
        .skip(count.saturating_sub(MAX_NAME_CHARS))
        .collect()
}

/// The name as an RFC 2045 quoted string's content: printable ASCII other than `"`
/// and `\`, anything else replaced by `_`.
fn ascii_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A media type made only of token characters (falls back to octet-stream).
fn content_type_token(t: &str) -> &str {
    let ok = t.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"/.+-".contains(&c))
    });
    if ok { t } else { "application/octet-stream" }
}

/// Base64 in lines of 76 characters (RFC 2045).
fn push_base64_lines(out: &mut String, data: &[u8]) {
    let encoded = BASE64.encode(data);
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Utc;

    use super::*;

    fn decode_words(header: &str) -> String {
        header
            .split("\r\n ")
            .map(|w| {
                let inner = w
                    .strip_prefix("=?UTF-8?B?")
                    .and_then(|w| w.strip_suffix("?="))
                    .unwrap();
                String::from_utf8(BASE64.decode(inner).unwrap()).unwrap()
            })
            .collect()
    }

    #[test]
    fn subjects_become_short_encoded_words_whatever_they_hold() {
        for subject in [
            "",
            "[s3imports] CRM users: Successful (3 of 3 rows imported)",
            "Zahlungen für Ünïcödé — 日本語のインポート名がとても長い場合 ✓✓✓✓✓✓✓✓✓✓",
            "evil\r\nBcc: attacker@example.com",
        ] {
            let encoded = encode_header_words(subject);
            assert_eq!(decode_words(&encoded), subject);
            for line in encoded.split("\r\n") {
                assert!(line.len() <= 76, "{line}");
                assert!(!line.contains('\r') && !line.contains('\n'));
            }
        }
    }

    #[test]
    fn mime_refuses_addresses_that_would_add_headers() {
        let email = Email {
            subject: "s".into(),
            text: "t".into(),
            attachments: Vec::new(),
        };
        let now = Utc::now();
        assert_eq!(
            email.to_mime("a@x\r\nBcc: e@x", &["b@x".into()], now),
            Err(MimeError::BadAddress("sender"))
        );
        assert_eq!(
            email.to_mime("a@x", &["b@x\nBcc: e@x".into()], now),
            Err(MimeError::BadAddress("recipient"))
        );
    }

    #[test]
    fn attachment_names_and_types_cannot_break_their_headers() {
        let email = Email {
            subject: "s".into(),
            text: "t".into(),
            attachments: vec![Attachment {
                filename: "a\"b\r\nX-Evil: 1.csv".into(),
                content_type: "text/csv\r\nX-Evil: 2".into(),
                data: b"row\n".to_vec(),
            }],
        };
        let mime = email.to_mime("a@x", &["b@x".into()], Utc::now()).unwrap();
        assert!(!mime.contains("\r\nX-Evil"), "{mime}");
        assert!(mime.contains("filename=\"a_b__X-Evil: 1.csv\""), "{mime}");
        assert!(
            mime.contains("filename*=UTF-8''a%22b%0D%0AX-Evil%3A%201.csv"),
            "{mime}"
        );
        assert!(
            mime.contains("Content-Type: application/octet-stream;"),
            "{mime}"
        );
    }

    #[test]
    fn long_file_names_keep_their_end_and_header_lines_stay_short() {
        let email = Email {
            subject: "s".into(),
            text: "t".into(),
            attachments: vec![Attachment {
                filename: format!("{}.failed.csv", "日".repeat(300)),
                content_type: "text/csv".into(),
                data: b"row\n".to_vec(),
            }],
        };
        let mime = email.to_mime("a@x", &["b@x".into()], Utc::now()).unwrap();
        assert!(mime.lines().all(|l| l.len() <= 998));
        assert!(mime.contains(".failed.csv\""), "{mime}");
    }
}
