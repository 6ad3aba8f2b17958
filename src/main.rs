//! The `bench` binary: parse the command line, run, print the error chain.

use std::process::ExitCode;

fn main() -> ExitCode {
    match bench::cli::main() {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line, which names
            // the flag, file or item that caused the failure. Scrubbed: a
            // server may echo the key, and URLs may carry user:pass@.
            eprintln!("error: {}", bench::redact::scrub(&format!("{err:#}")));
            ExitCode::from(2)
        }
    }
}
