//! Flag values spelled as the official helper's flag parser (Go's pflag) accepts them, so
//! that command lines written for it keep working: booleans as Go's `strconv.ParseBool`,
//! integers as `strconv.ParseInt(s, 0, 64)`.

/// A boolean flag's `=VALUE`: the spellings of Go's `strconv.ParseBool`, and only those
/// (`yes`, `on` and the empty string are refused there too).
pub fn go_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(
            "not a boolean; use true or false (or 1/0, t/f, T/F, TRUE/FALSE, True/False)".into(),
        ),
    }
}

/// An integer type a flag can hold, with its range for the error message.
pub trait GoInt: TryFrom<i128> {
    const MIN: i128;
    const MAX: i128;
}

macro_rules! go_int_types {
    ($($t:ty),*) => {$(
        impl GoInt for $t {
            const MIN: i128 = <$t>::MIN as i128;
            const MAX: i128 = <$t>::MAX as i128;
        }
    )*};
}
go_int_types!(u16, u32, u64, usize, i64);

/// An integer flag's value, written as Go's `strconv.ParseInt(s, 0, 64)` reads it: an
/// optional sign, then decimal, `0x`/`0X` hex, `0o`/`0O` or leading-`0` octal, or `0b`/`0B`
/// binary, with `_` allowed only between digits (or after the base prefix); then checked
/// against the range of the flag's type, which for the official helper's `int` flags is
/// the same 64-bit range and for this project's narrower flags refuses what could not be
/// meant (a port above 65535, a negative timeout) before anything runs.
pub fn go_int<T: GoInt>(text: &str) -> Result<T, String> {
    let range = || format!("{text} is not in {}..={}", T::MIN, T::MAX);
    let value = parse_int(text).map_err(|e| match e {
        IntError::Syntax => "not an integer; write it in decimal, or with a 0x (hex), 0o or 0 \
                             (octal) or 0b (binary) prefix, with _ only between digits"
            .to_owned(),
        IntError::Range => range(),
    })?;
    T::try_from(value).map_err(|_| range())
}

#[derive(Debug, PartialEq, Eq)]
enum IntError {
    Syntax,
    Range,
}

/// The integer `text` denotes, by Go's rules for base 0; `Range` when it does not fit an
/// i128 (wider than any flag's type, so only the type's own check decides).
fn parse_int(text: &str) -> Result<i128, IntError> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = parse_uint(unsigned)?;
    let magnitude = i128::try_from(magnitude).map_err(|_| IntError::Range)?;
    Ok(if negative { -magnitude } else { magnitude })
}

/// Go's `ParseUint(s, 0, ...)` without a sign, into a u128.
fn parse_uint(text: &str) -> Result<u128, IntError> {
    let bytes = text.as_bytes();
    // A prefix needs a digit after it ("0x" alone is octal 0 followed by an 'x': refused).
    let (base, digits): (u32, &[u8]) = match bytes {
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'b') => (2, &bytes[2..]),
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'o') => (8, &bytes[2..]),
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'x') => (16, &bytes[2..]),
        [b'0', ..] => (8, &bytes[1..]),
        [] => return Err(IntError::Syntax),
        _ => (10, bytes),
    };
    let mut value: u128 = 0;
    let mut underscores = false;
    for &c in digits {
        if c == b'_' {
            underscores = true;
            continue;
        }
        let digit = (c as char).to_digit(36).ok_or(IntError::Syntax)?;
        if digit >= base {
            return Err(IntError::Syntax);
        }
        value = value
            .checked_mul(u128::from(base))
            .and_then(|v| v.checked_add(u128::from(digit)))
            .ok_or(IntError::Range)?;
    }
    if underscores && !underscores_ok(text) {
        return Err(IntError::Syntax);
    }
    Ok(value)
}

/// Go's `underscoreOK`: each `_` stands between two digits, or between the base prefix and
/// a digit.
fn underscores_ok(text: &str) -> bool {
    #[derive(PartialEq)]
    enum Saw {
        Start,
        Digit,
        Underscore,
        Other,
    }
    let bytes = text.as_bytes();
    let (mut saw, mut i, mut hex) = (Saw::Start, 0, false);
    if let [b'0', p, ..] = bytes
        && matches!(p.to_ascii_lowercase(), b'b' | b'o' | b'x')
    {
        (saw, i, hex) = (Saw::Digit, 2, p.eq_ignore_ascii_case(&b'x'));
    }
    for &c in &bytes[i..] {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = Saw::Digit;
        } else if c == b'_' {
            if saw != Saw::Digit {
                return false;
            }
            saw = Saw::Underscore;
        } else if saw == Saw::Underscore {
            return false;
        } else {
            saw = Saw::Other;
        }
    }
    saw != Saw::Underscore
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_go_parse_bool_spellings() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(go_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(go_bool(f), Ok(false), "{f}");
        }
        for bad in ["", "yes", "no", "on", "tRUE", "2", " true", "true "] {
            assert!(go_bool(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn integers_are_go_parse_int_base_0() {
        let ok: &[(&str, i128)] = &[
            ("0", 0),
            ("-0", 0),
            ("+7", 7),
            ("3600", 3600),
            ("0x10", 16),
            ("0X1f", 31),
            ("-0x10", -16),
            ("0o17", 15),
            ("0O17", 15),
            ("017", 15),
            ("0b101", 5),
            ("0B11", 3),
            ("1_000", 1000),
            ("0x_1F", 31),
            ("0_7", 7),
            ("0b1_0", 2),
            ("9223372036854775807", i64::MAX as i128),
            ("-9223372036854775808", i64::MIN as i128),
            ("00", 0),
        ];
        for (text, value) in ok {
            assert_eq!(parse_int(text), Ok(*value), "{text}");
        }
        let syntax = [
            "", "+", "-", "--1", "+-1", "0x", "0b", "0o", "08", "0b2", "0o8", "0xg", "1e3", " 1",
            "1 ", "_1", "1_", "1__0", "0_", "0x_", "1.0", "٣", "0x1_", "-_1",
        ];
        for text in syntax {
            assert_eq!(parse_int(text), Err(IntError::Syntax), "{text:?}");
        }
        assert_eq!(
            parse_int("0x1_0000_0000_0000_0000_0000_0000_0000_0000"),
            Err(IntError::Range)
        );
    }

    #[test]
    fn the_flag_type_sets_the_range() {
        assert_eq!(go_int::<i64>("-0x10"), Ok(-16));
        assert_eq!(go_int::<u16>("0xffff"), Ok(u16::MAX));
        assert_eq!(
            go_int::<u16>("0x10000"),
            Err("0x10000 is not in 0..=65535".into())
        );
        assert_eq!(
            go_int::<u32>("-1"),
            Err("-1 is not in 0..=4294967295".into())
        );
        // Go's int is 64 bits: one past its range is refused, as the official helper does.
        assert!(go_int::<i64>("9223372036854775808").is_err());
        assert!(go_int::<i64>("-9223372036854775809").is_err());
        assert!(go_int::<i64>("99999999999999999999999999999999999999999").is_err());
        assert!(
            go_int::<u64>("abc")
                .unwrap_err()
                .starts_with("not an integer")
        );
    }
}
