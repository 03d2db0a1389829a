//! Where an identity is: the flags that name its files, its objects on a token, or its
//! key in the TPM.

use std::path::PathBuf;

use crate::input_file::Readable;
use crate::pkcs11::token::spec::TokenSpec;
use crate::secret::Secret;
use crate::tpm::TpmOptions;

/// Where to find an identity: the file flags of the official helper, and the objects on
/// a PKCS#11 token when `--certificate` or `--private-key` is a `pkcs11:` URI.
#[derive(Clone, Debug, Default)]
pub struct IdentitySpec {
    /// `--certificate`: PEM/DER certificate, fullchain PEM, combined key+certificate PEM,
    /// or PKCS#12.
    pub certificate: Option<PathBuf>,
    /// `--private-key`; when absent the key is looked for in the certificate file.
    pub private_key: Option<PathBuf>,
    /// `--intermediates`: a PEM bundle sent as the chain.
    pub intermediates: Option<PathBuf>,
    /// Password of an encrypted PKCS#8 key or a PKCS#12 file.
    pub password: Option<Secret>,
    /// Whether a key file that other accounts can read is refused or only warned about.
    pub readable_key_files: Readable,
    /// The key (and perhaps the certificate) on a token; `certificate` may still name a
    /// certificate file for a key on a token.
    pub token: Option<TokenSpec>,
    /// TPM keys: a persistent handle given as `--private-key handle:0x81...`, the key's
    /// password, and the device. A `TSS2 PRIVATE KEY` file is found by its PEM label.
    pub tpm: TpmOptions,
}

impl IdentitySpec {
    /// Lets a token ask for its PINs on the terminal when no other source has them: for
    /// the commands a person runs, not for the daemons.
    pub fn allow_prompt(&mut self) {
        if let Some(token) = &mut self.token {
            token.pins.prompt = true;
        }
    }
}
