//! A tolerant PEM scanner: every `-----BEGIN X-----` … `-----END X-----` block of a file,
//! in order, with the text around and between blocks ignored (as OpenSSL and the official
//! helper do: `openssl x509 -text` output and commented bundles both work).
//!
//! Unlike a lenient scanner it refuses what would otherwise fail later and obscurely: a
//! block with no END line (a truncated file) and a block whose body is not base64.

use base64::Engine as _;
use zeroize::Zeroizing;

/// One decoded PEM block. The DER is zeroized on drop, since key blocks hold secrets.
pub struct Block {
    /// The label, e.g. `CERTIFICATE` or `ENCRYPTED PRIVATE KEY`.
    pub label: String,
    /// True when RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED` precede the body
    /// (OpenSSL's legacy key encryption).
    pub legacy_encrypted: bool,
    pub der: Zeroizing<Vec<u8>>,
}

/// Why a PEM file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    #[error("has a PEM block \"{0}\" with no END line (is the file truncated?)")]
    Truncated(String),
    #[error("has a PEM block \"{0}\" whose body is not valid base64")]
    Base64(String),
}

/// True when the bytes look like PEM rather than DER.
pub fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Decodes every PEM block in `bytes`, in file order.
pub fn blocks(bytes: &[u8]) -> Result<Vec<Block>, PemError> {
    let text = String::from_utf8_lossy(bytes);
    // Windows editors may start a file with a UTF-8 byte order mark; OpenSSL reads past it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = Zeroizing::new(String::new());
        let mut legacy_encrypted = false;
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.trim() == "Proc-Type" && value.contains("ENCRYPTED") {
                    legacy_encrypted = true;
                }
                continue;
            }
            body.push_str(line);
        }
        if !closed {
            return Err(PemError::Truncated(label.to_owned()));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| PemError::Base64(label.to_owned()))?;
        out.push(Block {
            label: label.to_owned(),
            legacy_encrypted,
            der: Zeroizing::new(der),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_blocks_between_text() {
        let text = b"Certificate:\n  junk\n-----BEGIN CERTIFICATE-----\r\nAAEC\r\n-----END CERTIFICATE-----\r\ncomment\n-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";
        let b = blocks(text).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].label, "CERTIFICATE");
        assert_eq!(*b[0].der, vec![0, 1, 2]);
        assert_eq!(b[1].label, "EC PARAMETERS");
        assert!(is_pem(text));
        assert!(!is_pem(&[0x30, 0x82, 0x01]));
    }

    #[test]
    fn skips_a_byte_order_mark() {
        let b =
            blocks("\u{feff}-----BEGIN X-----\r\nAAEC\r\n-----END X-----\r\n".as_bytes()).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(*b[0].der, vec![0, 1, 2]);
    }

    #[test]
    fn refuses_truncated_and_bad_base64() {
        assert_eq!(
            blocks(b"-----BEGIN CERTIFICATE-----\nAAEC\n").err(),
            Some(PemError::Truncated("CERTIFICATE".into()))
        );
        assert_eq!(
            blocks(b"-----BEGIN X-----\n!!!\n-----END X-----\n").err(),
            Some(PemError::Base64("X".into()))
        );
    }

    #[test]
    fn notes_legacy_encryption() {
        let b = blocks(b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAEC\n-----END RSA PRIVATE KEY-----\n").unwrap();
        assert!(b[0].legacy_encrypted);
    }
}
