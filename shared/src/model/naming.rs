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
mod tests {
    use super::*;

    fn pattern(prefix: &str, format: &str) -> FilePattern {
        FilePattern {
            folder: "in/users".into(),
            prefix: prefix.into(),
            format: DateTimeFormat::parse(format).unwrap(),
            file_type: FileType::Csv,
        }
    }

    fn at(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    #[test]
    fn every_format_reads_its_example_name() {
        let cases = [
            ("yyyymmdd", "20220131", at(2022, 1, 31, 0, 0, 0)),
            ("ddmmyyyy", "31012022", at(2022, 1, 31, 0, 0, 0)),
            ("mmddyyyy", "01312022", at(2022, 1, 31, 0, 0, 0)),
            ("mm_yyyy", "01_2022", at(2022, 1, 1, 0, 0, 0)),
            ("mon_yyyy", "jan_2022", at(2022, 1, 1, 0, 0, 0)),
            ("mon_yyyy", "JAN_2022", at(2022, 1, 1, 0, 0, 0)),
            ("mon_yyyy", "Dec_2021", at(2021, 12, 1, 0, 0, 0)),
            ("yyyymmdd_hhmm", "20220131_1259", at(2022, 1, 31, 12, 59, 0)),
            ("%Y%m%d", "20220131", at(2022, 1, 31, 0, 0, 0)),
            ("%Y-%m-%d", "2022-01-31", at(2022, 1, 31, 0, 0, 0)),
            ("%d%m%Y", "31012022", at(2022, 1, 31, 0, 0, 0)),
            ("%m%d%Y", "01312022", at(2022, 1, 31, 0, 0, 0)),
            (
                "%Y%m%d%H%M%S",
                "20220131125930",
                at(2022, 1, 31, 12, 59, 30),
            ),
            ("%Y%m%d%H%M", "202201311259", at(2022, 1, 31, 12, 59, 0)),
            (
                "%Y-%m-%d_%H-%M-%S",
                "2022-01-31_12-59-30",
                at(2022, 1, 31, 12, 59, 30),
            ),
            (
                "%Y-%m-%dT%H-%M-%S",
                "2022-01-31T12-59-30",
                at(2022, 1, 31, 12, 59, 30),
            ),
            ("%s", "1643633970", at(2022, 1, 31, 12, 59, 30)),
        ];
        for (format, text, want) in cases {
            let p = pattern("registered_user_data_", format);
            let key = format!("in/users/registered_user_data_{text}.csv");
            let m = p
                .match_key(&key)
                .unwrap_or_else(|e| panic!("{format} {key}: {e}"));
            assert_eq!(m.timestamp, want, "{format}");
            assert_eq!(m.datetime_text, text);
            // The documented example name matches too.
            assert!(
                p.match_key(&format!("in/users/{}", p.example_name()))
                    .is_ok(),
                "{format}"
            );
        }
    }

    #[test]
    fn invalid_dates_and_formats() {
        let p = pattern("registered_user_data_", "ddmmyyyy");
        let e = p
            .match_key("in/users/registered_user_data_31022022.csv")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the date-time `31022022` does not match the format `ddmmyyyy`"
        );
        assert!(
            p.match_key("in/users/registered_user_data_3101202.csv")
                .is_err()
        );
        for bad in ["", "yyyy", "%Q", "%m%d", "%s%Y", "%Y/%m/%d"] {
            assert!(DateTimeFormat::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_with_spaces_and_underscores_in_the_prefix() {
        let p = pattern("Purchase Summary_", "ddmmyyyy");
        let m = p
            .match_key("in/users/Purchase Summary_31011997.csv")
            .unwrap();
        assert_eq!(m.timestamp, at(1997, 1, 31, 0, 0, 0));
        let p = pattern("Purchase_Transaction_", "yyyymmdd_hhmm");
        let m = p
            .match_key("in/users/Purchase_Transaction_20220131_1259.csv")
            .unwrap();
        assert_eq!(m.timestamp, at(2022, 1, 31, 12, 59, 0));
        // A prefix given without its underscore takes one as the separator.
        let p = pattern("users", "yyyymmdd");
        assert!(p.match_key("in/users/users_20220131.csv").is_ok());
        assert!(p.match_key("in/users/users20220131.csv").is_ok());
    }

    #[test]
    fn wrappers_and_extensions() {
        let p = pattern("u_", "yyyymmdd");
        let cases = [
            ("u_20220131.csv", false, false),
            ("u_20220131.csv.gz", true, false),
            ("u_20220131.CSV.PGP", false, true),
            ("u_20220131.csv.gpg", false, true),
            ("u_20220131.csv.asc", false, true),
            ("u_20220131.csv.gz.pgp", true, true),
        ];
        for (name, gzip, pgp) in cases {
            let m = p.match_key(&format!("in/users/{name}")).unwrap();
            assert_eq!((m.gzip, m.pgp), (gzip, pgp), "{name}");
        }
        let e = p.match_key("in/users/u_20220131.json").unwrap_err();
        assert!(matches!(e, Mismatch::Extension { .. }), "{e}");
        assert!(e.to_string().contains(".csv.gz.pgp"));
        let json = FilePattern {
            file_type: FileType::Json,
            ..p
        };
        assert!(json.match_key("in/users/u_20220131.json.gz").is_ok());
    }

    #[test]
    fn explains_which_part_is_wrong() {
        let p = pattern("registered_user_data_", "yyyymmdd");
        let why = |k: &str| p.match_key(k).unwrap_err();
        assert!(matches!(
            why("other/registered_user_data_20220131.csv"),
            Mismatch::NotInFolder { .. }
        ));
        assert!(matches!(
            why("in/users/sub/registered_user_data_20220131.csv"),
            Mismatch::InSubFolder { .. }
        ));
        assert!(matches!(
            why("in/users/registered_user_data_20220131.txt"),
            Mismatch::Extension { .. }
        ));
        assert!(matches!(
            why("in/users/anonymous_user_data_20220131.csv"),
            Mismatch::Prefix { .. }
        ));
        assert!(matches!(
            why("in/users/registered_user_data_2022013.csv"),
            Mismatch::DateTime { .. }
        ));
        assert!(matches!(
            why("in/users-old/registered_user_data_20220131.csv"),
            Mismatch::NotInFolder { .. }
        ));
    }

    #[test]
    fn lexical_formats_and_start_after() {
        for (f, lexical) in [
            ("yyyymmdd", true),
            ("yyyymmdd_hhmm", true),
            ("%Y-%m-%d_%H-%M-%S", true),
            ("ddmmyyyy", false),
            ("mmddyyyy", false),
            ("mm_yyyy", false),
            ("mon_yyyy", false),
            ("%s", false),
        ] {
            assert_eq!(
                DateTimeFormat::parse(f).unwrap().sorts_lexically(),
                lexical,
                "{f}"
            );
        }
        let p = pattern("u_", "yyyymmdd");
        let newest = p.match_key("in/users/u_20220131.csv.gz").unwrap();
        let after = p.start_after(&newest).unwrap();
        assert!(after.as_str() < "in/users/u_20220131.csv");
        assert!(after.as_str() < "in/users/u_20220131.csv.gz");
        assert!(after.as_str() > "in/users/u_20220130.csv");
        let p = pattern("u_", "ddmmyyyy");
        let m = p.match_key("in/users/u_31012022.csv").unwrap();
        assert_eq!(p.start_after(&m), None);
    }

    #[test]
    fn orders_by_time_not_by_name() {
        let p = pattern("u_", "ddmmyyyy");
        let mut files: Vec<MatchedFile> = ["u_01022022.csv", "u_31012022.csv", "u_15012021.csv"]
            .iter()
            .map(|n| p.match_key(&format!("in/users/{n}")).unwrap())
            .collect();
        sort_by_time(&mut files);
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["u_15012021.csv", "u_31012022.csv", "u_01022022.csv"]
        );
        assert_eq!(newest(&files).unwrap().name, "u_01022022.csv");
        let months = pattern("u_", "mon_yyyy");
        let a = months.match_key("in/users/u_feb_2022.csv").unwrap();
        let b = months.match_key("in/users/u_dec_2021.csv").unwrap();
        assert!(b.timestamp < a.timestamp);
    }

    #[test]
    fn prefixes() {
        assert!(validate_prefix("Purchase Summary_").is_ok());
        assert_eq!(validate_prefix("a/b"), Err(NamingError::PrefixChar('/')));
        assert_eq!(validate_prefix(""), Err(NamingError::PrefixLength));
        assert_eq!(
            validate_prefix(&"x".repeat(101)),
            Err(NamingError::PrefixLength)
        );
    }

    #[test]
    fn exact_match_values() {
        let p = pattern("registered_user_data_", "yyyymmdd");
        let m = p
            .match_key("in/users/registered_user_data_20220131.CSV.GZ.PGP")
            .unwrap();
        assert_eq!(
            m,
            MatchedFile {
                key: "in/users/registered_user_data_20220131.CSV.GZ.PGP".into(),
                name: "registered_user_data_20220131.CSV.GZ.PGP".into(),
                timestamp: at(2022, 1, 31, 0, 0, 0),
                datetime_text: "20220131".into(),
                gzip: true,
                pgp: true,
            }
        );
        assert_eq!(p.example_name(), "registered_user_data_20220131.csv");
        let json = FilePattern {
            file_type: FileType::Json,
            ..pattern("users", "%Y-%m-%d_%H-%M-%S")
        };
        assert_eq!(json.example_name(), "users_2022-01-31_12-59-30.json");
        assert_eq!(
            pattern("Purchase Summary_", "mon_yyyy").example_name(),
            "Purchase Summary_jan_2022.csv"
        );
        assert_eq!(pattern("x", "%s").example_name(), "x_1643633970.csv");
    }

    #[test]
    fn every_extension_of_each_type() {
        for (file_type, ext) in [(FileType::Csv, "csv"), (FileType::Json, "json")] {
            let p = FilePattern {
                file_type,
                ..pattern("u_", "yyyymmdd")
            };
            let want = [
                ("", false, false),
                (".gz", true, false),
                (".pgp", false, true),
                (".gpg", false, true),
                (".asc", false, true),
                (".gz.pgp", true, true),
                (".gz.gpg", true, true),
                (".gz.asc", true, true),
            ];
            assert_eq!(
                p.extensions(),
                want.iter()
                    .map(|(w, _, _)| format!(".{ext}{w}"))
                    .collect::<Vec<_>>()
            );
            for (w, gzip, pgp) in want {
                for name in [
                    format!("u_20220131.{ext}{w}"),
                    format!("u_20220131.{ext}{w}")
                        .to_uppercase()
                        .replace("U_", "u_"),
                ] {
                    let m = p.match_key(&format!("in/users/{name}")).unwrap();
                    assert_eq!(
                        (m.gzip, m.pgp, m.datetime_text.as_str()),
                        (gzip, pgp, "20220131"),
                        "{name}"
                    );
                }
            }
            for bad in [".gz", ".pgp", ".csv.bz2", ".pgp.gz", ".txt", ""] {
                let key = format!("in/users/u_20220131{bad}");
                assert!(
                    matches!(p.match_key(&key), Err(Mismatch::Extension { .. })),
                    "{key}"
                );
            }
        }
        assert_eq!(FileType::default(), FileType::Csv);
        assert_eq!(FileType::Json.extension(), "json");
        assert_eq!(serde_json::to_string(&FileType::Json).unwrap(), "\"json\"");
        assert_eq!(
            serde_json::from_str::<FileType>("\"csv\"").unwrap(),
            FileType::Csv
        );
    }

    #[test]
    fn mismatch_messages() {
        let p = pattern("registered_user_data_", "yyyymmdd");
        let why = |k: &str| p.match_key(k).unwrap_err().to_string();
        assert_eq!(
            why("other/registered_user_data_20220131.csv"),
            "the key is not in the folder `in/users/`"
        );
        assert_eq!(
            why("in/users/2022/registered_user_data_20220131.csv"),
            "the key is in a sub-folder of `in/users/`; only files directly in the folder are imported"
        );
        assert_eq!(
            why("in/users/registered_user_data_20220131.xlsx"),
            "the extension `.xlsx` is not one of .csv, .csv.gz, .csv.pgp, .csv.gpg, .csv.asc, .csv.gz.pgp, .csv.gz.gpg, .csv.gz.asc"
        );
        assert_eq!(
            why("in/users/registered_user_data_20220131"),
            "the extension `(none)` is not one of .csv, .csv.gz, .csv.pgp, .csv.gpg, .csv.asc, .csv.gz.pgp, .csv.gz.gpg, .csv.gz.asc"
        );
        assert_eq!(
            why("in/users/Registered_user_data_20220131.csv"),
            "the name `Registered_user_data_20220131.csv` does not start with the prefix `registered_user_data_`"
        );
        assert_eq!(
            why("in/users/registered_user_data_2022013.csv"),
            "the date-time `2022013` does not match the format `yyyymmdd`"
        );
        // Extension is checked before the prefix, the prefix before the date-time.
        assert!(matches!(
            p.match_key("in/users/other_x.txt"),
            Err(Mismatch::Extension { .. })
        ));
        assert!(matches!(
            p.match_key("in/users/other_x.csv"),
            Err(Mismatch::Prefix { .. })
        ));
        assert_eq!(
            p.match_key("in/users/x.csv").unwrap_err().class(),
            ErrorClass::Permanent
        );
        assert_eq!(NamingError::PrefixLength.class(), ErrorClass::Permanent);
    }

    #[test]
    fn separator_rules() {
        // The prefix ends with `_`: no second one allowed.
        let p = pattern("u_", "yyyymmdd");
        assert!(matches!(
            p.match_key("in/users/u__20220131.csv"),
            Err(Mismatch::DateTime { .. })
        ));
        // The prefix has no `_`: at most one.
        let p = pattern("u", "yyyymmdd");
        assert_eq!(
            p.match_key("in/users/u_20220131.csv")
                .unwrap()
                .datetime_text,
            "20220131"
        );
        assert!(p.match_key("in/users/u__20220131.csv").is_err());
        // Another event whose name starts with this one's is not this event.
        let p = pattern("Purchase", "yyyymmdd");
        assert_eq!(
            p.match_key("in/users/Purchase_Summary_20220131.csv")
                .unwrap_err(),
            Mismatch::DateTime {
                text: "Summary_20220131".into(),
                format: "yyyymmdd".into()
            }
        );
        // Date-time text must run exactly to the end of the stem.
        let p = pattern("Purchase_Transaction_", "yyyymmdd_hhmm");
        for bad in [
            "Purchase_Transaction_20220131.csv",
            "Purchase_Transaction_20220131_1259_1.csv",
            "Purchase_Transaction_20220131_2460.csv",
            "Purchase_Transaction_x20220131_1259.csv",
        ] {
            assert!(p.match_key(&format!("in/users/{bad}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_are_validated() {
        let p = pattern("u_", "ddmmyyyy");
        assert_eq!(
            p.match_key("in/users/u_29022024.csv").unwrap().timestamp,
            at(2024, 2, 29, 0, 0, 0)
        );
        for bad in [
            "29022023",
            "31042022",
            "00012022",
            "01132022",
            "3101202a",
            "310120222",
        ] {
            assert!(
                p.match_key(&format!("in/users/u_{bad}.csv")).is_err(),
                "{bad}"
            );
        }
        let p = pattern("u_", "%Y%m%d%H%M%S");
        assert!(p.match_key("in/users/u_20220131240000.csv").is_err());
        assert!(p.match_key("in/users/u_20220131236000.csv").is_err());
        let p = pattern("u_", "mm_yyyy");
        assert!(p.match_key("in/users/u_13_2022.csv").is_err());
        assert!(p.match_key("in/users/u_1_2022.csv").is_err());
        let p = pattern("u_", "mon_yyyy");
        assert!(p.match_key("in/users/u_janu_2022.csv").is_err());
        assert!(p.match_key("in/users/u_jän_2022.csv").is_err());
        let p = pattern("u_", "%s");
        assert_eq!(
            p.match_key("in/users/u_0.csv").unwrap().timestamp,
            at(1970, 1, 1, 0, 0, 0)
        );
        assert!(p.match_key("in/users/u_-5.csv").is_err());
        assert!(p.match_key("in/users/u_1643633970000000.csv").is_err());
    }

    #[test]
    fn format_parsing_and_serde() {
        // MoEngage's names are recognised in any case; the text is kept as given.
        let f = DateTimeFormat::parse("YYYYMMDD").unwrap();
        assert_eq!(f.as_str(), "YYYYMMDD");
        assert!(f.sorts_lexically());
        assert_eq!(f.to_string(), "YYYYMMDD");
        let custom = DateTimeFormat::parse("%d.%m.%Y %Hh").unwrap();
        assert_eq!(custom.example(), "31.01.2022 12h");
        assert_eq!(
            custom.parse_time("01.02.2022 07h"),
            Some(at(2022, 2, 1, 7, 0, 0))
        );
        assert_eq!(
            DateTimeFormat::parse("%Y%%%m")
                .unwrap()
                .parse_time("2022%03"),
            Some(at(2022, 3, 1, 0, 0, 0))
        );
        for bad in [
            "%Y%Y",
            "%Y%m%m",
            "%b%m%Y",
            "%Y%d",
            "%Y%m%d%M",
            "%Y%m%d%H%S",
            "%Y%",
            "%s_%s",
        ] {
            assert!(DateTimeFormat::parse(bad).is_err(), "{bad}");
        }
        let f: DateTimeFormat = serde_json::from_str("\"%Y-%m-%d\"").unwrap();
        assert_eq!(serde_json::to_string(&f).unwrap(), "\"%Y-%m-%d\"");
        let e = serde_json::from_str::<DateTimeFormat>("\"yyyy\"").unwrap_err();
        assert!(
            e.to_string().contains("`yyyy` is not a date-time format"),
            "{e}"
        );
        for (f, lexical) in [
            ("%Y%m%d", true),
            ("%Y-%m-%d", true),
            ("%Y%m%d%H%M%S", true),
            ("%Y%m%d%H%M", true),
            ("%Y-%m-%dT%H-%M-%S", true),
            ("%Y_%m", true),
            ("%d%m%Y", false),
            ("%m%d%Y", false),
            ("%b_%Y", false),
            ("%Y_%b", false),
        ] {
            assert_eq!(
                DateTimeFormat::parse(f).unwrap().sorts_lexically(),
                lexical,
                "{f}"
            );
        }
    }

    #[test]
    fn start_after_values() {
        let p = pattern("Purchase_Transaction_", "yyyymmdd_hhmm");
        let m = p
            .match_key("in/users/Purchase_Transaction_20220131_1259.csv.gz.pgp")
            .unwrap();
        assert_eq!(
            p.start_after(&m).as_deref(),
            Some("in/users/Purchase_Transaction_20220131_1259")
        );
        // The separator is taken from the key itself.
        let p = pattern("users", "%Y%m%d");
        let with = p.match_key("in/users/users_20220131.csv").unwrap();
        let without = p.match_key("in/users/users20220131.csv").unwrap();
        assert_eq!(
            p.start_after(&with).as_deref(),
            Some("in/users/users_20220131")
        );
        assert_eq!(
            p.start_after(&without).as_deref(),
            Some("in/users/users20220131")
        );
        for f in ["mm_yyyy", "mon_yyyy", "mmddyyyy", "%s"] {
            let p = pattern("u_", f);
            let m = p
                .match_key(&format!("in/users/{}", p.example_name()))
                .unwrap();
            assert_eq!(p.start_after(&m), None, "{f}");
        }
    }

    #[test]
    fn newest_and_ties() {
        let p = pattern("u", "yyyymmdd");
        let mut files: Vec<MatchedFile> = [
            "u_20220131.csv.gz",
            "u_20220131.csv",
            "u20220131.csv",
            "u_20220130.csv",
        ]
        .iter()
        .map(|n| p.match_key(&format!("in/users/{n}")).unwrap())
        .collect();
        sort_by_time(&mut files);
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "u_20220130.csv",
                "u20220131.csv",
                "u_20220131.csv",
                "u_20220131.csv.gz"
            ]
        );
        assert_eq!(newest(&files).unwrap().name, "u_20220131.csv.gz");
        assert_eq!(newest(&[]), None);
    }

    #[test]
    fn odd_keys_never_panic() {
        let p = pattern("u_", "mon_yyyy");
        for key in [
            "",
            "in/users",
            "in/users/",
            "in/users/.csv",
            "in/users/u_.csv",
            "in/users/u_ja.csv",
            "in/users/u_é.csv",
            "in/users/éé.csv",
            "in/users/u_jan_2022é.csv",
            "in/users/u_jan_2022.csvé",
        ] {
            assert!(p.match_key(key).is_err(), "{key}");
        }
        let root = FilePattern {
            folder: String::new(),
            ..pattern("u_", "yyyymmdd")
        };
        assert!(root.match_key("u_20220131.csv").is_ok());
        assert!(matches!(
            root.match_key("in/u_20220131.csv"),
            Err(Mismatch::InSubFolder { .. })
        ));
    }

    #[test]
    fn max_name_len_bounds_every_name_that_matches() {
        for (prefix, format) in [
            ("u_", "yyyymmdd"),
            ("Purchase Summary", "%Y-%m-%dT%H-%M-%S"),
            ("aux_data_", "mon_yyyy"),
            ("é_", "%Y年%m月"),
        ] {
            let p = pattern(prefix, format);
            let name = format!("{prefix}_{}.csv.gz.pgp", p.format.example()).replace("__", "_");
            let key = format!("in/users/{name}");
            assert!(p.match_key(&key).is_ok(), "{key}");
            // Fixed-width formats: the bound is exact.
            assert_eq!(p.max_name_len(), name.len(), "{name}");
        }
        let epoch = pattern("u_", "%s");
        assert!(
            epoch
                .match_key("in/users/u_999999999999.csv.gz.pgp")
                .is_ok()
        );
        assert!(
            epoch
                .match_key("in/users/u_9999999999999.csv.gz.pgp")
                .is_err()
        );
        assert_eq!(epoch.max_name_len(), "u_999999999999.csv.gz.pgp".len());
        let json = FilePattern {
            file_type: FileType::Json,
            ..pattern("u_", "yyyymmdd")
        };
        assert_eq!(json.max_name_len(), "u_20220131.json.gz.pgp".len());
    }

    #[test]
    fn formats_are_bounded() {
        let long = format!("%Y{}", "x".repeat(MAX_FORMAT_CHARS - 2));
        assert!(DateTimeFormat::parse(&long).is_ok());
        assert_eq!(
            DateTimeFormat::parse(&format!("{long}x")),
            Err(NamingError::FormatLength)
        );
    }
}
