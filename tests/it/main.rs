//! The integration tests: one crate, one module per area, run by `tests/run.sh`.

mod common;
mod conformance;
mod credential_process;
mod demo;
mod emulator;
mod emulator_clients;
mod emulator_negative;
mod emulator_pki;
mod faults;
mod hostile;
mod identity_bad_input;
mod identity_files;
mod input_limits;
mod kat;
mod layout;
mod pkcs11;
mod secrets;
mod serve_config;
mod serve_daemon;
mod serve_imds;
mod serve_refresh;
mod serve_reload;
mod serve_sdks;
mod serve_start;
mod systemd;
mod update;
