//! ML-DSA end to end without the client's ML-DSA code: `pki init --key-type ml-dsa-*` files,
//! requests signed here with the `fips204` crate from the seed in `leaf.key`, and the
//! emulator's own chain building and signature checks.
//!
//! The canonical request comes from `sigv4x509::prepare`; only the algorithm name in the
//! string to sign and in `Authorization` is set to `AWS4-X509-MLDSA` by hand.

use der::Decode as _;
use der::asn1::OctetString;
use fips204::traits::{KeyGen as _, SerDes as _, Signer as _};
use rolesanywhere_helper::pki::{DevPki, KeyType, PkiOptions};
use rolesanywhere_helper::sigv4x509::{self, Algorithm, SessionRequest};

use crate::emulator::*;

const MLDSA: &str = "AWS4-X509-MLDSA";

/// The DER of every PEM block in `pem`.
fn ders(pem: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .map(|p| p.unwrap().contents)
        .collect()
}

/// The seed and expanded key of a PKCS#8 ML-DSA key in the "both" form.
fn both_form(key_pem: &str) -> ([u8; 32], Vec<u8>) {
    let der = &ders(key_pem)[0];
    let info = pkcs8::PrivateKeyInfoRef::from_der(der).unwrap();
    let both = Vec::<OctetString>::from_der(info.private_key.as_bytes()).unwrap();
    assert_eq!(both.len(), 2, "SEQUENCE {{ seed, expandedKey }}");
    (
        both[0].as_bytes().try_into().unwrap(),
        both[1].as_bytes().to_vec(),
    )
}

/// A deterministic ML-DSA signer of one size.
type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// An ML-DSA identity: the leaf, its chain, and a deterministic signer from the key file.
struct MlDsaIdentity {
    leaf_der: Vec<u8>,
    chain: Vec<Vec<u8>>,
    serial: String,
    sign: SignFn,
}

impl MlDsaIdentity {
    /// From a PKI's files; checks that the expanded key and the certificate's public key are
    /// the ones the seed gives with another ML-DSA implementation.
    fn from_pki(pki: &DevPki, level: KeyType) -> Self {
        let (seed, expanded) = both_form(pki.leaf_key_pem());
        let leaf_der = ders(pki.leaf_pem()).remove(0);
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
        let cert_key = cert.public_key().subject_public_key.data.to_vec();
        macro_rules! signer {
            ($set:ident) => {{
                let (pk, sk) = fips204::$set::KG::keygen_from_seed(&seed);
                assert_eq!(pk.into_bytes().to_vec(), cert_key, "public key of the seed");
                assert_eq!(sk.clone().into_bytes().to_vec(), expanded, "expanded key");
                Box::new(move |m: &[u8]| sk.try_sign_with_seed(&[0; 32], m, &[]).unwrap().to_vec())
                    as SignFn
            }};
        }
        let sign = match level {
            KeyType::MlDsa44 => signer!(ml_dsa_44),
            KeyType::MlDsa65 => signer!(ml_dsa_65),
            KeyType::MlDsa87 => signer!(ml_dsa_87),
            other => panic!("{other:?} is not ML-DSA"),
        };
        Self {
            serial: cert.tbs_certificate.serial.to_str_radix(10),
            leaf_der,
            chain: pki.leaf_chain_pem().map(|c| ders(&c)).unwrap_or_default(),
            sign,
        }
    }

    /// `POST /sessions` signed with the algorithm name `name`.
    fn request(&self, emu: &rolesanywhere_helper::emulator::Emulator, name: &str) -> Outgoing {
        let amz_date = sigv4x509::amz_date(now());
        let query = [
            ("profileArn", PROFILE),
            ("roleArn", ROLE),
            ("trustAnchorArn", TA),
        ];
        let prepared = SessionRequest {
            host: &host(emu),
            region: REGION,
            amz_date: &amz_date,
            query: &query,
            body: BODY.as_bytes(),
            leaf_der: &self.leaf_der,
            chain_der: &self.chain,
        }
        .prepare(Algorithm::EcdsaSha256);
        let ecdsa = Algorithm::EcdsaSha256.as_str();
        let string_to_sign = prepared.string_to_sign.replacen(ecdsa, name, 1);
        assert!(string_to_sign.starts_with(name));
        let signature = (self.sign)(string_to_sign.as_bytes());
        let authorization = prepared
            .authorization(Algorithm::EcdsaSha256, &self.serial, &signature)
            .replacen(ecdsa, name, 1);
        let mut headers: Vec<(String, String)> = prepared
            .headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        headers.push(("authorization".into(), authorization));
        Outgoing {
            path_and_query: format!("/sessions?{}", sigv4x509::canonical_query(query)),
            headers,
            body: BODY.as_bytes().to_vec(),
        }
    }
}

fn pki(key_type: KeyType) -> DevPki {
    DevPki::generate(&PkiOptions {
        key_type,
        intermediate: true,
        ..PkiOptions::default()
    })
    .unwrap()
}

#[tokio::test]
async fn each_mldsa_size_gets_credentials_through_an_intermediate() {
    for key_type in [KeyType::MlDsa44, KeyType::MlDsa65, KeyType::MlDsa87] {
        let pki = pki(key_type);
        let id = MlDsaIdentity::from_pki(&pki, key_type);
        assert_eq!(id.chain.len(), 1);
        let emu = start(pki.root_pem()).await;
        let req = id.request(&emu, MLDSA);
        if key_type == KeyType::MlDsa87 {
            // The sizes the header limits must take: about 9.3 KB and 10 KB (and the chain).
            assert!(req.header("authorization").len() > 9_000);
            assert!(req.header("x-amz-x509").len() > 9_500);
            assert!(req.header("x-amz-x509-chain").len() > 9_500);
        }
        let reply = post(&emu, &req).await;
        assert_eq!(reply.status, 201, "{key_type:?}: {}", reply.reason());
        assert!(reply.json()["credentialSet"][0]["credentials"]["accessKeyId"].is_string());
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn an_mldsa87_request_with_a_full_chain_fits_the_header_limit() {
    let pki = pki(KeyType::MlDsa87);
    let mut id = MlDsaIdentity::from_pki(&pki, KeyType::MlDsa87);
    // Five copies of the intermediate: the largest chain the service takes, all ML-DSA-87,
    // about 70 KB of headers (the emulator's read buffer takes 96 KiB).
    id.chain = vec![id.chain[0].clone(); 5];
    let emu = start(pki.root_pem()).await;
    let req = id.request(&emu, MLDSA);
    let head: usize = req.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    assert!(head > 65 * 1024, "{head} bytes of headers");
    let reply = post(&emu, &req).await;
    assert_eq!(reply.status, 201, "{}", reply.reason());
    emu.shutdown().await;
}

#[tokio::test]
async fn pki_init_files_verify_and_tampering_fails() {
    let pki = pki(KeyType::MlDsa65);
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path()).unwrap();
    for name in [
        "root-ca.pem",
        "intermediate-ca.pem",
        "leaf.pem",
        "leaf-chain.pem",
        "leaf-fullchain.pem",
        "tls.pem",
        "tls-ca.pem",
    ] {
        assert!(dir.path().join(name).is_file(), "{name}");
    }
    // The intermediate key is in the "both" form too.
    let (seed, expanded) =
        both_form(&std::fs::read_to_string(dir.path().join("intermediate-ca.key")).unwrap());
    let (_, sk) = fips204::ml_dsa_65::KG::keygen_from_seed(&seed);
    assert_eq!(sk.into_bytes().to_vec(), expanded);
    // The TLS certificate is P-256 under the TLS CA, not under the ML-DSA root.
    let tls = ders(&std::fs::read_to_string(dir.path().join("tls.pem")).unwrap()).remove(0);
    let (_, tls) = x509_parser::parse_x509_certificate(&tls).unwrap();
    assert_eq!(
        tls.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.2"
    );
    assert!(tls.issuer().to_string().contains("TLS CA"));

    let id = MlDsaIdentity::from_pki(&pki, KeyType::MlDsa65);
    let emu = start(&std::fs::read_to_string(dir.path().join("root-ca.pem")).unwrap()).await;
    assert_eq!(post(&emu, &id.request(&emu, MLDSA)).await.status, 201);

    // One flipped bit in the signature.
    let mut req = id.request(&emu, MLDSA);
    let auth = req.header("authorization").to_owned();
    let last = auth.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    req.set_header(
        "authorization",
        &format!("{}{flipped}", &auth[..auth.len() - 1]),
    );
    post(&emu, &req).await.assert_refused(
        403,
        "AccessDeniedException",
        "Invalid signature",
        "does not verify",
    );

    // The ECDSA name with an ML-DSA key.
    let req = id.request(&emu, "AWS4-X509-ECDSA-SHA256");
    post(&emu, &req).await.assert_refused(
        403,
        "AccessDeniedException",
        "Invalid signature",
        "does not fit the certificate's ML-DSA-65 key",
    );

    // Without the intermediate the chain does not reach the root.
    let mut alone = MlDsaIdentity::from_pki(&pki, KeyType::MlDsa65);
    alone.chain.clear();
    post(&emu, &alone.request(&emu, MLDSA))
        .await
        .assert_refused(
            403,
            "AccessDeniedException",
            "Untrusted Signing Certificate",
            "is an intermediate missing?",
        );
    emu.shutdown().await;
}

#[tokio::test]
async fn an_mldsa_root_does_not_accept_a_leaf_of_another_size() {
    // The PKIs use the same names, so the 65 intermediate names the 44 root as its issuer;
    // its ML-DSA-65 signature must not be checked with the ML-DSA-44 key.
    let p44 = pki(KeyType::MlDsa44);
    let p65 = pki(KeyType::MlDsa65);
    let id = MlDsaIdentity::from_pki(&p65, KeyType::MlDsa65);
    let emu = start(p44.root_pem()).await;
    post(&emu, &id.request(&emu, MLDSA)).await.assert_refused(
        403,
        "AccessDeniedException",
        "Untrusted Signing Certificate",
        "does not fit its issuer's ML-DSA-44 key",
    );
    emu.shutdown().await;
}

/// The end-entity profile for a leaf issued by hand under a test CA.
struct LeafProfile {
    subject: x509_cert::name::Name,
    issuer: x509_cert::name::Name,
}

impl x509_cert::builder::profile::BuilderProfile for LeafProfile {
    fn get_issuer(&self, _subject: &x509_cert::name::Name) -> x509_cert::name::Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> x509_cert::name::Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<x509_cert::ext::Extension>> {
        use der::Encode as _;
        use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
        let ext = |oid, value: Vec<u8>| x509_cert::ext::Extension {
            extn_id: oid,
            critical: true,
            extn_value: OctetString::new(value).unwrap(),
        };
        Ok(vec![
            ext(
                der::oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
                BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                }
                .to_der()?,
            ),
            ext(
                der::oid::db::rfc5280::ID_CE_KEY_USAGE,
                KeyUsage(KeyUsages::DigitalSignature.into()).to_der()?,
            ),
        ])
    }
}

#[tokio::test]
async fn an_mldsa_leaf_under_an_ec_root_gets_credentials() {
    use std::str::FromStr as _;
    use x509_cert::builder::{Builder as _, CertificateBuilder};

    let root = TestCa::root("ec root for ML-DSA");
    let root_der = ders(&root.pem).remove(0);
    let root_cert = x509_cert::Certificate::from_der(&root_der).unwrap();
    let ca_key = {
        use p256::pkcs8::DecodePrivateKey as _;
        p256::ecdsa::SigningKey::from_pkcs8_pem(&root.key_pem()).unwrap()
    };
    let (pk, sk) = fips204::ml_dsa_44::KG::keygen_from_seed(&[9; 32]);
    let spki = spki::SubjectPublicKeyInfoOwned {
        algorithm: spki::AlgorithmIdentifierOwned {
            oid: der::oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.17"),
            parameters: None,
        },
        subject_public_key: der::asn1::BitString::from_bytes(&pk.into_bytes()).unwrap(),
    };
    let now = std::time::SystemTime::now();
    let validity = x509_cert::time::Validity::new(
        x509_cert::time::Time::try_from(now - std::time::Duration::from_secs(60)).unwrap(),
        x509_cert::time::Time::try_from(now + std::time::Duration::from_secs(86_400)).unwrap(),
    );
    let profile = LeafProfile {
        subject: x509_cert::name::Name::from_str("CN=ML-DSA-44 leaf under EC").unwrap(),
        issuer: root_cert.tbs_certificate().subject().clone(),
    };
    let serial = x509_cert::serial_number::SerialNumber::new(&[0x42, 1, 2, 3]).unwrap();
    let leaf = CertificateBuilder::new(profile, serial, validity, spki)
        .unwrap()
        .build::<_, p256::ecdsa::DerSignature>(&ca_key)
        .unwrap();
    let leaf_der = der::Encode::to_der(&leaf).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
    let id = MlDsaIdentity {
        serial: parsed.tbs_certificate.serial.to_str_radix(10),
        leaf_der,
        chain: Vec::new(),
        sign: Box::new(move |m: &[u8]| sk.try_sign_with_seed(&[0; 32], m, &[]).unwrap().to_vec()),
    };
    let emu = start(&root.pem).await;
    let reply = post(&emu, &id.request(&emu, MLDSA)).await;
    assert_eq!(reply.status, 201, "{}", reply.reason());
    emu.shutdown().await;
}
