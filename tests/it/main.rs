//! The integration tests: one crate, one module per area, run by `tests/run.sh`.

mod common;
mod emulator;
mod identity_bad_input;
mod identity_files;
mod kat;
