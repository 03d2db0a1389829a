//! Certificates as the service sees them: parsing, the end-entity and CA profiles of
//! signing-spec §4, path building from an unordered pool to a trust anchor, validity,
//! and revocation by imported CRLs.
//!
//! Path building is the expensive part of a request (several signature checks), and a
//! client sends the same leaf and chain on every call, so [`ChainCache`] keeps the result
//! keyed by the exact header bytes. What can change between two calls with the same bytes
//! is the clock, so the cached result keeps every validity window and they are checked again
//! on each use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use super::signature::{CertSignature, PublicKey};

/// The service's limit on certificates in `X-Amz-X509-Chain`.
pub const MAX_CHAIN: usize = 5;
/// The largest certificate the emulator parses (real ones are 1 to 3 KiB).
const MAX_CERT_DER: usize = 16 * 1024;

/// A parsed certificate, owned, with what the checks need.
#[derive(Clone, Debug)]
pub struct Cert {
    /// The DER as received.
    pub der: Vec<u8>,
    /// Raw DER of the subject and issuer names, compared byte for byte when chaining.
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    /// The subject as text, for messages.
    pub subject: String,
    /// The serial as a decimal integer, the form of `Credential=`.
    pub serial_decimal: String,
    /// The serial as lowercase hex with no leading zeros (the default role session name).
    pub serial_hex: String,
    /// The serial's big-endian magnitude, no leading zero bytes (compared with CRL entries).
    serial_bytes: Vec<u8>,
    /// The subject's first common name.
    pub common_name: Option<String>,
    /// X.509 version as encoded (2 means v3).
    version: u32,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// basicConstraints: `Some(ca)` when present.
    ca: Option<bool>,
    path_len: Option<u32>,
    /// keyUsage bits, when the extension is present.
    key_usage: Option<KeyUsage>,
    /// A critical extension this parser does not know (RFC 5280 says: reject).
    unknown_critical: Option<String>,
    /// The subject's public key.
    pub key: PublicKey,
    /// How the issuer signed this certificate, and the signed bytes.
    signature_alg: CertSignature,
    signature: Vec<u8>,
    tbs: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
struct KeyUsage {
    digital_signature: bool,
    key_cert_sign: bool,
}

impl Cert {
    /// Parses one DER certificate; trailing bytes are refused.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        if der.len() > MAX_CERT_DER {
            return Err(format!(
                "is {} bytes long, more than the {MAX_CERT_DER} this emulator reads",
                der.len()
            ));
        }
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| format!("is not a DER X.509 certificate ({e})"))?;
        if !rest.is_empty() {
            return Err("has trailing bytes after the certificate".into());
        }
        let bc = cert
            .basic_constraints()
            .map_err(|e| format!("has an invalid basicConstraints extension ({e})"))?;
        let ku = cert
            .key_usage()
            .map_err(|e| format!("has an invalid keyUsage extension ({e})"))?;
        let unknown_critical = cert
            .extensions()
            .iter()
            .find(|ext| {
                ext.critical
                    && matches!(
                        ext.parsed_extension(),
                        ParsedExtension::UnsupportedExtension { .. }
                    )
            })
            .map(|ext| ext.oid.to_id_string());
        let serial = cert.tbs_certificate.serial.clone();
        let serial_bytes = serial.to_bytes_be();
        let serial_bytes = if serial_bytes == [0] {
            Vec::new()
        } else {
            serial_bytes
        };
        Ok(Self {
            der: der.to_vec(),
            subject_raw: cert.subject().as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            subject: cert.subject().to_string(),
            serial_decimal: serial.to_str_radix(10),
            serial_hex: serial.to_str_radix(16),
            serial_bytes,
            common_name: cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_owned),
            version: cert.version().0,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            ca: bc.as_ref().map(|b| b.value.ca),
            path_len: bc.as_ref().and_then(|b| b.value.path_len_constraint),
            key_usage: ku.map(|k| KeyUsage {
                digital_signature: k.value.digital_signature(),
                key_cert_sign: k.value.key_cert_sign(),
            }),
            unknown_critical,
            key: PublicKey::from_spki(cert.public_key()),
            signature_alg: CertSignature::from_oid(
                &cert.signature_algorithm.algorithm.to_id_string(),
            ),
            signature: cert.signature_value.data.to_vec(),
            tbs: cert.tbs_certificate.as_ref().to_vec(),
        })
    }

    /// Parses the base64 of one DER certificate (an `X-Amz-X509` value or a chain element).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let der = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| "is not standard base64".to_owned())?;
        Self::from_der(&der)
    }

    /// `"CN=..." (serial N)`, for messages.
    pub fn describe(&self) -> String {
        format!("\"{}\" (serial {})", self.subject, self.serial_decimal)
    }

    /// Whether `self` names `issuer` as its issuer.
    fn issued_by_name(&self, issuer: &Cert) -> bool {
        self.issuer_raw == issuer.subject_raw
    }

    /// Checks the end-entity profile: v3, not a CA, digitalSignature, a subject, a strong
    /// signature algorithm.
    pub fn check_leaf_profile(&self) -> Result<(), String> {
        let who = format!("the signing certificate {}", self.describe());
        if self.version != 2 {
            return Err(format!("{who} is X.509 v{}, not v3", self.version + 1));
        }
        if self.ca == Some(true) {
            return Err(format!(
                "{who} is a CA certificate (basicConstraints CA:TRUE); the leaf must be an end-entity certificate"
            ));
        }
        match self.key_usage {
            None => {
                return Err(format!(
                    "{who} has no keyUsage extension; it must allow digitalSignature"
                ));
            }
            Some(ku) if !ku.digital_signature => {
                return Err(format!("{who} has a keyUsage without digitalSignature"));
            }
            Some(_) => {}
        }
        if self.subject_raw.len() <= 2 {
            return Err(format!("{who} has an empty subject"));
        }
        self.check_signature_and_extensions(&who)
    }

    /// Checks the CA profile (trust anchors and intermediates): CA:true, keyCertSign when
    /// keyUsage is present (required for anchors), a strong signature algorithm.
    fn check_ca_profile(&self, role: &str, require_key_usage: bool) -> Result<(), String> {
        let who = format!("{role} {}", self.describe());
        if self.ca != Some(true) {
            return Err(format!(
                "{who} is not a CA certificate (basicConstraints CA:TRUE is required)"
            ));
        }
        match self.key_usage {
            None if require_key_usage => {
                return Err(format!(
                    "{who} has no keyUsage extension; keyCertSign is required"
                ));
            }
            Some(ku) if !ku.key_cert_sign => {
                return Err(format!("{who} has a keyUsage without keyCertSign"));
            }
            _ => {}
        }
        self.check_signature_and_extensions(&who)
    }

    /// The rules every certificate on the path follows: a strong signature algorithm and no
    /// critical extension this verifier does not understand.
    fn check_signature_and_extensions(&self, who: &str) -> Result<(), String> {
        if let CertSignature::Weak(name) = &self.signature_alg {
            return Err(format!(
                "{who} is signed with {name}; MD5 and SHA-1 signatures are refused"
            ));
        }
        if let Some(oid) = &self.unknown_critical {
            return Err(format!("{who} has an unknown critical extension {oid}"));
        }
        Ok(())
    }

    /// Checks that `issuer` signed this certificate.
    fn verify_issued_by(&self, issuer: &Cert) -> Result<(), String> {
        self.signature_alg
            .verify(&issuer.key, &self.tbs, &self.signature)
            .map_err(|e| format!("certificate {} {e}", self.describe()))
    }
}

/// A trust anchor's CA certificates, checked once when the emulator starts.
#[derive(Clone, Debug)]
pub struct AnchorCerts {
    certs: Vec<Cert>,
}

impl AnchorCerts {
    /// Parses and checks anchor certificates (DER). The CA profile of signing-spec §4
    /// (CA:true, keyCertSign, no MD5/SHA-1) is enforced here, so that a misconfigured anchor
    /// is reported at start rather than as a mysterious refusal later.
    pub fn new(ders: &[Vec<u8>]) -> Result<Self, String> {
        if ders.is_empty() {
            return Err("a trust anchor needs at least one CA certificate".into());
        }
        let mut certs = Vec::with_capacity(ders.len());
        for der in ders {
            let cert = Cert::from_der(der).map_err(|e| format!("trust anchor certificate {e}"))?;
            cert.check_ca_profile("trust anchor certificate", true)?;
            certs.push(cert);
        }
        Ok(Self { certs })
    }
}

/// An imported CRL, checked against the issuer found on the path at request time.
#[derive(Clone, Debug)]
pub struct Crl {
    issuer_raw: Vec<u8>,
    issuer: String,
    revoked: Vec<Vec<u8>>,
    signature_alg: CertSignature,
    signature: Vec<u8>,
    tbs: Vec<u8>,
}

impl Crl {
    /// Parses one DER CRL.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let (rest, crl) = CertificateRevocationList::from_der(der)
            .map_err(|e| format!("is not a DER X.509 CRL ({e})"))?;
        if !rest.is_empty() {
            return Err("has trailing bytes after the CRL".into());
        }
        Ok(Self {
            issuer_raw: crl.issuer().as_raw().to_vec(),
            issuer: crl.issuer().to_string(),
            revoked: crl
                .iter_revoked_certificates()
                .map(|r| {
                    let bytes = r.serial().to_bytes_be();
                    if bytes == [0] { Vec::new() } else { bytes }
                })
                .collect(),
            signature_alg: CertSignature::from_oid(
                &crl.signature_algorithm.algorithm.to_id_string(),
            ),
            signature: crl.signature_value.data.to_vec(),
            tbs: crl.tbs_cert_list.as_ref().to_vec(),
        })
    }

    /// The issuer, for messages.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Whether this CRL, if really signed by `issuer`, lists `cert` as revoked.
    fn revokes(&self, cert: &Cert, issuer: &Cert) -> bool {
        cert.issuer_raw == self.issuer_raw
            && self.revoked.contains(&cert.serial_bytes)
            && self
                .signature_alg
                .verify(&issuer.key, &self.tbs, &self.signature)
                .is_ok()
    }
}

/// A validated path: the leaf, and each certificate's validity window to re-check per use.
#[derive(Debug)]
pub struct ValidPath {
    windows: Vec<(String, i64, i64)>,
}

impl ValidPath {
    /// Checks every certificate of the path (leaf, intermediates, anchor) is valid at `now`.
    pub fn check_validity(&self, now: i64) -> Result<(), String> {
        for (who, not_before, not_after) in &self.windows {
            if now > *not_after {
                return Err(format!("{who} expired at {}", rfc3339(*not_after)));
            }
            if now < *not_before {
                return Err(format!(
                    "{who} is not valid before {}",
                    rfc3339(*not_before)
                ));
            }
        }
        Ok(())
    }
}

/// Builds and checks a path from `leaf` through certificates of `pool` (any order, copies of
/// the leaf or of an anchor tolerated) to one of `anchors`, and checks revocation by `crls`.
/// The leaf profile is checked by the caller; validity is checked by [`ValidPath`].
pub fn build_path(
    leaf: &Cert,
    pool: &[Cert],
    anchors: &AnchorCerts,
    crls: &[Arc<Crl>],
) -> Result<ValidPath, String> {
    if pool.len() > MAX_CHAIN {
        return Err(format!(
            "X-Amz-X509-Chain holds {} certificates; at most {MAX_CHAIN} are accepted",
            pool.len()
        ));
    }
    let mut path: Vec<&Cert> = vec![leaf];
    let mut used = vec![false; pool.len()];
    let mut problems = Vec::new();
    let Some(anchor) = extend(&mut path, pool, &mut used, anchors, &mut problems) else {
        let detail = if problems.is_empty() {
            format!(
                "no certificate in X-Amz-X509-Chain or the trust anchor is the issuer \"{}\" of {} (is an intermediate missing?)",
                issuer_name(path[path.len() - 1]),
                path[path.len() - 1].describe()
            )
        } else {
            problems.join("; ")
        };
        return Err(format!("no trust chain to the trust anchor: {detail}"));
    };
    // Revocation: each certificate below the anchor, against CRLs its issuer signed.
    let mut chain: Vec<&Cert> = path.clone();
    chain.push(anchor);
    for pair in chain.windows(2) {
        let (cert, issuer) = (pair[0], pair[1]);
        if let Some(crl) = crls.iter().find(|crl| crl.revokes(cert, issuer)) {
            return Err(format!(
                "certificate {} is revoked by the CRL of \"{}\"",
                cert.describe(),
                crl.issuer()
            ));
        }
    }
    let windows = chain
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let role = if i == 0 {
                "the signing certificate"
            } else if i == chain.len() - 1 {
                "the trust anchor certificate"
            } else {
                "intermediate certificate"
            };
            (
                format!("{role} {}", c.describe()),
                c.not_before,
                c.not_after,
            )
        })
        .collect();
    Ok(ValidPath { windows })
}

fn issuer_name(cert: &Cert) -> String {
    x509_parser::x509::X509Name::from_der(&cert.issuer_raw)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Depth-first search for an issuer of the last certificate in `path`: an anchor first,
/// then unused pool certificates. Returns the anchor reached.
fn extend<'a>(
    path: &mut Vec<&'a Cert>,
    pool: &'a [Cert],
    used: &mut [bool],
    anchors: &'a AnchorCerts,
    problems: &mut Vec<String>,
) -> Option<&'a Cert> {
    let current = *path.last()?;
    for anchor in &anchors.certs {
        if current.issued_by_name(anchor) {
            match current.verify_issued_by(anchor) {
                Ok(()) => return Some(anchor),
                Err(e) => problems.push(e),
            }
        }
    }
    // At most MAX_CHAIN intermediates between the leaf and the anchor.
    if path.len() > MAX_CHAIN {
        return None;
    }
    for i in 0..pool.len() {
        let candidate = &pool[i];
        if used[i] || !current.issued_by_name(candidate) || candidate.der == current.der {
            continue;
        }
        if path.iter().any(|c| c.der == candidate.der) {
            continue;
        }
        if let Err(e) = candidate.check_ca_profile("intermediate certificate", false) {
            problems.push(e);
            continue;
        }
        // pathLenConstraint: the number of intermediates below this CA.
        let below = path.len() - 1;
        if candidate.path_len.is_some_and(|max| below > max as usize) {
            problems.push(format!(
                "intermediate certificate {} allows {} intermediates below it, the path has {below}",
                candidate.describe(),
                candidate.path_len.unwrap_or(0)
            ));
            continue;
        }
        if let Err(e) = current.verify_issued_by(candidate) {
            problems.push(e);
            continue;
        }
        used[i] = true;
        path.push(candidate);
        if let Some(anchor) = extend(path, pool, used, anchors, problems) {
            return Some(anchor);
        }
        path.pop();
        used[i] = false;
    }
    None
}

/// A bounded map with whole-map eviction: when full, it starts again empty. Lookups are the
/// hot path and must stay cheap; a cache miss only costs the work the cache saves.
#[derive(Debug)]
pub struct BoundedCache<V> {
    map: Mutex<HashMap<Vec<u8>, Arc<V>>>,
    capacity: usize,
}

impl<V> BoundedCache<V> {
    /// A cache holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The cached value for `key`, or the one `make` computes (which is cached if `Ok`).
    pub fn get_or_try<E>(
        &self,
        key: &[u8],
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        if let Some(v) = self.lock().get(key) {
            return Ok(Arc::clone(v));
        }
        let value = Arc::new(make()?);
        let mut map = self.lock();
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(key.to_vec(), Arc::clone(&value));
        Ok(value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Arc<V>>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time.
pub fn rfc3339(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => unix.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(Cert::from_base64("%%%").unwrap_err().contains("base64"));
        assert!(
            Cert::from_der(b"\x30\x03\x02\x01\x01")
                .unwrap_err()
                .contains("X.509")
        );
        assert!(
            Cert::from_der(&vec![0u8; MAX_CERT_DER + 1])
                .unwrap_err()
                .contains("bytes long")
        );
        assert!(AnchorCerts::new(&[]).is_err());
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_720_265_939), "2024-07-06T11:38:59Z");
    }

    #[test]
    fn cache_is_bounded() {
        let cache: BoundedCache<u32> = BoundedCache::new(2);
        for i in 0..5u8 {
            let v = cache.get_or_try::<()>(&[i], || Ok(u32::from(i))).unwrap();
            assert_eq!(*v, u32::from(i));
            assert!(cache.lock().len() <= 2);
        }
        let err = cache.get_or_try(b"x", || Err::<u32, _>("no"));
        assert_eq!(err.unwrap_err(), "no");
        assert!(!cache.lock().contains_key(b"x".as_slice()));
    }
}
