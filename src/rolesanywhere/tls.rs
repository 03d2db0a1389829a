//! Whom the client trusts: the system roots plus the CA bundle (`--ca-bundle`,
//! `AWS_CA_BUNDLE`), or, with `--no-verify-ssl`, any server certificate.

use std::path::Path;
use std::sync::Arc;

use super::error::{CaBundleError, ClientError};
use super::settings::ClientConfig;

/// rustls with the ring provider, TLS 1.2 and 1.3, trusting the system roots plus the
/// CA bundle.
pub(super) fn config(config: &ClientConfig) -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(ClientError::Tls)?;
    if config.insecure_skip_verify {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(insecure::AcceptAnything(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: the bundle may be all that is needed.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = &config.ca_bundle {
        add_bundle(&mut roots, path).map_err(|source| ClientError::CaBundle {
            path: path.clone(),
            source,
        })?;
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Adds every CERTIFICATE of the PEM file at `path`. The file is read only if it is a
/// regular file of at most [`MAX_CA_BUNDLE`](crate::files::MAX_CA_BUNDLE) bytes: a device
/// or a FIFO named by mistake is refused at once instead of being read until memory runs
/// out or blocking for ever.
fn add_bundle(roots: &mut rustls::RootCertStore, path: &Path) -> Result<(), CaBundleError> {
    let bytes = crate::files::read_regular(path, crate::files::MAX_CA_BUNDLE)
        .map_err(CaBundleError::Read)?;
    let blocks = crate::identity::pem::blocks(&bytes).map_err(CaBundleError::Pem)?;
    let mut added = 0;
    for block in blocks.iter().filter(|b| b.label == "CERTIFICATE") {
        roots
            .add(rustls_pki_types::CertificateDer::from(block.der.to_vec()))
            .map_err(CaBundleError::Certificate)?;
        added += 1;
    }
    if added == 0 {
        return Err(CaBundleError::NoCertificate);
    }
    Ok(())
}

mod insecure {
    //! `--no-verify-ssl`: accepts any server certificate. Signatures over the handshake are
    //! still checked, so only the identity of the server goes unverified.
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    pub struct AcceptAnything(pub std::sync::Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAnything {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn with_bundle(path: &Path) -> ClientConfig {
        ClientConfig {
            ca_bundle: Some(path.to_path_buf()),
            ..ClientConfig::new("https://rolesanywhere.us-east-1.amazonaws.com")
        }
    }

    /// The one line a user sees for a bad `--ca-bundle`.
    fn refusal(path: &Path) -> String {
        let started = Instant::now();
        let error = config(&with_bundle(path)).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{} took {:?}",
            path.display(),
            started.elapsed()
        );
        assert!(matches!(error, ClientError::CaBundle { .. }), "{error:?}");
        let text = error.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("--ca-bundle"), "{text}");
        text
    }

    #[test]
    fn devices_fifos_and_huge_files_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();

        let text = refusal(Path::new("/dev/zero"));
        assert!(text.contains("not a regular file"), "{text}");

        let fifo = dir.path().join("bundle.fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let text = refusal(&fifo);
        assert!(text.contains("FIFO"), "{text}");

        // 2 GB that take no disk space.
        let sparse = dir.path().join("sparse.pem");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(2_000_000_000)
            .unwrap();
        let text = refusal(&sparse);
        assert!(text.contains("above the limit"), "{text}");
    }

    #[test]
    fn a_bundle_must_hold_a_usable_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let text = refusal(&dir.path().join("missing.pem"));
        assert!(text.contains("No such file"), "{text}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no PEM here\n").unwrap();
        let text = refusal(&empty);
        assert!(text.contains("no CERTIFICATE block"), "{text}");

        let good = dir.path().join("ca.pem");
        let ca = rcgen::generate_simple_self_signed(vec!["ca.example".to_owned()]).unwrap();
        std::fs::write(&good, ca.cert.pem()).unwrap();
        config(&with_bundle(&good)).unwrap();
    }
}
