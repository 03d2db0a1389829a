//! `serve` over time, with the emulator issuing 20-second sessions: new credentials before
//! the old ones expire, never expired ones, an error during an outage longer than a
//! lifetime and recovery after it, and a certificate replaced on disk used at the next
//! refresh.

use std::time::{Duration, Instant};

use rolesanywhere_helper::pki::KeyType;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::openssl;
use crate::credential_process::Setup;
use crate::serve_daemon::{Daemon, Response, imds_credentials};

const ROLE_NAME: &str = "onprem-app";
const LIFETIME: u32 = 20;

/// One credentials GET: the key and expiry on a 200, after checking that the credentials
/// have not expired; `None` on an error status.
fn poll(d: &Daemon) -> (Option<(String, OffsetDateTime)>, Response) {
    let reply = imds_credentials(d.port, ROLE_NAME);
    if reply.status != 200 {
        return (None, reply);
    }
    let json = reply.json();
    let expiration = OffsetDateTime::parse(json["Expiration"].as_str().unwrap(), &Rfc3339).unwrap();
    let now = OffsetDateTime::now_utc();
    // `Expiration` is truncated to the second, so it may read up to 1 s early.
    assert!(
        expiration + time::Duration::seconds(1) > now,
        "expired credentials served: {json} at {now}"
    );
    let key = json["AccessKeyId"].as_str().unwrap().to_owned();
    (Some((key, expiration)), reply)
}

#[test]
fn new_credentials_arrive_before_the_old_ones_expire() {
    let setup = Setup::short_sessions(KeyType::P256, false, LIFETIME);
    let d = Daemon::start(setup.leaf_subcommand("serve"));
    let mut seen: Vec<(String, OffsetDateTime, OffsetDateTime)> = Vec::new();
    let end = Instant::now() + Duration::from_secs(u64::from(LIFETIME) + 6);
    while Instant::now() < end {
        let (got, reply) = poll(&d);
        let (key, expiration) = got.unwrap_or_else(|| panic!("no credentials: {reply:?}"));
        if seen.last().is_none_or(|(k, _, _)| *k != key) {
            seen.push((key, expiration, OffsetDateTime::now_utc()));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        seen.len() >= 2,
        "only one set of credentials in {LIFETIME}+6 s: {seen:?}"
    );
    for pair in seen.windows(2) {
        let (old, new) = (&pair[0], &pair[1]);
        assert!(
            new.2 < old.1 - time::Duration::seconds(5),
            "{} replaced {} only at {}, its expiry being {}",
            new.0,
            old.0,
            new.2,
            old.1
        );
    }
    let refreshed = d.log().matches("credentials refreshed").count();
    assert!(refreshed >= 2, "{}", d.log());
}

#[test]
fn an_outage_longer_than_a_lifetime_gives_errors_then_recovers() {
    let setup = Setup::short_sessions(KeyType::P256, false, LIFETIME);
    let d = Daemon::start(setup.leaf_subcommand("serve"));
    let (first, _) = poll(&d);
    let (first_key, first_expiry) = first.expect("credentials at start");
    setup.emulator.faults().fail_next(1_000_000, 503);

    // The old credentials are served while they last (poll checks they are unexpired),
    // then the endpoint answers an error.
    let deadline = Instant::now() + Duration::from_secs(u64::from(LIFETIME) + 10);
    let error = loop {
        assert!(Instant::now() < deadline, "no error before {first_expiry}");
        match poll(&d) {
            (Some((key, _)), _) => assert_eq!(key, first_key, "no new session during the outage"),
            (None, reply) => break reply,
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(error.status, 503, "{error:?}");
    let json = error.json();
    assert_eq!(json["Code"], "CredentialsUnavailable");
    assert!(
        json["Message"].as_str().unwrap().contains("503"),
        "the message names the last error: {json}"
    );
    assert!(
        OffsetDateTime::now_utc() < first_expiry + time::Duration::seconds(1),
        "the error came only after the credentials expired"
    );
    // Still an error a while later: never the expired credentials.
    for _ in 0..8 {
        assert_eq!(poll(&d).1.status, 503);
        std::thread::sleep(Duration::from_millis(250));
    }

    setup.emulator.faults().clear();
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        assert!(
            Instant::now() < deadline,
            "no recovery 45 s after the outage ended"
        );
        if let (Some((key, _)), _) = poll(&d) {
            assert_ne!(key, first_key);
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_certificate_replaced_on_disk_is_used_at_the_next_refresh() {
    let setup = Setup::short_sessions(KeyType::P256, false, LIFETIME);
    let d = Daemon::start(setup.leaf_subcommand("serve"));
    let first_serial = setup.emulator.received()[0].serial.clone().unwrap();

    renew_leaf(&setup, "987654321");

    let deadline = Instant::now() + Duration::from_secs(u64::from(LIFETIME) + 10);
    loop {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never used: {:?}",
            setup.emulator.received()
        );
        let renewed = setup
            .emulator
            .received()
            .iter()
            .any(|r| r.serial.as_deref() == Some("987654321") && r.status == 201);
        if renewed {
            break;
        }
        assert!(poll(&d).0.is_some(), "credentials are served meanwhile");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_ne!(first_serial, "987654321");
    // The emulator records the request before its answer reaches the daemon, which logs
    // the refresh only then: give the log a moment.
    let logged = Instant::now() + Duration::from_secs(5);
    while !d.log().contains("serial=987654321") && Instant::now() < logged {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.log().contains("serial=987654321"), "{}", d.log());
}

/// Replaces the leaf key and certificate with new ones from the same CA, with `serial`:
/// written beside the old ones and renamed over them, as certificate renewal tools do.
pub fn renew_leaf(setup: &Setup, serial: &str) {
    let dir = setup.dir.path();
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "new.key",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "new.key",
            "-subj",
            "/CN=renewed",
            "-out",
            "new.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "new.csr",
            "-CA",
            "root-ca.pem",
            "-CAkey",
            "root-ca.key",
            "-set_serial",
            serial,
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "new.pem",
        ],
    );
    std::fs::rename(dir.join("new.key"), dir.join("leaf.key")).unwrap();
    std::fs::rename(dir.join("new.pem"), dir.join("leaf.pem")).unwrap();
}
