//! The public area of a TPM key (`TPMT_PUBLIC`, TPM 2.0 Part 2 §12.2.4): its algorithm,
//! attributes and public key, read from a key file's `TPM2B_PUBLIC` or from ReadPublic.
//! Also the template of the standard storage primary key a hierarchy parent gets.

use super::wire::{Malformed, Reader};
use crate::x509::PublicKey;

pub const ALG_RSA: u16 = 0x0001;
pub const ALG_ECC: u16 = 0x0023;
pub const ALG_NULL: u16 = 0x0010;
pub const ALG_SHA256: u16 = 0x000B;
pub const ALG_SHA384: u16 = 0x000C;
pub const ALG_SHA512: u16 = 0x000D;
pub const ALG_RSASSA: u16 = 0x0014;
pub const ALG_ECDSA: u16 = 0x0018;
const ALG_AES: u16 = 0x0006;
const ALG_CFB: u16 = 0x0043;
const ECC_NIST_P256: u16 = 0x0003;
const ECC_NIST_P384: u16 = 0x0004;
const ECC_NIST_P521: u16 = 0x0005;

/// `TPMA_OBJECT`: the key may sign.
pub const ATTR_SIGN: u32 = 0x0004_0000;
/// `TPMA_OBJECT`: the key may be used with a password (or HMAC) session; without it, only
/// a policy session authorises the key.
pub const ATTR_USER_WITH_AUTH: u32 = 0x0000_0040;
/// `TPMA_OBJECT`: a restricted key signs only digests the TPM made itself.
pub const ATTR_RESTRICTED: u32 = 0x0001_0000;

/// The TCG storage primary template ("TCG TPM v2.0 Provisioning Guidance" §7.5.1, the
/// `SRK` template tpm2-openssl and tpm2-tss-engine create keys under): ECC NIST P-256,
/// nameAlg SHA-256, `fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|noDA|
/// restricted|decrypt`, AES-128-CFB, no scheme, no KDF, empty unique. The same template
/// gives the same primary key every time, so keys made under it load under it.
pub fn storage_primary_template() -> Vec<u8> {
    let mut t = Vec::with_capacity(26);
    for v in [ALG_ECC, ALG_SHA256] {
        t.extend_from_slice(&v.to_be_bytes());
    }
    t.extend_from_slice(&0x0003_0472u32.to_be_bytes());
    for v in [
        0,
        ALG_AES,
        128,
        ALG_CFB,
        ALG_NULL,
        ECC_NIST_P256,
        ALG_NULL,
        0,
        0,
    ] {
        t.extend_from_slice(&u16::to_be_bytes(v));
    }
    t
}

/// What this helper needs of a key's public area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpmPublic {
    pub key: PublicKey,
    pub attributes: u32,
    /// The size of `authPolicy`: non-zero when a policy may authorise the key.
    pub auth_policy_len: usize,
}

/// Why a public area cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicError {
    #[error("{0}")]
    Malformed(#[from] Malformed),
    #[error("is a {0} key; only RSA and ECC keys sign")]
    Unsupported(String),
}

/// Reads a `TPMT_PUBLIC` (without the `TPM2B` size).
pub fn parse(area: &[u8]) -> Result<TpmPublic, PublicError> {
    let mut r = Reader::new(area);
    let kind = r.u16("public area type")?;
    let _name_alg = r.u16("public area nameAlg")?;
    let attributes = r.u32("public area attributes")?;
    let auth_policy_len = r.sized("public area authPolicy")?.len();
    // TPMT_SYM_DEF_OBJECT: an algorithm, then key bits and mode unless it is NULL.
    let symmetric = r.u16("public area symmetric")?;
    if symmetric != ALG_NULL {
        r.take(4, "public area symmetric")?;
    }
    // TPMT_*_SCHEME: an algorithm, then its hash unless it is NULL.
    let scheme = r.u16("public area scheme")?;
    if scheme != ALG_NULL {
        r.take(2, "public area scheme")?;
    }
    let key = match kind {
        ALG_RSA => {
            let _bits = r.u16("RSA key bits")?;
            let exponent = match r.u32("RSA exponent")? {
                0 => 65537,
                e => e,
            };
            let modulus = r.sized("RSA modulus")?;
            PublicKey::rsa_from_parts(modulus, &exponent.to_be_bytes())
                .ok_or(Malformed("the RSA modulus is not a valid key"))?
        }
        ALG_ECC => {
            let curve = r.u16("ECC curve")?;
            let kdf = r.u16("ECC KDF")?;
            if kdf != ALG_NULL {
                r.take(2, "ECC KDF")?;
            }
            let x = r.sized("ECC point x")?;
            let y = r.sized("ECC point y")?;
            ec_public_key(curve, x, y)?
        }
        other => return Err(PublicError::Unsupported(format!("type 0x{other:04x}"))),
    };
    Ok(TpmPublic {
        key,
        attributes,
        auth_policy_len,
    })
}

/// An EC public key from its curve and coordinates (each left-padded to the field size,
/// since a TPM may drop leading zero bytes).
fn ec_public_key(curve: u16, x: &[u8], y: &[u8]) -> Result<PublicKey, PublicError> {
    let size = match curve {
        ECC_NIST_P256 => 32,
        ECC_NIST_P384 => 48,
        ECC_NIST_P521 => 66,
        other => {
            return Err(PublicError::Unsupported(format!("ECC curve 0x{other:04x}")));
        }
    };
    if x.len() > size || y.len() > size {
        return Err(Malformed("an ECC coordinate is longer than its curve").into());
    }
    let mut point = vec![0x04];
    for c in [x, y] {
        point.extend(std::iter::repeat_n(0, size - c.len()));
        point.extend_from_slice(c);
    }
    let bad = |_| PublicError::Malformed(Malformed("the ECC point is not on its curve"));
    Ok(match curve {
        ECC_NIST_P256 => {
            PublicKey::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(bad)?)
        }
        ECC_NIST_P384 => {
            PublicKey::P384(p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(bad)?)
        }
        _ => PublicKey::P521(p521::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(bad)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public area tpm2-openssl 1.1 wrote for an EC P-256 key (from a `TSS2 PRIVATE
    /// KEY` made on swtpm).
    const EC_P256: &str = "0023000B00060072000000100010000300100020B319B48702D0524D97CFB57F3B7D7533DDE8BB9308D94D29CA46A81583E751DF002092CD982013104F75B8300077F0C2759AABD55261E647D021A0B80DCF1603B624";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn an_ec_public_area_gives_its_key_and_attributes() {
        let public = parse(&hex(EC_P256)).unwrap();
        assert_eq!(public.key.describe(), "EC P-256");
        assert_eq!(public.attributes & ATTR_SIGN, ATTR_SIGN);
        assert_eq!(public.attributes & ATTR_USER_WITH_AUTH, ATTR_USER_WITH_AUTH);
        assert_eq!(public.auth_policy_len, 0);
    }

    #[test]
    fn truncated_and_foreign_areas_are_refused() {
        let area = hex(EC_P256);
        assert!(matches!(
            parse(&area[..area.len() - 1]),
            Err(PublicError::Malformed(_))
        ));
        let mut keyed_hash = area.clone();
        keyed_hash[1] = 0x08;
        assert!(matches!(
            parse(&keyed_hash),
            Err(PublicError::Unsupported(_))
        ));
    }

    #[test]
    fn the_storage_template_is_the_tcg_one() {
        let t = storage_primary_template();
        assert_eq!(
            t,
            hex(
                "0023000B000304720000000600800043001000030010" /* sym, scheme, curve, kdf */
            )
            .into_iter()
            .chain([0, 0, 0, 0])
            .collect::<Vec<u8>>()
        );
    }
}
