//! Every flag of every subcommand in the official helper's `--help`, given to both programs
//! on an otherwise working command line: the exit codes (for `serve`: serving, or an exit
//! with 1) must be the table's. A flag in the official help that no row exercises fails
//! the test, so that a flag added upstream is noticed.

use std::collections::BTreeSet;

use rolesanywhere_helper::pki::KeyType;

use super::{Peer, SIDES, Side, Stage, args, official_flags, rows, run_bounded, show};
use crate::serve_daemon::Daemon;

/// A subcommand's working command line: the flags it names, and the template.
struct Base {
    subcommand: &'static str,
    /// Flags of the official help that the base line itself exercises.
    covers: Vec<&'static str>,
    /// After the subcommand (and, for the credentials commands, the ARNs and endpoint).
    template: &'static str,
}

/// One flag added to a base line; exit codes per program (`serve`: 0 is "serves").
struct Variant {
    flag: &'static str,
    args: &'static str,
    official: i32,
    ours: i32,
}

const CREDENTIAL_FLAGS: &[&str] = &[
    "--certificate",
    "--private-key",
    "--intermediates",
    "--trust-anchor-arn",
    "--profile-arn",
    "--role-arn",
    "--endpoint",
];

fn bases() -> [Base; 6] {
    [
        Base {
            subcommand: "credential-process",
            covers: CREDENTIAL_FLAGS.to_vec(),
            template: "{pem} {chain}",
        },
        Base {
            subcommand: "update",
            covers: [CREDENTIAL_FLAGS, &["--once"]].concat(),
            template: "{pem} {chain} --once",
        },
        Base {
            subcommand: "serve",
            covers: [CREDENTIAL_FLAGS, &["--port"]].concat(),
            template: "{pem} {chain} --port 0",
        },
        Base {
            subcommand: "sign-string",
            covers: vec!["--certificate", "--private-key"],
            template: "{pem}",
        },
        Base {
            subcommand: "read-certificate-data",
            covers: vec!["--certificate"],
            template: "--certificate {dir}/leaf.pem",
        },
        Base {
            subcommand: "version",
            covers: Vec::new(),
            template: "",
        },
    ]
}

#[rustfmt::skip]
fn variants(subcommand: &str) -> Vec<Variant> {
    let v = |flag, args, official, ours| Variant { flag, args, official, ours };
    // The flags of a key on a token or in a TPM, beside file keys: the official helper
    // ignores them; ours refuses them with one line saying what they are for (README
    // "Differences from the official helper").
    let token_and_tpm = [
        v("--pkcs11-lib", "--pkcs11-lib /nonexistent/libp11.so", 0, 1),
        v("--reuse-pin", "--reuse-pin", 0, 1),
        v("--tpm-key-password", "--tpm-key-password x", 0, 1),
        v("--no-tpm-key-password", "--no-tpm-key-password", 0, 1),
    ];
    // OS certificate stores: refused on Linux by both (the official helper also refuses
    // them beside --certificate or --private-key).
    let stores = [
        v("--cert-selector", "--cert-selector Key=x509Subject,Value=CN=x", 1, 1),
        v("--system-store-name", "--system-store-name MY", 1, 1),
        v("--use-latest-expiring-certificate", "--use-latest-expiring-certificate", 1, 1),
    ];
    let credentials = [
        v("--debug", "--debug", 0, 0),
        v("--no-verify-ssl", "--no-verify-ssl", 0, 0),
        v("--with-proxy", "--with-proxy", 0, 0),
        v("--region", "--region us-east-1", 0, 0),
        v("--session-duration", "--session-duration 900", 0, 0),
        v("--role-session-name", "--role-session-name conformance", 0, 0),
        v("--pkcs8-password", "--private-key {dir}/enc.key --pkcs8-password pw", 0, 0),
    ];
    let mut all: Vec<Variant> = Vec::new();
    match subcommand {
        "credential-process" | "update" | "serve" => {
            all.extend(credentials);
            all.extend(token_and_tpm);
            all.extend(stores);
        }
        "sign-string" => {
            all.extend([
                v("--format", "--format text", 0, 0),
                v("--digest", "--digest SHA512", 0, 0),
                v("--debug", "--debug", 0, 0),
                v("--pkcs8-password", "--private-key {dir}/enc.key --pkcs8-password pw", 0, 0),
            ]);
            all.extend(token_and_tpm);
            all.extend(stores);
        }
        "read-certificate-data" => all.extend([
            v("--debug", "--debug", 0, 0),
            // Here ours, too, lets --pkcs11-lib beside a certificate file pass.
            v("--pkcs11-lib", "--pkcs11-lib /nonexistent/libp11.so", 0, 0),
            v("--cert-selector", "--cert-selector Key=x509Subject,Value=CN=x", 1, 1),
            v("--system-store-name", "--system-store-name MY", 1, 1),
        ]),
        _ => {}
    }
    match subcommand {
        "update" => all.push(v("--profile", "--profile conformance", 0, 0)),
        "serve" => all.push(v("--hop-limit", "--hop-limit 1", 0, 0)),
        _ => {}
    }
    all
}

#[test]
fn every_official_flag_is_taken_as_the_official_helper_takes_it() {
    let Some(peer) = Peer::get() else { return };
    let stage = Stage::new(KeyType::P256, true);
    let mut failed = Vec::new();
    for base in bases() {
        let variants = variants(base.subcommand);
        let mut covered: BTreeSet<&str> = base.covers.iter().copied().collect();
        covered.extend(variants.iter().map(|v| v.flag));
        let official: BTreeSet<String> = official_flags(&peer, &[base.subcommand])
            .into_iter()
            .collect();
        let missing: Vec<&String> = official
            .iter()
            .filter(|f| !covered.contains(f.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{}: official flags no row exercises: {missing:?}",
            base.subcommand
        );
        // The base line alone works for both.
        let plain = Variant {
            flag: "(none)",
            args: "",
            official: 0,
            ours: 0,
        };
        let all = std::iter::once(plain).chain(variants);
        failed.extend(
            rows(
                all,
                |v| v.flag,
                |variant| check(&peer, &stage, &base, &variant),
            )
            .into_iter()
            .map(|flag| format!("{} {flag}", base.subcommand)),
        );
    }
    assert!(failed.is_empty(), "rows that failed: {failed:?}");
}

fn check(peer: &Peer, stage: &Stage, base: &Base, variant: &Variant) {
    let template = format!("{} {}", base.template, variant.args);
    let line = match base.subcommand {
        "credential-process" | "update" | "serve" => stage.args(base.subcommand, &template),
        other => args(&format!("{other} {template}"), stage.dir()),
    };
    let credentials = stage.dir().join("credentials");
    for (side, code) in SIDES.into_iter().zip([variant.official, variant.ours]) {
        let what = format!("{} {}: {side:?}", base.subcommand, variant.args);
        let mut cmd = peer.command(side);
        cmd.args(&line)
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials);
        if base.subcommand == "serve" && code == 0 {
            let ready: fn(&str) -> bool = match side {
                Side::Official => |l| l.contains("Local server started on port"),
                Side::Ours => |l| l.starts_with("serving credentials for "),
            };
            let daemon = Daemon::start_ready(cmd, ready);
            assert!(
                daemon.is_ok(),
                "{what}: does not serve: {}",
                daemon.err().unwrap_or_default()
            );
            continue;
        }
        let out = run_bounded(cmd);
        assert_eq!(out.status.code(), Some(code), "{what}: {}", show(&out));
        if code != 0 || base.subcommand == "update" {
            assert!(out.stdout.is_empty(), "{what}: {}", show(&out));
        } else {
            assert!(!out.stdout.is_empty(), "{what}: {}", show(&out));
        }
    }
}
