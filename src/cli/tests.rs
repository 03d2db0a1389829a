//! The pflag grammar on the real definitions: what parses, to what, and what is refused.

use clap::{CommandFactory as _, Parser as _};

use super::*;

fn parse(args: &[&str]) -> Result<Command, clap::Error> {
    let argv = std::iter::once(NAME).chain(args.iter().copied());
    Cli::try_parse_from(argv).map(|cli| cli.command)
}

fn credential_args(flags: &[&str]) -> CredentialArgs {
    match parse(&[&["credential-process"], flags].concat()) {
        Ok(Command::CredentialProcess(args)) => args.credentials,
        other => panic!("{flags:?}: {other:?}"),
    }
}

fn serve_args(flags: &[&str]) -> ServeArgs {
    match parse(&[&["serve"], flags].concat()) {
        Ok(Command::Serve(args)) => *args,
        other => panic!("{flags:?}: {other:?}"),
    }
}

#[test]
fn the_definitions_are_consistent_after_the_grammar_is_applied() {
    // clap checks a subcommand's definitions only when it is used; this checks them all.
    Cli::command().debug_assert();
}

#[test]
fn boolean_flags_take_an_attached_value_and_the_last_one_wins() {
    let debug = |flags: &[&str]| credential_args(flags).key.debug;
    assert!(!debug(&[]));
    assert!(debug(&["--debug"]));
    assert!(debug(&["--debug=true"]));
    assert!(debug(&["--debug=T"]));
    assert!(!debug(&["--debug=false"]));
    assert!(!debug(&["--debug=0"]));
    assert!(!debug(&["--debug", "--debug=False"]));
    assert!(debug(&["--debug=f", "--debug"]));
    let args = credential_args(&["--no-verify-ssl=1", "--with-proxy=TRUE", "--reuse-pin=t"]);
    assert!(args.no_verify_ssl && args.with_proxy && args.key.reuse_pin);
    for bad in ["--debug=yes", "--debug=", "--debug=on"] {
        let e = parse(&["credential-process", bad]).expect_err(bad);
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
    }
    // Two words: the second is a stray argument, not the flag's value.
    let e = parse(&["credential-process", "--debug", "false"]).expect_err("two words");
    assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
}

#[test]
fn every_boolean_flag_of_every_command_takes_the_grammar() {
    let lines: &[&[&str]] = &[
        &["update", "--once=false", "--use-fips-endpoint=0"],
        &["sign-string", "--use-latest-expiring-certificate=F"],
        &["read-certificate-data", "--debug=false"],
        &[
            "emulate",
            "--trust-anchor",
            "a",
            "--http=true",
            "--allow-short-sessions=1",
        ],
        &["pki", "init", "d", "--intermediate=false", "--force=TRUE"],
        &["completion", "bash", "--no-descriptions=True"],
        &[
            "serve",
            "--allow-readable-key-files=0",
            "--no-tpm-key-password=1",
        ],
    ];
    for line in lines {
        parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    }
    // A bare boolean flag leaves the next word to the positional argument.
    match parse(&["pki", "init", "--force", "dir"]) {
        Ok(Command::Pki(PkiArgs {
            command: PkiCommand::Init(args),
        })) => assert!(args.force && args.dir == std::path::Path::new("dir")),
        other => panic!("{other:?}"),
    }
    match parse(&["update", "--once=false"]) {
        Ok(Command::Update(args)) => assert!(!args.once),
        other => panic!("{other:?}"),
    }
}

#[test]
fn integer_flags_take_go_spellings_in_their_type_range() {
    assert_eq!(
        credential_args(&["--session-duration", "0xE10"]).session_duration,
        Some(3600)
    );
    assert_eq!(
        credential_args(&["--session-duration=-0b1"]).session_duration,
        Some(-1)
    );
    let serve = serve_args(&[
        "--port",
        "0o17",
        "--hop-limit=0x40",
        "--max-connections=1_000",
    ]);
    assert_eq!(
        (serve.port, serve.hop_limit, serve.max_connections),
        (Some(15), Some(64), Some(1000))
    );
    for bad in [
        &["--port", "70000"][..],
        &["--port=-1"],
        &["--hop-limit", "1__0"],
    ] {
        let e = parse(&[&["serve"], bad].concat()).expect_err("refused");
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{bad:?}");
    }
}

#[test]
fn a_value_flag_takes_the_next_word_even_with_a_leading_dash() {
    let args = credential_args(&["--pkcs8-password", "-secret", "--role-arn", "--debug"]);
    assert_eq!(args.key.pkcs8_password.as_deref(), Some("-secret"));
    assert_eq!(args.role_arn.as_deref(), Some("--debug"));
    assert!(!args.key.debug, "--debug was the value of --role-arn");
    assert_eq!(
        serve_args(&["--allow-host", "-x", "--allow-host", "b"]).allowed_hosts,
        ["-x", "b"]
    );
}

#[test]
fn chain_flags_apply_to_the_assume_role_arn_they_follow() {
    let hops = |flags: &[&str]| credential_args(flags).chain.hops;
    assert!(hops(&[]).is_empty());
    let got = hops(&[
        "--assume-role-arn",
        "arn:aws:iam::1:role/a",
        "--role-arn",
        "arn:aws:iam::9:role/first",
        "--assume-role-external-id",
        "-x1",
        "--assume-role-arn",
        "arn:aws:iam::2:role/b",
        "--assume-role-session-name",
        "s-b",
        "--assume-role-arn=arn:aws:iam::3:role/c",
    ]);
    let hop = |arn: &str, name: Option<&str>, id: Option<&str>| HopFlags {
        role_arn: arn.into(),
        role_session_name: name.map(Into::into),
        external_id: id.map(Into::into),
    };
    assert_eq!(
        got,
        [
            hop("arn:aws:iam::1:role/a", None, Some("-x1")),
            hop("arn:aws:iam::2:role/b", Some("s-b"), None),
            hop("arn:aws:iam::3:role/c", None, None),
        ]
    );
    let e = parse(&[
        "credential-process",
        "--assume-role-session-name",
        "s",
        "--assume-role-arn",
        "arn:aws:iam::1:role/a",
    ])
    .unwrap_err();
    assert!(
        e.to_string().contains("before any --assume-role-arn"),
        "{e}"
    );
    let e = parse(&[
        "serve",
        "--assume-role-arn",
        "arn:aws:iam::1:role/a",
        "--assume-role-session-name",
        "s",
        "--assume-role-session-name",
        "t",
    ])
    .unwrap_err();
    assert!(e.to_string().contains("given twice"), "{e}");
    let args = serve_args(&[
        "--sts-endpoint",
        "https://sts.example",
        "--sts-endpoint=https://b",
    ]);
    assert_eq!(
        args.credentials.chain.sts_endpoint.as_deref(),
        Some("https://b")
    );
}
