//! The `bench` binary: parse the command line, run, print the error chain.

use std::process::ExitCode;

// Only the binary parses the command line: the library takes configs.
mod cli;

fn main() -> ExitCode {
    match cli::main() {
        Ok(code) => code,
        Err(err) => {
            // The whole context chain on one line (each cause once), which
            // names the flag, file or item that caused the failure. Scrubbed:
            // a server may echo the key, and URLs may carry user:pass@.
            eprintln!("error: {}", bench::redact::scrub(&cli::error_text(&err)));
            ExitCode::from(2)
        }
    }
}
