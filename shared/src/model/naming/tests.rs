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
