//! `rolesanywhere-helper pki`: writes the development PKI of [`crate::pki`].

use std::io::Write as _;

use crate::cli::{PkiArgs, PkiCommand};
use crate::error::Result;
use crate::pki::{DevPki, PkiOptions};

/// Runs `pki init`.
pub fn run(args: &PkiArgs) -> Result<()> {
    match &args.command {
        PkiCommand::Init(a) => {
            let pki = DevPki::generate(&PkiOptions {
                key_type: a.key_type,
                intermediate: a.intermediate,
                days: a.days,
                common_name: a.cn.clone(),
            })?;
            pki.write_files(&a.dir, a.force)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "development PKI written to {}", a.dir.display())?;
            writeln!(
                out,
                "try: rolesanywhere-helper emulate --trust-anchor {0}/root-ca.pem --tls-cert {0}/tls.pem --tls-key {0}/tls.key",
                a.dir.display()
            )?;
            Ok(())
        }
    }
}
