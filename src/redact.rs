//! Secrets out of everything bench writes: one [`Redactor`] built from every
//! secret-bearing input, applied to command lines, URLs and messages.
//!
//! The secret inputs are the API key (`--api-key`, `$OPENAI_API_KEY`), every
//! `--header` value, the userinfo of a URL (`--api-url`, `--url`,
//! `$HF_ENDPOINT`: `http://user:PASS@host/v1`) and the hub token
//! (`$HF_TOKEN`, `$HF_TOKEN_PATH`, `$HF_HOME/token`).
//!
//! Two layers, so that neither alone has to be perfect:
//!
//! - **Structural**: what bench records on purpose is cleaned where it is
//!   built. A command line keeps its flags but not their secret values
//!   ([`Redactor::command`]: `--api-key ***`, `--header 'Authorization: ***'`);
//!   a URL keeps its scheme, host and path but not its userinfo
//!   ([`strip_userinfo`]: `http://***@host/v1`).
//! - **Textual**: text from elsewhere (a server's error message that echoes
//!   the key, a transport error naming a URL, the final error chain printed
//!   by `main`) goes through [`Redactor::scrub`], which masks URL userinfo
//!   and every occurrence of every known secret.
//!
//! Code deep in the library (the HTTP clients, the hub) builds messages long
//! before anything is printed, and threading a redactor through every config
//! and error type would touch most signatures for one concern. So the CLI
//! registers its redactor once at startup with [`install`], and those places
//! call the process-wide [`scrub`]. Registration only ever adds secrets
//! (scrubbing more never hurts), so in-process callers such as tests can
//! install their own without disturbing anyone.
//!
//! Secrets shorter than [`MIN_TEXT_LEN`] characters are masked where their
//! position is known (flag values, header values, URL userinfo) but not
//! searched for in free text. Short values are the placeholders local
//! servers take (`EMPTY`, `test`, `none`) and plain header values
//! (`X-Debug: true`); masking every `true` or `test` would corrupt recorded
//! command lines (`{"ignore_eos": ***}`, `runs/***-1`) and messages, and a
//! value that short protects little anyway.

use std::fmt;
use std::sync::{LazyLock, RwLock};

use regex::Regex;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Secrets shorter than this are masked by position only, not searched for
/// in free text (see the module docs).
pub const MIN_TEXT_LEN: usize = 8;

/// `scheme://userinfo@`: up to the last `@` before the path, so that a
/// password with a raw `@` in it is masked whole.
static USERINFO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#]*@").expect("valid regex"));

/// The set of known secrets. `Debug` shows only how many there are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    /// Longest first, so that a secret containing another is masked whole.
    secrets: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor that knows no secret (it still masks URL userinfo).
    pub const fn new() -> Self {
        Redactor {
            secrets: Vec::new(),
        }
    }

    /// Add a secret value (an API key, a token). Surrounding whitespace is
    /// ignored, as the clients trim it before sending; an empty value is no
    /// secret. A value with an auth scheme (`Bearer KEY`, `Basic ...`) also
    /// registers the credential after the scheme, since servers echo that
    /// part alone.
    pub fn secret(&mut self, value: &str) -> &mut Self {
        let value = value.trim();
        if value.is_empty() {
            return self;
        }
        self.insert(value);
        if let Some((_, credential)) = value.split_once(char::is_whitespace) {
            self.insert(credential.trim());
        }
        self
    }

    /// Add the value of a `Name: value` header (the whole text when it has
    /// no colon: then it cannot be told apart from the value).
    pub fn header(&mut self, raw: &str) -> &mut Self {
        match raw.split_once(':') {
            Some((_, value)) => self.secret(value),
            None => self.secret(raw),
        }
    }

    /// Add the credentials in `url`'s userinfo: the password (as typed and
    /// percent-decoded), or the user name when there is no password, since a
    /// lone user name is then the token (`https://TOKEN@host`). A user name
    /// next to a password is not searched for in text (it is usually a
    /// common word), but it goes with the rest of the userinfo wherever a URL
    /// is written.
    pub fn url(&mut self, url: &str) -> &mut Self {
        // Also what a hand-made parse would take, for URLs the URL parser
        // rejects (these still reach error messages).
        if let Some(m) = USERINFO.find(url.trim()) {
            let info = &m.as_str()[..m.as_str().len() - 1];
            let info = info.split_once("://").map_or(info, |(_, i)| i);
            match info.split_once(':') {
                Some((_, pass)) => self.credential(pass),
                None => self.credential(info),
            };
        } else if let Some((_, rest)) = url.trim().split_once("://")
            && let Some(at) = rest.rfind('@')
            && let Some((_, pass)) = rest[..at].split_once(':')
        {
            // A password with a raw `/`, `?` or `#` (`http://u:p#ss@h/v1`):
            // the pattern above stops short of its `@`.
            self.credential(pass);
        }
        self
    }

    /// A userinfo part, as typed and percent-decoded.
    fn credential(&mut self, raw: &str) -> &mut Self {
        self.secret(raw);
        let decoded = percent_decode(raw);
        if decoded != raw {
            self.secret(&decoded);
        }
        self
    }

    fn insert(&mut self, s: &str) {
        if !self.secrets.iter().any(|k| k == s) {
            self.secrets.push(s.to_owned());
            self.secrets
                .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        }
    }

    /// Add every secret `other` knows.
    pub fn merge(&mut self, other: &Redactor) -> &mut Self {
        for s in &other.secrets {
            self.insert(s);
        }
        self
    }

    /// Whether no secret is known.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with URL userinfo masked and every known secret (of at least
    /// [`MIN_TEXT_LEN`] characters) replaced by [`MASK`].
    pub fn scrub(&self, text: &str) -> String {
        let mut out = strip_userinfo(text);
        for s in &self.secrets {
            if s.chars().count() >= MIN_TEXT_LEN && out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    /// A command line fit for a record: the values of `--api-key` and
    /// `--header` (both `--flag value` and `--flag=value`) masked, header
    /// names kept; URL userinfo masked; every known secret masked.
    pub fn command<S: AsRef<str>>(&self, args: &[S]) -> Vec<String> {
        let mut out = Vec::with_capacity(args.len());
        let mut pending: Option<&str> = None;
        let mut positional = false;
        for a in args {
            let a = a.as_ref();
            if let Some(flag) = pending.take() {
                out.push(self.flag_value(flag, a));
                continue;
            }
            if positional {
                out.push(self.scrub(a));
                continue;
            }
            if a == "--" {
                // Everything after `--` is positional, never a flag value.
                positional = true;
                out.push(a.to_owned());
                continue;
            }
            match a.split_once('=') {
                Some((flag, value)) if is_secret_flag(flag) => {
                    out.push(format!("{flag}={}", self.flag_value(flag, value)));
                }
                None if is_secret_flag(a) => {
                    out.push(a.to_owned());
                    pending = Some(secret_flag(a));
                }
                _ => out.push(self.scrub(a)),
            }
        }
        out
    }

    /// The recorded form of a secret flag's value.
    fn flag_value(&self, flag: &str, value: &str) -> String {
        match (flag, value.split_once(':')) {
            ("--header", Some((name, _))) => format!("{}: {MASK}", self.scrub(name.trim())),
            _ => MASK.to_owned(),
        }
    }
}

/// Flags whose value is a secret.
const SECRET_FLAGS: [&str; 2] = ["--api-key", "--header"];

fn is_secret_flag(a: &str) -> bool {
    SECRET_FLAGS.contains(&a)
}

fn secret_flag(a: &str) -> &'static str {
    SECRET_FLAGS
        .iter()
        .find(|f| **f == a)
        .copied()
        .unwrap_or("")
}

/// `text` with the userinfo of every URL in it replaced by [`MASK`]
/// (`http://user:pass@host/v1` -> `http://***@host/v1`); for URLs that are
/// stored (run records, reports) as well as for free text.
pub fn strip_userinfo(text: &str) -> String {
    USERINFO
        .replace_all(text, |c: &regex::Captures| format!("{}{MASK}@", &c[1]))
        .into_owned()
}

/// One URL as given on the command line, for a message: everything between
/// `://` and the last `@` masked. Unlike [`strip_userinfo`] (which scans
/// free text and stops at `/`, `?` and `#`), this also covers a password
/// with those characters typed raw, which a URL parser rejects and an error
/// would otherwise print whole.
pub fn url_for_message(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rfind('@') {
            Some(at) => format!("{scheme}://{MASK}@{}", &rest[at + 1..]),
            None => url.to_owned(),
        },
        None => strip_userinfo(url),
    }
}

/// `%XX` sequences decoded (invalid ones and non-UTF-8 results left as is).
fn percent_decode(s: &str) -> String {
    String::from_utf8(crate::util::percent_decode_bytes(s)).unwrap_or_else(|_| s.to_owned())
}

/// The process-wide redactor (see the module docs).
static GLOBAL: RwLock<Redactor> = RwLock::new(Redactor::new());

/// Add `r`'s secrets to the process-wide redactor used by [`scrub`].
pub fn install(r: &Redactor) {
    let mut g = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    g.merge(r);
}

/// `text` through the process-wide redactor: URL userinfo and every
/// installed secret masked.
pub fn scrub(text: &str) -> String {
    let g = GLOBAL.read().unwrap_or_else(|e| e.into_inner());
    g.scrub(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn both_flag_forms_are_masked_in_the_command() {
        let mut r = Redactor::new();
        r.secret("sk-KEY123")
            .header("Authorization: Bearer HDR456")
            .header("X-Org: ORG789");
        let c = r.command(&args(&[
            "bench",
            "perf",
            "--api-key",
            "sk-KEY123",
            "--api-key=sk-KEY123",
            "--header",
            "Authorization: Bearer HDR456",
            "--header=X-Org: ORG789",
            "--model",
            "m",
        ]));
        assert_eq!(
            c,
            args(&[
                "bench",
                "perf",
                "--api-key",
                "***",
                "--api-key=***",
                "--header",
                "Authorization: ***",
                "--header=X-Org: ***",
                "--model",
                "m",
            ])
        );
    }

    #[test]
    fn url_userinfo_is_masked_in_the_command_and_text() {
        let mut r = Redactor::new();
        r.url("http://user:PASS%40word@127.0.0.1:8/v1");
        let c = r.command(&args(&[
            "--url",
            "http://user:PASS%40word@127.0.0.1:8/v1",
            "--api-url=http://user:PASS%40word@127.0.0.1:8/v1",
        ]));
        assert_eq!(
            c,
            args(&[
                "--url",
                "http://***@127.0.0.1:8/v1",
                "--api-url=http://***@127.0.0.1:8/v1"
            ])
        );
        // The decoded password, e.g. echoed by a proxy, is known too.
        assert_eq!(r.scrub("bad password PASS@word"), "bad password ***");
        assert_eq!(r.scrub("bad password PASS%40word"), "bad password ***");
    }

    #[test]
    fn a_raw_at_sign_in_the_password_does_not_leak_its_tail() {
        assert_eq!(
            strip_userinfo("GET http://u:p@ss@h:1/v1/models failed"),
            "GET http://***@h:1/v1/models failed"
        );
        // No userinfo: untouched, even with an `@` in the path.
        assert_eq!(
            strip_userinfo("http://h/v1/models/a@b"),
            "http://h/v1/models/a@b"
        );
    }

    #[test]
    fn lone_user_name_is_the_token() {
        let mut r = Redactor::new();
        r.url("https://ghp_TOKEN1234@host/v1");
        assert_eq!(
            r.scrub("token ghp_TOKEN1234 rejected"),
            "token *** rejected"
        );
        // A user name next to a password is only masked inside URLs.
        let mut r = Redactor::new();
        r.url("http://user:SECRETPW@host");
        assert_eq!(r.scrub("user SECRETPW"), "user ***");
    }

    #[test]
    fn echoed_secrets_are_scrubbed_longest_first() {
        let mut r = Redactor::new();
        r.secret("abcdefgh").secret("abcdefghijkl");
        assert_eq!(r.scrub("key abcdefghijkl and abcdefgh"), "key *** and ***");
        // The credential after an auth scheme is a secret of its own.
        let mut r = Redactor::new();
        r.header("Authorization: Bearer TOKEN4242");
        assert_eq!(r.scrub("invalid token TOKEN4242"), "invalid token ***");
    }

    #[test]
    fn short_secrets_are_masked_by_position_only() {
        let mut r = Redactor::new();
        r.secret("ab");
        assert_eq!(r.scrub("a cab"), "a cab");
        assert_eq!(
            r.command(&args(&["--api-key", "ab"])),
            args(&["--api-key", "***"])
        );
        assert_eq!(format!("{r:?}"), "Redactor { secrets: 1 }");
    }

    /// Regression (review): a placeholder key and a plain header value
    /// used to be masked everywhere in the recorded command line.
    #[test]
    fn placeholder_keys_and_plain_header_values_do_not_corrupt_the_command() {
        let mut r = Redactor::new();
        r.secret("test").header("X-Debug: true");
        assert_eq!(
            r.command(&args(&[
                "--output",
                "runs/test-1",
                "--extra-args",
                r#"{"ignore_eos": true}"#,
                "--header",
                "X-Debug: true",
                "--api-key",
                "test",
            ])),
            args(&[
                "--output",
                "runs/test-1",
                "--extra-args",
                r#"{"ignore_eos": true}"#,
                "--header",
                "X-Debug: ***",
                "--api-key",
                "***",
            ])
        );
    }

    /// Regression (review): a password with a raw `#` or `/` was neither
    /// registered nor masked in the "invalid --api-url" message.
    #[test]
    fn password_with_raw_url_delimiters_is_masked() {
        for url in [
            "http://u:pa#ss-long-9@host/v1",
            "http://u:ab/cd-long-9@host/v1",
        ] {
            let mut r = Redactor::new();
            r.url(url);
            let pass = &url[9..url.rfind('@').unwrap()];
            assert_eq!(r.scrub(&format!("x {pass} y")), "x *** y", "{url}");
            let shown = url_for_message(url);
            assert_eq!(shown, "http://***@host/v1");
        }
        assert_eq!(url_for_message("http://host/v1"), "http://host/v1");
    }

    #[test]
    fn empty_values_are_no_secret() {
        let mut r = Redactor::new();
        r.secret("  ").header("X-A:").url("http://h/v1");
        assert!(r.is_empty());
        assert_eq!(r.scrub("nothing here"), "nothing here");
    }
}
