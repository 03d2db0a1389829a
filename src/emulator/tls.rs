//! The emulator's TLS: a throwaway CA and server certificate made at start, or a given
//! certificate and key. Clients must verify the server as they would verify AWS, so the CA is
//! handed to them (`AWS_CA_BUNDLE`) instead of switching verification off.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::errors::EmulatorError;

/// A server certificate chain and key, with the CA to trust when it was made here.
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub ca_pem: Option<String>,
}

/// Makes a CA (valid one day back to 30 days ahead) and a server certificate for 127.0.0.1,
/// ::1 and localhost, both P-256.
pub fn self_made() -> Result<ServerIdentity, EmulatorError> {
    let tls = |e: rcgen::Error| EmulatorError::Tls(format!("cannot make a certificate: {e}"));
    let now = time::OffsetDateTime::now_utc();
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "rolesanywhere-helper emulator TLS CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - time::Duration::days(1);
    ca_params.not_after = now + time::Duration::days(30);
    let ca_key = KeyPair::generate().map_err(tls)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "rolesanywhere-helper emulator");
    params.subject_alt_names = vec![
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        SanType::DnsName("localhost".try_into().map_err(tls)?),
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30);
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(tls)?;
    let cert = params.signed_by(&key, &issuer).map_err(tls)?;
    Ok(ServerIdentity {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        ca_pem: Some(ca_cert.pem()),
    })
}

/// A given PEM certificate chain (leaf first) and PEM private key.
pub fn given(cert_pem: &str, key_pem: &str) -> Result<ServerIdentity, EmulatorError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EmulatorError::Tls(format!("the TLS certificate file is not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(EmulatorError::Tls(
            "the TLS certificate file holds no CERTIFICATE".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
        EmulatorError::Tls(format!("the TLS key file holds no usable private key: {e}"))
    })?;
    Ok(ServerIdentity {
        chain,
        key,
        ca_pem: None,
    })
}

/// A TLS 1.2+ acceptor (ring provider) speaking HTTP/1.1.
pub fn acceptor(identity: ServerIdentity) -> Result<TlsAcceptor, EmulatorError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EmulatorError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)
        .map_err(|e| {
            EmulatorError::Tls(format!(
                "the certificate and key cannot be used together: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
