use std::process::ExitCode;

use clap::Parser as _;
use rolesanywhere_helper::cli::{Cli, Command};
use rolesanywhere_helper::config::Inputs;
use rolesanywhere_helper::{cmd, logging};

fn main() -> ExitCode {
    // Keys, PINs and credentials live in this process's memory: no core dumps of it, and
    // no ptrace or /proc/PID/mem access by other processes of the same user.
    // SAFETY: PR_SET_DUMPABLE takes an integer argument and touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) } != 0 {
        eprintln!(
            "warning: cannot disable core dumps: {}",
            std::io::Error::last_os_error()
        );
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and --version go to stdout with exit 0; usage errors exit 1, as upstream.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let inputs = Inputs::real();
    let result = match &cli.command {
        Command::CredentialProcess(args) => {
            logging::init(args.credentials.key.debug);
            cmd::credential_process::run(args, &inputs)
        }
        Command::Serve(args) => {
            logging::init_with_format(args.credentials.key.debug, args.log_format);
            cmd::serve::run(args, &inputs)
        }
        Command::Update(args) => {
            logging::init(args.credentials.key.debug);
            cmd::update::run(args, &inputs)
        }
        Command::Demo(args) => {
            logging::init(false);
            cmd::demo::run(args)
        }
        Command::SignString(args) => {
            logging::init(args.key.debug);
            cmd::sign_string::run(args, &inputs)
        }
        Command::ReadCertificateData(args) => {
            logging::init(args.debug);
            cmd::read_certificate_data::run(args, &inputs)
        }
        Command::Emulate(args) => cmd::emulate::run(args),
        Command::Pki(args) => cmd::pki::run(args),
        Command::Completion(args) => cmd::completion::run(args),
        Command::Version => cmd::version::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
