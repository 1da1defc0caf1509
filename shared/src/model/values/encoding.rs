//! Numbers and date-times as text, written by hand: every number and event-time cell
//! goes through here, and std's and chrono's formatters cost more than the rest of a row.

use chrono::{DateTime, SecondsFormat, Utc};

/// Appends `n` as std's `Display` writes it: the shortest digits that read back as
/// `n`, never an exponent (`1e16` is `10000000000000000`). The digits are ryu's,
/// several times faster to find, and every number cell goes through here; on an exact
/// tie ryu rounds the last digit to even where std rounds up, and both read back as `n`.
pub fn push_number(out: &mut String, n: f64) {
    if !n.is_finite() {
        out.push_str(&n.to_string());
        return;
    }
    if push_short_decimal(out, n) {
        return;
    }
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(n);
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    // The digits without the point, and where the point goes.
    let mut digits = [0u8; 40];
    let mut len = 0;
    let mut point = None;
    for &b in mantissa.as_bytes() {
        if b == b'.' {
            point = Some(len);
        } else if len < digits.len() {
            digits[len] = b;
            len += 1;
        }
    }
    let mut point = point.unwrap_or(len) as i32 + exponent;
    let mut digits = &digits[..len];
    while let [b'0', rest @ ..] = digits {
        digits = rest;
        point -= 1;
    }
    while let [rest @ .., b'0'] = digits {
        digits = rest;
    }
    if negative {
        out.push('-');
    }
    // ryu writes ASCII digits only.
    fn ascii(d: &[u8]) -> &str {
        std::str::from_utf8(d).unwrap_or_default()
    }
    if digits.is_empty() {
        out.push('0');
    } else if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
        out.push_str(ascii(digits));
    } else if point as usize >= digits.len() {
        out.push_str(ascii(digits));
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        let (int, frac) = digits.split_at(point as usize);
        out.push_str(ascii(int));
        out.push('.');
        out.push_str(ascii(frac));
    }
}

/// The common case of [`push_number`] (amounts, counts: up to 6 decimals, under 2^50 as
/// an integer of the last decimal), without finding digits at all: `n` is `m / 10^k`
/// for the fewest decimals `k`. It reads back as `n` because parsing rounds the same
/// exact fraction the same way; it is the shortest because, below 2^50, steps of
/// 10^-k are wider than the gap between doubles, so no shorter text also rounds to `n`.
fn push_short_decimal(out: &mut String, n: f64) -> bool {
    const POW10: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
    const LIMIT: f64 = (1u64 << 50) as f64;
    for (k, scale) in POW10.iter().enumerate() {
        let m = (n * scale).round();
        if m.abs() >= LIMIT {
            return false;
        }
        if m / scale != n {
            continue;
        }
        // |m| < 2^50: exact as an integer.
        let m = m as i64;
        if m == 0 {
            out.push_str(if n.is_sign_negative() { "-0" } else { "0" });
            return true;
        }
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(m.unsigned_abs());
        if m < 0 {
            out.push('-');
        }
        if k == 0 {
            out.push_str(digits);
        } else if digits.len() > k {
            let (int, frac) = digits.split_at(digits.len() - k);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', k - digits.len()));
            out.push_str(digits);
        }
        return true;
    }
    false
}

/// Appends `t` as UTC ISO-8601 (`2022-01-31T12:59:00Z`), with fractional seconds only
/// when they are not zero, as 3, 6 or 9 digits: the text of chrono's
/// `to_rfc3339_opts(AutoSi, true)`, written by hand because it runs for every event
/// row and chrono's formatter costs more than the rest of the row.
pub fn push_datetime(out: &mut String, t: &DateTime<Utc>) {
    use chrono::{Datelike, Timelike};
    let nanos = t.nanosecond();
    let year = t.year();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        // Years chrono signs, and leap seconds: rare, so chrono's own formatter.
        out.push_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        return;
    }
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year.unsigned_abs());
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    let digits = match nanos {
        0 => 0,
        n if n % 1_000_000 == 0 => 3,
        n if n % 1_000 == 0 => 6,
        _ => 9,
    };
    let end = if digits == 0 {
        19
    } else {
        put(20, 9, nanos);
        20 + digits
    };
    b[end] = b'Z';
    // Every byte written is ASCII.
    out.push_str(std::str::from_utf8(&b[..=end]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::xorshift;
    use chrono::NaiveDate;

    #[test]
    fn push_number_matches_display() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let fixed = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            12.5,
            0.1,
            1e16,
            1e15,
            1.5e-7,
            1e-5,
            123456.789,
            9007199254740993.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            1e21,
            1e22,
            0.000123,
            100.0,
            4.35,
        ];
        let randoms: Vec<f64> = (0..200_000)
            .map(|i| {
                let bits = next();
                if i % 2 == 0 {
                    f64::from_bits(bits)
                } else {
                    // Everyday money-like values.
                    (bits % 100_000_000) as f64 / 100.0
                }
            })
            .collect();
        // Up to 6 decimals (the fast path): exactly std's text, ties or not.
        for i in 0..200_000 {
            let n = ((next() % 10_000_000_000) as f64 - 5e9) / 10f64.powi(i % 7);
            let mut s = String::new();
            push_number(&mut s, n);
            assert_eq!(s, n.to_string(), "{n:e}");
        }
        for n in fixed.into_iter().chain(randoms).filter(|n| n.is_finite()) {
            let mut s = String::new();
            push_number(&mut s, n);
            let std = n.to_string();
            // Same text as std's, except that an exact tie may round the other way in
            // the last digit (ryu rounds half to even): it still reads back as `n`.
            if s != std {
                assert_eq!(s.len(), std.len(), "{n:e}: {s} vs {std}");
                assert_eq!(s[..s.len() - 1], std[..std.len() - 1], "{n:e}");
            }
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), n.to_bits(), "{n:e}");
        }
    }

    #[test]
    fn push_datetime_matches_chrono() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let fixed = [
            0,
            1_000_000,
            123_000_000,
            1_000,
            123_456_000,
            1,
            999_999_999,
        ];
        for i in 0..20_000 {
            let secs = (next() % 400_000_000_000) as i64 - 100_000_000_000;
            let nanos = if i < fixed.len() * 100 {
                fixed[i % fixed.len()]
            } else {
                (next() % 1_000_000_000) as u32
            };
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            let mut s = String::new();
            push_datetime(&mut s, &t);
            assert_eq!(
                s,
                t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                "{secs} {nanos}"
            );
        }
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        let mut s = String::new();
        push_datetime(&mut s, &leap);
        assert_eq!(s, "2016-12-31T23:59:60.500Z");
    }
}
