//! The serve plans of the daemon sockets and of regional failover: what each config file
//! yields, and the mistakes refused with their file line.

use super::test_support::*;
use super::*;

#[test]
fn daemon_sockets_serve_every_role_or_one_and_are_checked() {
    let two = |top: &str, beta: &str| {
        let text = format!(
            "{top}\n{}{}",
            role("alpha", "imds = \"127.0.0.1:9912\""),
            role("beta", beta)
        );
        serve_plan(
            &serve_args(&["--config", "t.toml"]),
            &inputs(&[], &text),
            &["sock".to_owned()],
        )
    };
    let plan = two(
        "[daemon_socket]\npath = \"/all.sock\"",
        "daemon_socket = { path = \"fd:sock\", allow_groups = [0] }",
    )
    .unwrap();
    assert_eq!(plan.daemon_sockets.len(), 2);
    let (all, beta) = (&plan.daemon_sockets[0], &plan.daemon_sockets[1]);
    assert_eq!(all.roles, [0, 1]);
    assert_eq!(all.mode, 0o660);
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    assert_eq!(all.allow.uids, [me], "the daemon's own user by default");
    assert_eq!(beta.endpoint, UnixEndpoint::Activated("sock".into()));
    assert_eq!(beta.roles, [1], "beta is served on a socket alone");
    assert_eq!((beta.allow.uids.len(), &beta.allow.gids[..]), (0, &[0][..]));
    assert_eq!(
        plan.listeners.len(),
        1,
        "the passed socket is not an IMDS listener"
    );

    let error = |top: &str, beta: &str| two(top, beta).unwrap_err().to_string();
    assert!(
        error("", "daemon_socket = { path = \"fd:sock\", mode = 0o600 }")
            .contains("daemon_socket.mode does not apply to a passed socket; set SocketMode="),
        "{}",
        error("", "daemon_socket = { path = \"fd:sock\", mode = 0o600 }")
    );
    assert!(
        error("", "daemon_socket = { path = \"/b\", mode = 0o666 }")
            .contains("0666 would let every user connect")
    );
    assert!(error("", "daemon_socket = { mode = 0o600 }").contains("daemon_socket.path is needed"));
    assert!(
        error(
            "[daemon_socket]\npath = \"/b\"",
            "daemon_socket = { path = \"/b\" }"
        )
        .contains("/b is already a daemon socket")
    );
    assert!(error("", "daemon_socket = { path = \"fd:other\" }").contains("no socket named"));
    assert!(
        error(
            "",
            "daemon_socket = { path = \"/b\", allow_users = [\"no-such-user-here\"] }"
        )
        .contains("no user of that name")
    );
}

#[test]
fn failover_regions_are_validated() {
    let west = "{ trust_anchor_arn = \"arn:aws:rolesanywhere:us-west-2:111122223333:trust-anchor/w\", profile_arn = \"arn:aws:rolesanywhere:us-west-2:111122223333:profile/w\" }";
    let plan_of = |extra: &str| {
        serve_plan(
            &serve_args(&["--config", "t.toml"]),
            &inputs(
                &[],
                &role("app", &format!("imds = \"127.0.0.1:1\"\n{extra}")),
            ),
            &[],
        )
    };
    let plan = plan_of(&format!("failover = [{west}]")).unwrap();
    let failover = plan.roles[0].failover.as_ref().unwrap();
    assert_eq!(failover.after, 3);
    let (region, settings) = &failover.regions[0];
    assert_eq!(region, "us-west-2");
    assert_eq!(settings.params.region, "us-west-2");
    assert_eq!(
        settings.client.endpoint,
        "https://rolesanywhere.us-west-2.amazonaws.com"
    );
    assert_eq!(
        settings.params.role_arn,
        plan.roles[0].settings.params.role_arn
    );
    assert!(plan_of("").unwrap().roles[0].failover.is_none());
    for (extra, expected) in [
        (
            "failover_after = 2".to_owned(),
            "failover_after needs failover",
        ),
        (
            format!("failover = [{west}]\nfailover_after = 0"),
            "must be a number of failures",
        ),
        ("failover = []".to_owned(), "is empty"),
        (
            format!(
                "failover = [{}]",
                west.replace(
                    "us-west-2:111122223333:profile",
                    "eu-west-1:111122223333:profile"
                )
            ),
            "must name the same region",
        ),
        (
            format!("failover = [{}]", west.replace("us-west-2", "us-east-1")),
            "failover regions must differ",
        ),
    ] {
        let error = plan_of(&extra).unwrap_err().to_string();
        assert!(error.contains(expected), "{extra}: {error}");
    }
}

#[test]
fn fleet_slots_are_checked() {
    let error = |flags: &[&str], top: &str| plan(flags, &[], top, "").unwrap_err().to_string();
    assert_eq!(
        error(&["--fleet-slot", "10/10"], ""),
        "--fleet-slot \"10/10\" is not a fleet slot; write INDEX/COUNT, this host's number from 0 to COUNT-1 and the number of hosts in the fleet (for example 17/1000)"
    );
    assert!(error(&["--fleet-slot", "x"], "").contains("is not a fleet slot"));
    assert!(
        error(&[], "fleet_slot = \"1/0\"").starts_with("config file t.toml, line 1: fleet_slot")
    );
    assert_eq!(
        error(&["--fleet-rate", "3"], ""),
        "--fleet-rate needs a fleet slot (fleet_slot, --fleet-slot)"
    );
    assert!(
        error(&["--fleet-slot", "1/2", "--fleet-rate", "0"], "")
            .starts_with("--fleet-rate must be")
    );
    assert_eq!(
        error(&["--fleet-slot", "1/2"], "start_window = 60"),
        "config file t.toml, line 1: start_window cannot be used with a fleet slot, which spreads the first fetches itself"
    );
    // A window of 0 is no window.
    let plan = plan(
        &["--fleet-slot", " 7 / 8 ", "--start-window", "0"],
        &[],
        "",
        "",
    )
    .unwrap();
    assert_eq!(fleet(&plan), "7/8 at 9.5");
}
