//! Where `credential-process` takes its settings from besides its flags, compared with the
//! official helper (which loads the AWS SDK's shared configuration): CA bundles, endpoint
//! variables and their precedence over `--endpoint`, `~/.aws/config` profiles
//! (`ca_bundle`, `endpoint_url`, a `services` section, `max_attempts`, `AWS_PROFILE`,
//! `AWS_CONFIG_FILE`), retries, and proxies that must not be used for loopback endpoints.
//! Both programs talk HTTPS to the emulator here.

use rolesanywhere_helper::pki::KeyType;

use super::{Peer, SIDES, Side, args, arns, rows, show};
use crate::credential_process::{Setup, credentials, free_port};

struct Case {
    name: &'static str,
    /// After the ARNs; `{url}` is the emulator, `{dead}` a closed port.
    flags: &'static str,
    /// Values may use `{url}`, `{dead}`, `{ca}` (the emulator's CA) and `{home}`.
    env: &'static [(&'static str, &'static str)],
    /// Written to `~/.aws/config` (or where `AWS_CONFIG_FILE` says) when given.
    config: Option<&'static str>,
    /// The first CreateSession answers: this many 503s.
    fail: u32,
    /// Exit codes and CreateSession requests the emulator received, per program.
    official: (i32, usize),
    ours: (i32, usize),
}

const ID: &str = "{pem} {chain}";
const TO_URL: &str = "{pem} {chain} --endpoint {url}";
const CA_ENV: (&str, &str) = ("AWS_CA_BUNDLE", "{ca}");
const CA: &[(&str, &str)] = &[CA_ENV];

#[rustfmt::skip]
fn settled() -> Vec<Case> {
    let case = |name, flags, env, config, fail, official, ours| Case { name, flags, env, config, fail, official, ours };
    vec![
        case("AWS_CA_BUNDLE", TO_URL, CA, None, 0, (0, 1), (0, 1)),
        case("untrusted TLS certificate", TO_URL, &[], None, 0, (1, 0), (1, 0)),
        case("--no-verify-ssl", "{pem} {chain} --endpoint {url} --no-verify-ssl", &[], None, 0, (0, 1), (0, 1)),
        case("AWS_ENDPOINT_URL_ROLESANYWHERE", ID, &[("AWS_ENDPOINT_URL_ROLESANYWHERE", "{url}"), CA_ENV], None, 0, (0, 1), (0, 1)),
        case("AWS_ENDPOINT_URL", ID, &[("AWS_ENDPOINT_URL", "{url}"), CA_ENV], None, 0, (0, 1), (0, 1)),
        // README "Endpoint, region, TLS and proxies" (Difference from the official helper):
        // there a service-specific endpoint from the environment or the config file wins
        // over --endpoint; here the flag wins.
        case("AWS_ENDPOINT_URL_ROLESANYWHERE beside --endpoint", TO_URL, &[("AWS_ENDPOINT_URL_ROLESANYWHERE", "{dead}"), CA_ENV], None, 0, (1, 0), (0, 1)),
        case("services endpoint_url beside --endpoint", TO_URL, CA, Some("[default]\nservices = ra\n[services ra]\nrolesanywhere =\n  endpoint_url = {dead}\n"), 0, (1, 0), (0, 1)),
        case("AWS_ENDPOINT_URL beside --endpoint", TO_URL, &[("AWS_ENDPOINT_URL", "{dead}"), CA_ENV], None, 0, (0, 1), (0, 1)),
        case("AWS_REGION is not the signing region", TO_URL, &[("AWS_REGION", "eu-west-1"), CA_ENV], None, 0, (0, 1), (0, 1)),
        case("two 503s, then credentials", TO_URL, CA, None, 2, (0, 3), (0, 3)),
        case("three 503s: three attempts", TO_URL, CA, None, 3, (1, 3), (1, 3)),
        // README "Where settings come from": a profile that AWS_PROFILE names but the file
        // lacks fails every call of the official helper; here it is no error.
        case("AWS_PROFILE names no profile", TO_URL, &[("AWS_PROFILE", "nowhere"), CA_ENV], Some("[default]\nregion = us-east-1\n"), 0, (1, 0), (0, 1)),
    ]
}

/// The AWS shared config file's settings and the proxy variables, which both programs read
/// alike.
#[rustfmt::skip]
fn shared_config_and_proxies() -> Vec<Case> {
    let case = |name, flags, env, config, fail, both: (i32, usize)| Case { name, flags, env, config, fail, official: both, ours: both };
    vec![
        case("config ca_bundle", TO_URL, &[], Some("[default]\nca_bundle = {ca}\n"), 0, (0, 1)),
        case("config endpoint_url", ID, CA, Some("[default]\nendpoint_url = {url}\n"), 0, (0, 1)),
        case("config services endpoint_url", ID, CA, Some("[default]\nservices = ra\n[services ra]\nrolesanywhere =\n  endpoint_url = {url}\n"), 0, (0, 1)),
        case("AWS_PROFILE", ID, &[("AWS_PROFILE", "conf")], Some("[default]\nendpoint_url = {dead}\n[profile conf]\nendpoint_url = {url}\nca_bundle = {ca}\n"), 0, (0, 1)),
        case("AWS_CONFIG_FILE", ID, &[("AWS_CONFIG_FILE", "{home}/elsewhere")], Some("[default]\nendpoint_url = {url}\nca_bundle = {ca}\n"), 0, (0, 1)),
        case("max_attempts 1", TO_URL, CA, Some("[default]\nmax_attempts = 1\n"), 1, (1, 1)),
        case("max_attempts 4", TO_URL, CA, Some("[default]\nmax_attempts = 4\n"), 3, (0, 4)),
        case("HTTPS_PROXY and loopback", TO_URL, &[("HTTPS_PROXY", "{dead}"), ("HTTP_PROXY", "{dead}"), CA_ENV], None, 0, (0, 1)),
        case("https_proxy and localhost", "{pem} {chain} --endpoint https://localhost:{port}", &[("https_proxy", "{dead}"), ("ALL_PROXY", "{dead}"), CA_ENV], None, 0, (0, 1)),
    ]
}

#[test]
fn settings_from_the_environment_match_the_official_helper() {
    compare(settled());
}

#[test]
fn config_file_settings_and_proxies_are_honoured_as_by_the_official_helper() {
    compare(shared_config_and_proxies());
}

fn compare(cases: Vec<Case>) {
    let Some(peer) = Peer::get() else { return };
    let setup = Setup::new(KeyType::P256, true);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let fill = |text: &str| {
        text.replace("{url}", &setup.emulator.url())
            .replace("{port}", &setup.emulator.addr().port().to_string())
            .replace("{dead}", &dead)
            .replace("{ca}", setup.ca_bundle.to_str().unwrap())
            .replace("{home}", peer.home().to_str().unwrap())
    };
    let failed = rows(
        cases,
        |c| c.name,
        |case| {
            let config = peer.home().join(".aws/config");
            let elsewhere = peer.home().join("elsewhere");
            let env: Vec<(&str, String)> = case.env.iter().map(|(k, v)| (*k, fill(v))).collect();
            for (side, (code, requests)) in SIDES.into_iter().zip([case.official, case.ours]) {
                let _ = std::fs::remove_file(&config);
                let _ = std::fs::remove_file(&elsewhere);
                if let Some(text) = case.config {
                    let path = if case.env.iter().any(|(k, _)| *k == "AWS_CONFIG_FILE") {
                        &elsewhere
                    } else {
                        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
                        &config
                    };
                    std::fs::write(path, fill(text)).unwrap();
                }
                setup.emulator.clear_received();
                setup.emulator.faults().clear();
                if case.fail > 0 {
                    setup.emulator.faults().fail_next(case.fail, 503);
                }
                let mut all = vec!["credential-process".to_owned()];
                all.extend(arns());
                all.extend(args(&fill(case.flags), setup.dir.path()));
                let out = peer.run(side, &all, &env);
                let what = format!("{}: {side:?}: {}", case.name, show(&out));
                assert_eq!(out.status.code(), Some(code), "{what}");
                if code == 0 {
                    credentials(&out);
                } else {
                    assert!(out.stdout.is_empty(), "{what}");
                }
                let received = setup.emulator.received();
                assert_eq!(received.len(), requests, "requests: {what}");
                if side == Side::Ours {
                    assert!(
                        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
                        "{what}"
                    );
                }
            }
        },
    );
    let _ = std::fs::remove_file(peer.home().join(".aws/config"));
    assert!(failed.is_empty(), "rows that failed: {failed:?}");
}
