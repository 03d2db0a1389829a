//! Verifying IAM Roles Anywhere emulator (being written).
#[derive(clap::Args, Debug)]
pub struct EmulateArgs {}
pub fn run(_args: &EmulateArgs) -> crate::error::Result<()> {
    Err(crate::error::Error::Other(
        "the emulator is not built yet".into(),
    ))
}
