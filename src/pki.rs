//! Development PKI generation (being written).
#[derive(clap::Args, Debug)]
pub struct PkiArgs {}
pub fn run(_args: &PkiArgs) -> crate::error::Result<()> {
    Err(crate::error::Error::Other("pki is not built yet".into()))
}
