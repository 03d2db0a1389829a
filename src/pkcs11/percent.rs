//! Percent-encoding of `pkcs11:` URI values (RFC 3986 as RFC 7512 uses it).

/// A value that is not valid percent-encoding; `Display` is the part after "pkcs11 URI
/// ... ".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadPercent(String);

/// Percent-decoding into bytes; a `%` not followed by two hex digits is an error. The
/// bad escape is quoted, except in `pin-value`, whose text is never repeated.
pub(super) fn decode(name: &str, raw: &str) -> Result<Vec<u8>, BadPercent> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let pair = bytes
            .get(i + 1)
            .copied()
            .and_then(hex)
            .zip(bytes.get(i + 2).copied().and_then(hex));
        let Some((high, low)) = pair else {
            let quoted = if name == "pin-value" {
                String::new()
            } else {
                let end = (i + 3).min(bytes.len());
                format!(" {:?}", String::from_utf8_lossy(&bytes[i..end]))
            };
            return Err(BadPercent(format!(
                "has the bad percent-encoding{quoted} in {name}; write %HH with two hex digits (%25 for '%')"
            )));
        };
        out.push(high << 4 | low);
        i += 3;
    }
    Ok(out)
}

/// [`decode`] for a text value, which must be UTF-8.
pub(super) fn decode_text(name: &str, raw: &str) -> Result<String, BadPercent> {
    String::from_utf8(decode(name, raw)?).map_err(|_| {
        BadPercent(format!(
            "has a value of {name} that is not UTF-8 after percent-decoding"
        ))
    })
}

/// Percent-encodes a value for a path attribute: everything but RFC 3986's unreserved
/// characters and the sub-delimiters RFC 7512 allows in a path; `all` encodes every byte
/// (as `id` is written).
pub(super) fn encode(bytes: &[u8], all: bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        let keep = !all && (b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,&".contains(&b));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_and_encoding() {
        assert_eq!(decode("object", "a%20b%2f").unwrap(), b"a b/");
        assert_eq!(decode_text("object", "%C3%A9").unwrap(), "\u{e9}");
        assert_eq!(encode(b"a b/~", false), "a%20b%2F~");
        assert_eq!(encode(b"ab", true), "%61%62");
        let error = decode("object", "a%zz").unwrap_err().to_string();
        assert!(
            error.contains("bad percent-encoding \"%zz\" in object"),
            "{error}"
        );
        let error = decode("pin-value", "1%z").unwrap_err().to_string();
        assert!(
            error.contains("bad percent-encoding in pin-value"),
            "{error}"
        );
    }
}
