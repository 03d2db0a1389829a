//! TPM 2.0 key files: the `TSS2 PRIVATE KEY` PEM of the "ASN.1 Specification for TPM 2.0
//! Key Files" (OID 2.23.133.10.1.3, a key to load under its parent), as tpm2-openssl,
//! tpm2-tss-engine and the official helper's tests write them.
//!
//! ```text
//! TPMKey ::= SEQUENCE {
//!     type        OBJECT IDENTIFIER,          -- 2.23.133.10.1.3
//!     emptyAuth   [0] EXPLICIT BOOLEAN OPTIONAL,
//!     policy      [1] EXPLICIT SEQUENCE OF TPMPolicy OPTIONAL,
//!     secret      [2] EXPLICIT OCTET STRING OPTIONAL,
//!     authPolicy  [3] EXPLICIT SEQUENCE OF TPMAuthPolicy OPTIONAL,
//!     description [4] EXPLICIT UTF8String OPTIONAL,
//!     rsaParent   [5] EXPLICIT BOOLEAN OPTIONAL,
//!     parent      INTEGER,
//!     pubkey      OCTET STRING,               -- TPM2B_PUBLIC
//!     privkey     OCTET STRING }              -- TPM2B_PRIVATE
//! ```

use der::asn1::{ContextSpecific, ObjectIdentifier, OctetStringRef};
use der::{Decode as _, Reader as _, SliceReader, Tag, TagNumber};

/// The PEM label of a TPM key file.
pub const PEM_LABEL: &str = "TSS2 PRIVATE KEY";
/// The loadable key type; 2.23.133.10.1.4 (importable) and .5 (sealed) are other things.
const LOADABLE_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.10.1.3");

/// A key file's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFile {
    /// True when the key has no password.
    pub empty_auth: bool,
    /// The parent's handle: a hierarchy (`0x40000001` owner, ...) or a persistent key.
    pub parent: u32,
    /// The `TPM2B_PUBLIC`, size included, as Load takes it.
    pub public: Vec<u8>,
    /// The `TPM2B_PRIVATE`, size included: the key, sealed to its parent.
    pub private: Vec<u8>,
}

/// Why a key file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("is not a TPM 2.0 key file ({0})")]
    Malformed(String),
    #[error("is a TPM key of type {0}, not a loadable key (2.23.133.10.1.3)")]
    NotLoadable(String),
    #[error(
        "is a TPM key with {0}, which this helper does not support (only keys with a password or none)"
    )]
    Policy(&'static str),
}

/// Reads the DER of a `TSS2 PRIVATE KEY` block.
pub fn parse(der: &[u8]) -> Result<KeyFile, KeyFileError> {
    let der = normalise_empty_auth(der);
    let malformed = |e: der::Error| KeyFileError::Malformed(e.to_string());
    let mut reader = SliceReader::new(&der).map_err(malformed)?;
    // The closure reads every field, also of a key it then refuses: the reader checks
    // that the SEQUENCE was read to its end.
    let key = reader
        .sequence(|r| {
            let kind = ObjectIdentifier::decode(r)?;
            if kind != LOADABLE_KEY {
                while !r.is_finished() {
                    r.tlv_bytes()?;
                }
                return Ok(Err(KeyFileError::NotLoadable(kind.to_string())));
            }
            let empty_auth =
                ContextSpecific::<bool>::decode_explicit(r, TagNumber(0))?.is_some_and(|c| c.value);
            // Optional fields before the parent, each in its context-specific tag.
            let mut refused = None;
            while let Tag::ContextSpecific { number, .. } = Tag::peek(r)? {
                refused = refused.or(match number.0 {
                    1 => Some("a policy"),
                    2 => Some("an imported secret"),
                    3 => Some("an authPolicy"),
                    _ => None,
                });
                r.tlv_bytes()?;
            }
            let parent = u32::decode(r)?;
            let public = <&OctetStringRef>::decode(r)?.as_bytes().to_vec();
            let private = <&OctetStringRef>::decode(r)?.as_bytes().to_vec();
            if let Some(what) = refused {
                return Ok(Err(KeyFileError::Policy(what)));
            }
            Ok(Ok(KeyFile {
                empty_auth,
                parent,
                public,
                private,
            }))
        })
        .map_err(malformed)??;
    reader.finish().map_err(malformed)?;
    for (blob, what) in [(&key.public, "pubkey"), (&key.private, "privkey")] {
        if blob.len() < 2 || usize::from(u16::from_be_bytes([blob[0], blob[1]])) != blob.len() - 2 {
            return Err(KeyFileError::Malformed(format!(
                "its {what} size prefix disagrees with its length"
            )));
        }
    }
    Ok(key)
}

/// tpm2-openssl (1.1) and other writers encode `emptyAuth` TRUE as `01`, which BER
/// allows and DER does not (it wants `FF`); the DER reader refuses it, so rewrite that
/// one byte, as the official helper does.
fn normalise_empty_auth(der: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    // SEQUENCE header (short or long form), then the 8-byte OID TLV, then `A0 03 01 01 xx`.
    let header = match der.get(1) {
        Some(len) if len & 0x80 == 0 => 2,
        Some(len) => 2 + usize::from(len & 0x7F),
        None => return der.into(),
    };
    let at = header + 8;
    match der.get(at..at + 5) {
        Some([0xA0, 0x03, 0x01, 0x01, v]) if *v != 0 && *v != 0xFF => {
            let mut fixed = der.to_vec();
            fixed[at + 4] = 0xFF;
            fixed.into()
        }
        _ => der.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key file's DER with `fields` between the OID and the parent.
    fn file(fields: &[u8]) -> Vec<u8> {
        let mut body = vec![0x06, 0x06, 0x67, 0x81, 0x05, 0x0A, 0x01, 0x03];
        body.extend_from_slice(fields);
        body.extend_from_slice(&[0x02, 0x04, 0x40, 0x00, 0x00, 0x01]);
        body.extend_from_slice(&[0x04, 0x04, 0x00, 0x02, 0xAA, 0xBB]);
        body.extend_from_slice(&[0x04, 0x03, 0x00, 0x01, 0xCC]);
        let mut der = vec![0x30, u8::try_from(body.len()).unwrap()];
        der.extend_from_slice(&body);
        der
    }

    #[test]
    fn ber_true_for_empty_auth_is_read_as_true() {
        for (byte, want) in [(0x01, true), (0xFF, true), (0x00, false)] {
            let key = parse(&file(&[0xA0, 0x03, 0x01, 0x01, byte])).unwrap();
            assert_eq!(key.empty_auth, want);
            assert_eq!(key.parent, 0x4000_0001);
            assert_eq!(key.public, vec![0x00, 0x02, 0xAA, 0xBB]);
            assert_eq!(key.private, vec![0x00, 0x01, 0xCC]);
        }
        assert!(!parse(&file(&[])).unwrap().empty_auth);
    }

    #[test]
    fn policies_and_secrets_are_refused_descriptions_skipped() {
        let policy = [0xA1, 0x04, 0x30, 0x02, 0x30, 0x00];
        assert_eq!(parse(&file(&policy)), Err(KeyFileError::Policy("a policy")));
        let secret = [0xA2, 0x03, 0x04, 0x01, 0x00];
        assert_eq!(
            parse(&file(&secret)),
            Err(KeyFileError::Policy("an imported secret"))
        );
        let auth_policy = [0xA3, 0x02, 0x30, 0x00];
        assert_eq!(
            parse(&file(&auth_policy)),
            Err(KeyFileError::Policy("an authPolicy"))
        );
        let description = [0xA4, 0x04, 0x0C, 0x02, b'h', b'i'];
        assert!(parse(&file(&description)).is_ok());
    }

    #[test]
    fn other_key_types_and_bad_blobs_are_refused() {
        let mut sealed = file(&[]);
        sealed[9] = 0x05;
        assert!(matches!(parse(&sealed), Err(KeyFileError::NotLoadable(_))));
        let mut bad_size = file(&[]);
        let at = bad_size.len() - 8;
        bad_size[at] = 0x09;
        assert!(matches!(parse(&bad_size), Err(KeyFileError::Malformed(_))));
        assert!(matches!(
            parse(b"\x30\x00"),
            Err(KeyFileError::Malformed(_))
        ));
    }
}
