//! The AWS shared config file (`~/.aws/config`, or `AWS_CONFIG_FILE`) as the official helper
//! honours it through the AWS SDK for Go: the profile of `AWS_PROFILE` (else `default`)
//! gives `ca_bundle`, `endpoint_url` (its `services` section's `rolesanywhere` one first) and
//! `max_attempts`, after the command line and the environment. A profile that does not
//! exist is no error here.

use std::process::Command;

use rolesanywhere_helper::pki::KeyType;

use crate::common;
use crate::credential_process::{Setup, failure};

/// `credential-process` with the leaf and the ARNs, no endpoint and no CA bundle, reading
/// the AWS config file `text` as the profile `profile`.
fn with_aws_config(setup: &Setup, text: &str, profile: Option<&str>) -> Command {
    let file = setup.path("aws-config");
    std::fs::write(&file, text).unwrap();
    let mut cmd = setup.bare_leaf_command();
    cmd.env("AWS_CONFIG_FILE", &file);
    if let Some(profile) = profile {
        cmd.env("AWS_PROFILE", profile);
    }
    cmd
}

fn succeeds(cmd: &mut Command) {
    let out = common::run(cmd);
    common::json_stdout(&out, "credential-process");
}

#[test]
fn a_tls_inspection_ca_given_only_as_the_profiles_ca_bundle_is_trusted() {
    let setup = Setup::new(KeyType::P256, false);
    let url = setup.emulator.url();
    let text = format!("[default]\nca_bundle = {}\n", setup.ca_bundle.display());
    succeeds(with_aws_config(&setup, &text, None).args(["--endpoint", &url]));
    // Control: the same command without that line does not trust the emulator.
    let line = failure(&common::run(
        with_aws_config(&setup, "[default]\n", None).args(["--endpoint", &url]),
    ));
    assert!(line.contains("TLS handshake"), "{line}");
}

#[test]
fn the_services_sections_endpoint_and_the_profiles_are_used_in_that_order() {
    let setup = Setup::new(KeyType::P256, false);
    let url = setup.emulator.url();
    let ca = setup.ca_bundle.display().to_string();
    for text in [
        format!(
            "[profile corp]\nca_bundle = {ca}\nendpoint_url = https://127.0.0.1:1\nservices = ra\n\n[services ra]\nrolesanywhere =\n  endpoint_url = {url}\n"
        ),
        format!("[profile corp]\nca_bundle = {ca}\nendpoint_url = {url}\n"),
    ] {
        succeeds(&mut with_aws_config(&setup, &text, Some("corp")));
    }
    assert_eq!(setup.emulator.received().len(), 2);
    // The environment wins over the file.
    let text = format!("[default]\nca_bundle = {ca}\nendpoint_url = https://127.0.0.1:1\n");
    succeeds(with_aws_config(&setup, &text, None).env("AWS_ENDPOINT_URL", &url));
}

#[test]
fn a_profile_that_does_not_exist_is_no_error() {
    let setup = Setup::new(KeyType::P256, false);
    let text = "[default]\nendpoint_url = https://127.0.0.1:1\n";
    succeeds(
        with_aws_config(&setup, text, Some("nowhere"))
            .args(["--endpoint", &setup.emulator.url()])
            .env("AWS_CA_BUNDLE", &setup.ca_bundle),
    );
}

#[test]
fn max_attempts_of_the_profile_bounds_the_retries() {
    let setup = Setup::new(KeyType::P256, false);
    let text = format!(
        "[default]\nca_bundle = {}\nmax_attempts = 1\n",
        setup.ca_bundle.display()
    );
    setup.emulator.faults().fail_next(1, 503);
    let line = failure(&common::run(
        with_aws_config(&setup, &text, None).args(["--endpoint", &setup.emulator.url()]),
    ));
    assert!(line.contains("503") && !line.contains("attempts"), "{line}");
    // The default of 3 rides out the same fault.
    setup.emulator.faults().fail_next(1, 503);
    let text = format!("[default]\nca_bundle = {}\n", setup.ca_bundle.display());
    succeeds(with_aws_config(&setup, &text, None).args(["--endpoint", &setup.emulator.url()]));
    let text = "[default]\nmax_attempts = lots\n";
    let line = failure(&common::run(&mut with_aws_config(&setup, text, None)));
    assert!(
        line.starts_with("AWS config file")
            && line.contains("line 2")
            && line.contains("max_attempts"),
        "{line}"
    );
}
