//! What a file's first bytes say it is, so a file that is not CSV or JSON text (a
//! PNG renamed `.csv`, a spreadsheet, a zip) fails with a reason a person recognises
//! instead of a parse error on row 2.

/// How many bytes the checks look at.
pub const HEAD_BYTES: usize = 512;

/// Formats recognised by their magic numbers.
const MAGIC: &[(&[u8], &str)] = &[
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (
        b"PK\x03\x04",
        "a ZIP archive (an .xlsx workbook is one; export it as CSV)",
    ),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an old Office document (e.g. .xls; export it as CSV)",
    ),
    (b"\x1f\x8b", "gzip data"),
    (b"BZh", "bzip2 data"),
    (b"\xfd7zXZ\x00", "xz data"),
    (b"\x28\xb5\x2f\xfd", "zstd data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x7fELF", "an executable (ELF)"),
    (b"PAR1", "a Parquet file"),
    (b"Obj\x01", "an Avro file"),
    (b"\xff\xfe", "UTF-16 text (save the file as UTF-8)"),
    (b"\xfe\xff", "UTF-16 text (save the file as UTF-8)"),
];

/// What the bytes look like when they are not text: a known format, or "binary data"
/// for anything with NUL or other control bytes that text files never hold. `None`
/// means it may well be text (CSV or JSON).
pub fn binary_kind(head: &[u8]) -> Option<&'static str> {
    if let Some((_, what)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(what);
    }
    // Control bytes other than tab, line breaks and form feed do not occur in text;
    // a lone one in 512 bytes is tolerated (old exports carry the odd stray byte).
    let controls = head
        .iter()
        .filter(|&&b| b == 0 || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)))
        .count();
    (head.contains(&0) || controls > 1).then_some("binary data, not text")
}

/// A short description for messages: the binary kind, or "text".
pub fn describe(head: &[u8]) -> &'static str {
    binary_kind(head).unwrap_or("plain text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_any_script_is_text() {
        for head in [
            "Émail,Name\n".as_bytes(),
            "Ärger;Öl;Übung;éte;niño\r\n1;2;3;4;5\r\n".as_bytes(),
            b"id\tname\n1\tx\n",
            b"{\"id\": 1}\n",
            b"\xef\xbb\xbfid,name\n",
            b"",
        ] {
            assert_eq!(binary_kind(head), None, "{head:?}");
        }
    }

    #[test]
    fn binary_files_say_what_they_are() {
        assert_eq!(
            binary_kind(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some("a PNG image")
        );
        assert!(binary_kind(b"PK\x03\x04\x14\0").is_some_and(|k| k.contains("ZIP")));
        assert_eq!(binary_kind(b"ab\0cd"), Some("binary data, not text"));
        assert_eq!(binary_kind(b"\x01\x02abc"), Some("binary data, not text"));
    }
}
