//! The `bench` binary: parse the command line, run, print the error chain.

use std::process::ExitCode;

fn main() -> ExitCode {
    match bench::cli::main() {
        Ok(code) => code,
        Err(err) => {
            // The whole context chain on one line (each cause once), which
            // names the flag, file or item that caused the failure. Scrubbed:
            // a server may echo the key, and URLs may carry user:pass@.
            eprintln!(
                "error: {}",
                bench::redact::scrub(&bench::cli::error_text(&err))
            );
            ExitCode::from(2)
        }
    }
}
