//! File naming: `<prefix>[_]<date-time><extension>` directly in the import's folder.
//!
//! The date-time is matched as the suffix of the name's stem that the format
//! describes, never by splitting on an underscore, because prefixes (event names)
//! hold spaces and underscores themselves.

use std::fmt;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Classify, ErrorClass};

/// The data in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileType {
    #[default]
    Csv,
    Json,
}

impl FileType {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    #[error(
        "`{0}` is not a date-time format: use yyyymmdd, ddmmyyyy, mmddyyyy, mm_yyyy, mon_yyyy, yyyymmdd_hhmm, or a pattern of %Y %m %d %H %M %S %b (e.g. %Y-%m-%d_%H-%M-%S) or %s"
    )]
    Format(String),
    #[error("a date-time format has at most {MAX_FORMAT_CHARS} characters")]
    FormatLength,
    #[error("the file prefix must have 1 to 100 characters")]
    PrefixLength,
    #[error("the file prefix may hold letters, digits, spaces and `_` only; `{0}` is not allowed")]
    PrefixChar(char),
}

impl Classify for NamingError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// One piece of a date-time format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    MonthName,
    Epoch,
    Literal(char),
}

/// A date-time format for file names: MoEngage's names or a strftime-like pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTimeFormat {
    text: String,
    tokens: Vec<Token>,
}

const MOENGAGE_FORMATS: &[(&str, &str)] = &[
    ("mm_yyyy", "%m_%Y"),
    ("ddmmyyyy", "%d%m%Y"),
    ("mmddyyyy", "%m%d%Y"),
    ("yyyymmdd", "%Y%m%d"),
    ("mon_yyyy", "%b_%Y"),
    ("yyyymmdd_hhmm", "%Y%m%d_%H%M"),
];

/// The longest date-time format: names, and so keys, stay bounded (see
/// [`FilePattern::max_name_len`]).
pub const MAX_FORMAT_CHARS: usize = 100;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

impl DateTimeFormat {
    pub fn parse(s: &str) -> Result<Self, NamingError> {
        let text = s.trim();
        if text.chars().count() > MAX_FORMAT_CHARS {
            return Err(NamingError::FormatLength);
        }
        let pattern = MOENGAGE_FORMATS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map_or(text, |(_, p)| p);
        let mut tokens = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                // A `/` would put the date-time in a sub-folder, which never matches.
                if c == '/' {
                    return Err(NamingError::Format(text.into()));
                }
                tokens.push(Token::Literal(c));
                continue;
            }
            tokens.push(match chars.next() {
                Some('Y') => Token::Year,
                Some('m') => Token::Month,
                Some('d') => Token::Day,
                Some('H') => Token::Hour,
                Some('M') => Token::Minute,
                Some('S') => Token::Second,
                Some('b') => Token::MonthName,
                Some('s') => Token::Epoch,
                Some('%') => Token::Literal('%'),
                _ => return Err(NamingError::Format(text.into())),
            });
        }
        if !Self::fields_make_sense(&tokens) {
            return Err(NamingError::Format(text.into()));
        }
        Ok(Self {
            text: text.to_string(),
            tokens,
        })
    }

    /// A year (or `%s` alone), each field at most once, and no smaller unit without
    /// the one above it: `%Y%d` or `%Y%m%d%M` would name times ambiguously.
    fn fields_make_sense(tokens: &[Token]) -> bool {
        let count = |t: &Token| tokens.iter().filter(|x| *x == t).count();
        let months = count(&Token::Month) + count(&Token::MonthName);
        if tokens.contains(&Token::Epoch) {
            return tokens.len() == 1;
        }
        let fields = [
            Token::Year,
            Token::Day,
            Token::Hour,
            Token::Minute,
            Token::Second,
        ];
        if fields.iter().any(|f| count(f) > 1) || months > 1 {
            return false;
        }
        let has = |t: &Token| count(t) == 1;
        has(&Token::Year)
            && (!has(&Token::Day) || months == 1)
            && (!has(&Token::Hour) || has(&Token::Day))
            && (!has(&Token::Minute) || has(&Token::Hour))
            && (!has(&Token::Second) || has(&Token::Minute))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether names in this format sort as their times do (fixed width, most
    /// significant first), which lets discovery list with `StartAfter`.
    pub fn sorts_lexically(&self) -> bool {
        let mut last = None;
        for t in &self.tokens {
            let rank = match t {
                Token::Year => 0,
                Token::Month => 1,
                Token::Day => 2,
                Token::Hour => 3,
                Token::Minute => 4,
                Token::Second => 5,
                // Names sort alphabetically, epoch seconds vary in width.
                Token::MonthName | Token::Epoch => return false,
                Token::Literal(_) => continue,
            };
            if last.is_some_and(|l| rank <= l) {
                return false;
            }
            last = Some(rank);
        }
        true
    }

    /// Matches `text` exactly; the time it names (missing fields: day 1, 00:00:00).
    pub fn parse_time(&self, text: &str) -> Option<NaiveDateTime> {
        let b = text.as_bytes();
        let mut i = 0;
        let (mut y, mut mo, mut d, mut h, mut mi, mut s) = (None, None, None, 0, 0, 0);
        let digits = |i: &mut usize, n: usize| -> Option<u32> {
            let end = *i + n;
            let part = b.get(*i..end)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            *i = end;
            std::str::from_utf8(part).ok()?.parse().ok()
        };
        for t in &self.tokens {
            match t {
                Token::Year => y = Some(digits(&mut i, 4)? as i32),
                Token::Month => mo = Some(digits(&mut i, 2)?),
                Token::Day => d = Some(digits(&mut i, 2)?),
                Token::Hour => h = digits(&mut i, 2)?,
                Token::Minute => mi = digits(&mut i, 2)?,
                Token::Second => s = digits(&mut i, 2)?,
                Token::MonthName => {
                    // Any case: `jan`, `Jan` and `JAN` are all January.
                    let part = text.get(i..i + 3)?.to_ascii_lowercase();
                    mo = Some(MONTHS.iter().position(|m| *m == part)? as u32 + 1);
                    i += 3;
                }
                Token::Epoch => {
                    // `%s` stands alone, so it is the whole text: 1 to 12 digits.
                    let rest = text.get(i..)?;
                    if rest.is_empty()
                        || rest.len() > 12
                        || !rest.bytes().all(|c| c.is_ascii_digit())
                    {
                        return None;
                    }
                    let secs: i64 = rest.parse().ok()?;
                    return chrono::DateTime::from_timestamp(secs, 0).map(|t| t.naive_utc());
                }
                Token::Literal(c) => {
                    let mut buf = [0u8; 4];
                    let lit = c.encode_utf8(&mut buf).as_bytes();
                    if b.get(i..i + lit.len())? != lit {
                        return None;
                    }
                    i += lit.len();
                }
            }
        }
        if i != b.len() {
            return None;
        }
        NaiveDate::from_ymd_opt(y?, mo.unwrap_or(1), d.unwrap_or(1))?.and_hms_opt(h, mi, s)
    }

    /// The most bytes a date-time text in this format can have.
    pub fn max_len(&self) -> usize {
        self.tokens
            .iter()
            .map(|t| match t {
                Token::Year => 4,
                Token::Month | Token::Day | Token::Hour | Token::Minute | Token::Second => 2,
                Token::MonthName => 3,
                Token::Epoch => 12,
                Token::Literal(c) => c.len_utf8(),
            })
            .sum()
    }

    /// A sample date-time text (31 January 2022, 12:59:30).
    pub fn example(&self) -> String {
        self.tokens
            .iter()
            .map(|t| match t {
                Token::Year => "2022".to_string(),
                Token::Month => "01".into(),
                Token::Day => "31".into(),
                Token::Hour => "12".into(),
                Token::Minute => "59".into(),
                Token::Second => "30".into(),
                Token::MonthName => "jan".into(),
                Token::Epoch => "1643633970".into(),
                Token::Literal(c) => c.to_string(),
            })
            .collect()
    }
}

impl Serialize for DateTimeFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for DateTimeFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for DateTimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Letters, digits, spaces and `_`, 1 to 100 characters.
pub fn validate_prefix(prefix: &str) -> Result<(), NamingError> {
    if prefix.is_empty() || prefix.chars().count() > 100 {
        return Err(NamingError::PrefixLength);
    }
    match prefix
        .chars()
        .find(|c| !(c.is_alphanumeric() || *c == ' ' || *c == '_'))
    {
        Some(c) => Err(NamingError::PrefixChar(c)),
        None => Ok(()),
    }
}

/// Which files an import takes from its folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePattern {
    pub folder: String,
    pub prefix: String,
    pub format: DateTimeFormat,
    pub file_type: FileType,
}

/// A key that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedFile {
    pub key: String,
    pub name: String,
    pub timestamp: NaiveDateTime,
    pub datetime_text: String,
    pub gzip: bool,
    pub pgp: bool,
}

/// Why a key does not match, part by part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    NotInFolder {
        folder: String,
    },
    InSubFolder {
        folder: String,
    },
    Extension {
        found: String,
        expected: Vec<String>,
    },
    Prefix {
        expected: String,
        found_name: String,
    },
    DateTime {
        text: String,
        format: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInFolder { folder } => write!(f, "the key is not in the folder `{folder}/`"),
            Self::InSubFolder { folder } => write!(
                f,
                "the key is in a sub-folder of `{folder}/`; only files directly in the folder are imported"
            ),
            Self::Extension { found, expected } => write!(
                f,
                "the extension `{found}` is not one of {}",
                expected.join(", ")
            ),
            Self::Prefix {
                expected,
                found_name,
            } => write!(
                f,
                "the name `{found_name}` does not start with the prefix `{expected}`"
            ),
            Self::DateTime { text, format } => write!(
                f,
                "the date-time `{text}` does not match the format `{format}`"
            ),
        }
    }
}

impl std::error::Error for Mismatch {}

impl Classify for Mismatch {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

const WRAPPERS: &[(&str, bool, bool)] = &[
    ("", false, false),
    (".gz", true, false),
    (".pgp", false, true),
    (".gpg", false, true),
    (".asc", false, true),
    (".gz.pgp", true, true),
    (".gz.gpg", true, true),
    (".gz.asc", true, true),
];

impl FilePattern {
    /// The most bytes a file name this pattern matches can have: prefix, `_`, the
    /// longest date-time and the longest extension. With the folder it bounds every key
    /// an import can record.
    pub fn max_name_len(&self) -> usize {
        let separator = usize::from(!self.prefix.ends_with('_'));
        let extension = self.extensions().iter().map(String::len).max().unwrap_or(0);
        self.prefix.len() + separator + self.format.max_len() + extension
    }

    /// Every extension accepted, e.g. `.csv`, `.csv.gz`, `.csv.pgp`.
    pub fn extensions(&self) -> Vec<String> {
        WRAPPERS
            .iter()
            .map(|(w, _, _)| format!(".{}{w}", self.file_type.extension()))
            .collect()
    }

    /// `folder/`, or nothing for the bucket root (which config refuses, but a
    /// pattern built by hand should not panic or mis-match on it).
    fn key_prefix(&self) -> String {
        match self.folder.trim_matches('/') {
            "" => String::new(),
            folder => format!("{folder}/"),
        }
    }

    /// Splits `name` into its stem and whether it is gzipped and encrypted, when its
    /// extension (any case) is one this file type accepts.
    fn split_extension<'n>(&self, name: &'n str) -> Option<(&'n str, bool, bool)> {
        let ext = self.file_type.extension();
        // Longest wrapper first, so `x.csv.gz.pgp` is not taken as `.pgp` on `x.csv.gz`.
        let mut wrappers: Vec<&(&str, bool, bool)> = WRAPPERS.iter().collect();
        wrappers.sort_by_key(|(w, _, _)| std::cmp::Reverse(w.len()));
        wrappers.into_iter().find_map(|(w, gz, pgp)| {
            let suffix = format!(".{ext}{w}");
            let cut = name.len().checked_sub(suffix.len())?;
            // `get` keeps a multi-byte character just before the extension from
            // panicking the slice.
            let (stem, tail) = (name.get(..cut)?, name.get(cut..)?);
            tail.eq_ignore_ascii_case(&suffix)
                .then_some((stem, *gz, *pgp))
        })
    }

    /// Matches a full S3 key, or says which part (checked in the order folder,
    /// sub-folder, extension, prefix, date-time) is wrong.
    pub fn match_key(&self, key: &str) -> Result<MatchedFile, Mismatch> {
        let folder = self.folder.trim_matches('/');
        let Some(name) = key.strip_prefix(&self.key_prefix()) else {
            return Err(Mismatch::NotInFolder {
                folder: folder.into(),
            });
        };
        if name.contains('/') {
            return Err(Mismatch::InSubFolder {
                folder: folder.into(),
            });
        }
        let Some((stem, gzip, pgp)) = self.split_extension(name) else {
            let found = name
                .find('.')
                .map_or_else(|| "(none)".to_string(), |i| name[i..].to_string());
            return Err(Mismatch::Extension {
                found,
                expected: self.extensions(),
            });
        };
        let Some(rest) = stem.strip_prefix(&self.prefix) else {
            return Err(Mismatch::Prefix {
                expected: self.prefix.clone(),
                found_name: name.into(),
            });
        };
        // One optional `_` between prefix and date-time, unless the prefix has it.
        let text = if self.prefix.ends_with('_') {
            rest
        } else {
            rest.strip_prefix('_').unwrap_or(rest)
        };
        let timestamp = self
            .format
            .parse_time(text)
            .ok_or_else(|| Mismatch::DateTime {
                text: text.into(),
                format: self.format.as_str().into(),
            })?;
        Ok(MatchedFile {
            key: key.into(),
            name: name.into(),
            timestamp,
            datetime_text: text.into(),
            gzip,
            pgp,
        })
    }

    /// For formats that sort lexically: the `StartAfter` key that lists files from the
    /// newest processed one's time on, same-time files included. It is the key's stem
    /// (`folder/prefix[_]date-time`, separator as in that key): `StartAfter` is
    /// exclusive and every key of that time continues past the stem, so all are listed.
    pub fn start_after(&self, newest_processed: &MatchedFile) -> Option<String> {
        if !self.format.sorts_lexically() {
            return None;
        }
        let (stem, _, _) = self.split_extension(&newest_processed.name)?;
        if !stem.ends_with(&newest_processed.datetime_text) {
            return None;
        }
        Some(format!("{}{stem}", self.key_prefix()))
    }

    /// An example file name for docs and messages: 31 January 2022, 12:59:30.
    pub fn example_name(&self) -> String {
        let sep = if self.prefix.ends_with('_') { "" } else { "_" };
        format!(
            "{}{sep}{}.{}",
            self.prefix,
            self.format.example(),
            self.file_type.extension()
        )
    }
}

/// Sorts files oldest first by the time in their names; ties by key, so the order is
/// the same on every listing.
pub fn sort_by_time(files: &mut [MatchedFile]) {
    files.sort_by(|a, b| (a.timestamp, &a.key).cmp(&(b.timestamp, &b.key)));
}

/// The newest file by the time in its name (ties: the greatest key).
pub fn newest<'a>(files: impl IntoIterator<Item = &'a MatchedFile>) -> Option<&'a MatchedFile> {
    files
        .into_iter()
        .max_by(|a, b| (a.timestamp, &a.key).cmp(&(b.timestamp, &b.key)))
}

#[cfg(test)]
mod tests;
