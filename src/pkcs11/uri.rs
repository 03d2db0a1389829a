//! RFC 7512 `pkcs11:` URIs: which token, which object, and (in the query) where the PIN
//! and the module are.
//!
//! Parsing is strict where a typo would otherwise match the wrong object or none at all:
//! an unknown attribute, a repeated one, bad percent-encoding, a `slot-id` that is not a
//! number or a `type` that is not a PKCS#11 object class are errors that name the part.
//! Vendor query attributes (`x-…`) are ignored, as the RFC asks; vendor path attributes
//! cannot be honoured and are refused.

use std::fmt;
use std::str::FromStr;

use super::percent::{BadPercent, decode, decode_text, encode};
use crate::secret::Secret;

/// The object class a URI's `type` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    Certificate,
    PrivateKey,
    PublicKey,
    SecretKey,
    Data,
}

impl ObjectType {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "cert" => Self::Certificate,
            "private" => Self::PrivateKey,
            "public" => Self::PublicKey,
            "secret-key" => Self::SecretKey,
            "data" => Self::Data,
            _ => return None,
        })
    }

    /// The attribute value, as written in a URI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Certificate => "cert",
            Self::PrivateKey => "private",
            Self::PublicKey => "public",
            Self::SecretKey => "secret-key",
            Self::Data => "data",
        }
    }
}

/// A parsed `pkcs11:` URI. Absent attributes match anything.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token label.
    pub token: Option<String>,
    /// `manufacturer`: the token's manufacturer ID.
    pub manufacturer: Option<String>,
    /// `serial`: the token's serial number.
    pub serial: Option<String>,
    /// `model`: the token's model.
    pub model: Option<String>,
    pub library_manufacturer: Option<String>,
    pub library_description: Option<String>,
    /// `library-version`: `(major, minor)`.
    pub library_version: Option<(u8, u8)>,
    pub slot_description: Option<String>,
    pub slot_manufacturer: Option<String>,
    /// `slot-id`: the module's slot number.
    pub slot_id: Option<u64>,
    /// `object`: the object's `CKA_LABEL`.
    pub object: Option<String>,
    /// `id`: the object's `CKA_ID`, as bytes.
    pub id: Option<Vec<u8>>,
    /// `type`: the object class.
    pub object_type: Option<ObjectType>,
    /// `pin-value`: the user PIN itself.
    pub pin_value: Option<Secret>,
    /// `pin-source`: where to read the user PIN (a `file:` URI or a path).
    pub pin_source: Option<String>,
    /// `module-path`: the PKCS#11 module to load.
    pub module_path: Option<String>,
    /// The text as given, with any `pin-value` replaced, for messages.
    pub(super) shown: String,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pkcs11Uri({})", self.shown)
    }
}

/// The URI as the user wrote it, with the PIN (if any) replaced by `[redacted]`.
impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Why a URI cannot be used; `Display` is the part after "pkcs11 URI ... ".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UriError(String);

impl From<BadPercent> for UriError {
    fn from(error: BadPercent) -> Self {
        Self(error.to_string())
    }
}

const PREFIX: &str = "pkcs11:";

impl FromStr for Pkcs11Uri {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Self, UriError> {
        let err = |what: String| UriError(what);
        let Some(rest) = text.strip_prefix(PREFIX) else {
            return Err(err("does not start with \"pkcs11:\"".into()));
        };
        if let Some(c) = rest.chars().find(|c| c.is_control()) {
            return Err(err(format!(
                "holds the control character {c:?}; percent-encode it"
            )));
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if rest.contains('#') {
            return Err(err(
                "holds '#', which starts a URI fragment; write it as %23".into(),
            ));
        }
        let mut uri = Pkcs11Uri::default();
        let mut seen: Vec<String> = Vec::new();
        for part in split_nonempty(path, ';', "path", &err)? {
            let (name, raw) = attribute(part, "path")?;
            if seen.iter().any(|s| s == name) {
                return Err(err(format!("gives the attribute {name} twice")));
            }
            seen.push(name.to_owned());
            uri.set_path(name, raw)?;
        }
        if let Some(query) = query {
            for part in split_nonempty(query, '&', "query", &err)? {
                let (name, raw) = attribute(part, "query")?;
                if name.starts_with("x-") {
                    continue;
                }
                if seen.iter().any(|s| s == name) {
                    return Err(err(format!("gives the attribute {name} twice")));
                }
                seen.push(name.to_owned());
                uri.set_query(name, raw)?;
            }
        }
        if uri.pin_value.is_some() && uri.pin_source.is_some() {
            return Err(err(
                "gives both pin-value and pin-source; keep one (RFC 7512 allows only one)".into(),
            ));
        }
        uri.shown = redact(text);
        Ok(uri)
    }
}

/// `text` split at `sep`, refusing empty pieces such as `;;` or a trailing `;`.
fn split_nonempty<'a>(
    text: &'a str,
    sep: char,
    part: &str,
    err: &dyn Fn(String) -> UriError,
) -> Result<Vec<&'a str>, UriError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let pieces: Vec<&str> = text.split(sep).collect();
    if pieces.iter().any(|p| p.is_empty()) {
        return Err(err(format!(
            "has an empty {part} attribute (a doubled or trailing '{sep}')"
        )));
    }
    Ok(pieces)
}

/// `name=value` with a well-formed name.
fn attribute<'a>(part: &'a str, where_: &str) -> Result<(&'a str, &'a str), UriError> {
    let Some((name, value)) = part.split_once('=') else {
        return Err(UriError(format!(
            "has the {where_} attribute {:?} without '=value'",
            shorten(part)
        )));
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(UriError(format!(
            "has the malformed attribute name {:?}",
            shorten(name)
        )));
    }
    Ok((name, value))
}

fn shorten(text: &str) -> String {
    if text.chars().count() > 40 {
        format!("{}...", text.chars().take(40).collect::<String>())
    } else {
        text.to_owned()
    }
}

impl Pkcs11Uri {
    fn set_path(&mut self, name: &str, raw: &str) -> Result<(), UriError> {
        let text = |raw: &str| decode_text(name, raw);
        match name {
            "token" => self.token = Some(text(raw)?),
            "manufacturer" => self.manufacturer = Some(text(raw)?),
            "serial" => self.serial = Some(text(raw)?),
            "model" => self.model = Some(text(raw)?),
            "library-manufacturer" => self.library_manufacturer = Some(text(raw)?),
            "library-description" => self.library_description = Some(text(raw)?),
            "library-version" => {
                let value = text(raw)?;
                let number = |s: &str| {
                    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| s.parse::<u8>().ok())
                        .flatten()
                };
                let parsed = match value.split_once('.') {
                    Some((major, minor)) => number(major).zip(number(minor)),
                    None => number(&value).map(|major| (major, 0)),
                };
                let Some(version) = parsed else {
                    return Err(UriError(format!(
                        "has library-version={value:?}; write MAJOR or MAJOR.MINOR, e.g. 2.6"
                    )));
                };
                self.library_version = Some(version);
            }
            "slot-description" => self.slot_description = Some(text(raw)?),
            "slot-manufacturer" => self.slot_manufacturer = Some(text(raw)?),
            "slot-id" => {
                let value = text(raw)?;
                let valid = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                let Some(id) = valid.then(|| value.parse::<u64>().ok()).flatten() else {
                    return Err(UriError(format!(
                        "has slot-id={value:?}; it must be a decimal slot number"
                    )));
                };
                self.slot_id = Some(id);
            }
            "object" => self.object = Some(text(raw)?),
            "id" => self.id = Some(decode(name, raw)?),
            "type" => {
                let value = text(raw)?;
                let Some(kind) = ObjectType::parse(&value) else {
                    return Err(UriError(format!(
                        "has type={value:?}; use cert, private, public, secret-key or data"
                    )));
                };
                self.object_type = Some(kind);
            }
            other if other.starts_with("x-") => {
                return Err(UriError(format!(
                    "has the vendor attribute {other}, which this helper cannot match; remove it"
                )));
            }
            other => {
                return Err(UriError(format!(
                    "has the unknown path attribute {other:?}; known: token, manufacturer, serial, model, slot-id, slot-description, slot-manufacturer, library-manufacturer, library-description, library-version, object, id, type"
                )));
            }
        }
        Ok(())
    }

    fn set_query(&mut self, name: &str, raw: &str) -> Result<(), UriError> {
        match name {
            "pin-value" => {
                let bytes = zeroize::Zeroizing::new(decode(name, raw)?);
                let text = std::str::from_utf8(&bytes).map_err(|_| {
                    UriError("has a pin-value that is not UTF-8 after percent-decoding".into())
                })?;
                self.pin_value = Some(Secret::from(text.to_owned()));
            }
            "pin-source" => self.pin_source = Some(decode_text(name, raw)?),
            "module-path" => {
                let path = decode_text(name, raw)?;
                if !path.starts_with('/') {
                    return Err(UriError(format!(
                        "has module-path={path:?}; it must be an absolute path"
                    )));
                }
                self.module_path = Some(path);
            }
            "module-name" => {
                return Err(UriError(
                    "has module-name, which this helper does not resolve; give module-path=/path/to/module.so or --pkcs11-lib".into(),
                ));
            }
            other => {
                return Err(UriError(format!(
                    "has the unknown query attribute {other:?}; known: pin-value, pin-source, module-path"
                )));
            }
        }
        Ok(())
    }

    /// True when the URI names no object: no `object`, `id` or `type`.
    pub fn names_no_object(&self) -> bool {
        self.object.is_none() && self.id.is_none()
    }

    /// The same URI with the object attributes replaced: for URIs that this helper
    /// prints, derived from what the token holds.
    pub fn format(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut text = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                parts.push(format!("{name}={}", encode(v.as_bytes(), false)));
            }
        };
        text("token", &self.token);
        text("manufacturer", &self.manufacturer);
        text("model", &self.model);
        text("serial", &self.serial);
        text("slot-description", &self.slot_description);
        text("slot-manufacturer", &self.slot_manufacturer);
        if let Some(id) = self.slot_id {
            parts.push(format!("slot-id={id}"));
        }
        if let Some(id) = &self.id {
            parts.push(format!("id={}", encode(id, true)));
        }
        if let Some(label) = &self.object {
            parts.push(format!("object={}", encode(label.as_bytes(), false)));
        }
        if let Some(kind) = self.object_type {
            parts.push(format!("type={}", kind.as_str()));
        }
        format!("{PREFIX}{}", parts.join(";"))
    }
}

/// The text with the value of `pin-value` replaced, so the URI can appear in messages. A
/// `pin-value` in the path, or spelled in capitals, is refused by the parser, whose message
/// repeats the URI: it is replaced there too.
pub fn redact(text: &str) -> String {
    fn hide(attribute: &str) -> &str {
        match attribute.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("pin-value") => "pin-value=[redacted]",
            _ => attribute,
        }
    }
    let (scheme, rest) = match text.strip_prefix(PREFIX) {
        Some(rest) => (PREFIX, rest),
        None => ("", text),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let mut out = String::from(scheme);
    out.push_str(&path.split(';').map(hide).collect::<Vec<_>>().join(";"));
    if let Some(query) = query {
        out.push('?');
        out.push_str(&query.split('&').map(hide).collect::<Vec<_>>().join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Pkcs11Uri {
        text.parse()
            .unwrap_or_else(|e| panic!("{text} should parse: {e}"))
    }

    fn error(text: &str) -> String {
        match text.parse::<Pkcs11Uri>() {
            Ok(uri) => panic!("{text} should be refused, parsed as {uri:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_attribute_of_rfc_7512() {
        let uri = parse(
            "pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;serial=3061fa19469fe4ab;model=SoftHSM%20v2;library-manufacturer=L;library-description=D;library-version=2.6;slot-description=S;slot-manufacturer=M;slot-id=42;object=my%20key;id=%01%ab;type=private?pin-source=file:/etc/pin&module-path=/usr/lib/softhsm/libsofthsm2.so",
        );
        assert_eq!(uri.token.as_deref(), Some("My Token"));
        assert_eq!(uri.manufacturer.as_deref(), Some("SoftHSM project"));
        assert_eq!(uri.serial.as_deref(), Some("3061fa19469fe4ab"));
        assert_eq!(uri.model.as_deref(), Some("SoftHSM v2"));
        assert_eq!(uri.library_manufacturer.as_deref(), Some("L"));
        assert_eq!(uri.library_description.as_deref(), Some("D"));
        assert_eq!(uri.library_version, Some((2, 6)));
        assert_eq!(uri.slot_description.as_deref(), Some("S"));
        assert_eq!(uri.slot_manufacturer.as_deref(), Some("M"));
        assert_eq!(uri.slot_id, Some(42));
        assert_eq!(uri.object.as_deref(), Some("my key"));
        assert_eq!(uri.id.as_deref(), Some(&[0x01, 0xab][..]));
        assert_eq!(uri.object_type, Some(ObjectType::PrivateKey));
        assert_eq!(uri.pin_source.as_deref(), Some("file:/etc/pin"));
        assert_eq!(
            uri.module_path.as_deref(),
            Some("/usr/lib/softhsm/libsofthsm2.so")
        );
        assert!(uri.pin_value.is_none());
    }

    #[test]
    fn empty_uri_matches_everything() {
        let uri = parse("pkcs11:");
        assert_eq!(
            uri,
            Pkcs11Uri {
                shown: "pkcs11:".into(),
                ..Pkcs11Uri::default()
            }
        );
        assert!(uri.names_no_object());
        assert_eq!(parse("pkcs11:?").token, None);
    }

    #[test]
    fn library_version_without_minor_and_vendor_query_ignored() {
        let uri = parse("pkcs11:library-version=3?x-vendor=whatever");
        assert_eq!(uri.library_version, Some((3, 0)));
    }

    #[test]
    fn literal_reserved_characters_allowed_by_the_rfc() {
        let uri = parse("pkcs11:object=a:b@c!$'()*+,&=d;token=t~._-");
        assert_eq!(uri.object.as_deref(), Some("a:b@c!$'()*+,&=d"));
        assert_eq!(uri.token.as_deref(), Some("t~._-"));
        let uri = parse("pkcs11:?pin-source=file:///run/pin?x=1|y");
        assert_eq!(uri.pin_source.as_deref(), Some("file:///run/pin?x=1|y"));
    }

    #[test]
    fn pin_value_is_decoded_and_never_shown() {
        let uri = parse("pkcs11:token=t;object=k?pin-value=12%2534&module-path=/m.so");
        assert_eq!(uri.pin_value.as_ref().unwrap().expose(), "12%34");
        let shown = uri.to_string();
        assert_eq!(
            shown,
            "pkcs11:token=t;object=k?pin-value=[redacted]&module-path=/m.so"
        );
        assert!(!format!("{uri:?}").contains("12"), "{uri:?}");
    }

    /// Found by the `pkcs11_uri` fuzz target: a `pin-value` written in the path is refused,
    /// and the usage error repeated the URI, PIN included.
    #[test]
    fn a_pin_value_in_the_path_or_in_capitals_is_redacted_too() {
        let text = "pkcs11:token=t;pin-value=123456;object=k";
        assert!(error(text).contains("unknown path attribute \"pin-value\""));
        assert_eq!(redact(text), "pkcs11:token=t;pin-value=[redacted];object=k");
        assert_eq!(
            redact("pkcs11:pin-value=123456"),
            "pkcs11:pin-value=[redacted]"
        );
        assert_eq!(
            redact("pkcs11:token=t?PIN-Value=123456&module-path=/m.so"),
            "pkcs11:token=t?pin-value=[redacted]&module-path=/m.so"
        );
        // Everything else is kept as written.
        let plain = "pkcs11:token=a%20b;object=k?pin-source=file:/p&x-y=1";
        assert_eq!(redact(plain), plain);
    }

    #[test]
    fn format_round_trips_and_encodes_id_fully() {
        let uri = Pkcs11Uri {
            token: Some("My Token;x".into()),
            serial: Some("01ab".into()),
            id: Some(b"AB".to_vec()),
            object: Some("cert/1?".into()),
            object_type: Some(ObjectType::Certificate),
            ..Pkcs11Uri::default()
        };
        let text = uri.format();
        assert_eq!(
            text,
            "pkcs11:token=My%20Token%3Bx;serial=01ab;id=%41%42;object=cert%2F1%3F;type=cert"
        );
        let back = parse(&text);
        assert_eq!(back.token, uri.token);
        assert_eq!(back.id, uri.id);
        assert_eq!(back.object, uri.object);
        assert_eq!(back.object_type, uri.object_type);
    }

    #[test]
    fn malformed_uris_say_what_is_wrong() {
        let cases = [
            ("pkcs12:token=a", "does not start with \"pkcs11:\""),
            ("PKCS11:token=a", "does not start"),
            ("pkcs11:token", "without '=value'"),
            ("pkcs11:token=a;;object=b", "empty path attribute"),
            ("pkcs11:token=a;", "empty path attribute"),
            ("pkcs11:?pin-value=1&", "empty query attribute"),
            ("pkcs11:token=a;token=b", "token twice"),
            ("pkcs11:object=a%2", "bad percent-encoding \"%2\""),
            ("pkcs11:object=a%zz", "bad percent-encoding \"%zz\""),
            ("pkcs11:id=%+1", "bad percent-encoding"),
            ("pkcs11:object=%ff%fe", "not UTF-8"),
            ("pkcs11:slot-id=abc", "slot-id=\"abc\""),
            ("pkcs11:slot-id=-1", "decimal slot number"),
            (
                "pkcs11:slot-id=99999999999999999999999",
                "decimal slot number",
            ),
            ("pkcs11:type=key", "use cert, private"),
            ("pkcs11:library-version=v2", "MAJOR.MINOR"),
            ("pkcs11:library-version=2.", "MAJOR.MINOR"),
            ("pkcs11:objekt=a", "unknown path attribute \"objekt\""),
            ("pkcs11:x-vendor=1", "vendor attribute x-vendor"),
            ("pkcs11:?pin=1234", "unknown query attribute \"pin\""),
            ("pkcs11:?module-name=softhsm2", "module-name"),
            ("pkcs11:?module-path=lib.so", "absolute path"),
            (
                "pkcs11:?pin-value=1&pin-source=file:/p",
                "both pin-value and pin-source",
            ),
            ("pkcs11:?pin-value=1&pin-value=2", "pin-value twice"),
            ("pkcs11:obj ect=a", "malformed attribute name"),
            ("pkcs11:object=a\nb", "control character"),
            ("pkcs11:object=a#b", "fragment"),
        ];
        for (text, want) in cases {
            let got = error(text);
            assert!(
                got.contains(want),
                "{text}: {got:?} should contain {want:?}"
            );
        }
    }

    #[test]
    fn a_bad_pin_value_is_not_echoed() {
        let got = error("pkcs11:?pin-value=12%4");
        assert!(got.contains("bad percent-encoding in pin-value"), "{got}");
        assert!(!got.contains('4'), "{got}");
    }
}
