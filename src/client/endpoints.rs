//! Turning `--api-url` into the three URLs the client calls.
//!
//! Users paste whatever their server's docs show: a host, a `/v1` base, or a
//! full endpoint (lm-eval needs the full `.../chat/completions`, evalscope
//! strips it). All of them resolve to the same base.

use super::{ApiKind, ConfigError};

/// The URLs derived from `--api-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The API base without a trailing slash, e.g. `http://h:8000/v1`.
    pub base: String,
    /// `{base}/chat/completions`.
    pub chat: String,
    /// `{base}/completions`.
    pub completions: String,
    /// `{base}/models`.
    pub models: String,
    /// The endpoint the URL named, when it was a full endpoint URL rather
    /// than a base; lets the CLI pick the API kind from the URL.
    pub named: Option<ApiKind>,
}

impl Endpoints {
    /// The generation URL for `api`.
    pub fn for_api(&self, api: ApiKind) -> &str {
        match api {
            ApiKind::Chat => &self.chat,
            ApiKind::Completions => &self.completions,
        }
    }
}

/// Resolves `--api-url` (`http://h:p`, `http://h:p/v1`, `.../v1/`,
/// `.../v1/chat/completions`, `.../v1/completions`) into [`Endpoints`].
///
/// A bare host gets `/v1`; any other path (`/openai/v1`, `/api`) is kept as
/// the base, since proxies mount the API under their own prefixes.
pub fn resolve_endpoints(api_url: &str) -> Result<Endpoints, ConfigError> {
    let bad = |reason: &str| ConfigError::ApiUrl {
        // Shown to the user: credentials in the URL stay out.
        url: crate::redact::strip_userinfo(api_url),
        reason: reason.to_owned(),
    };
    let trimmed = api_url.trim();
    let url = reqwest::Url::parse(trimmed).map_err(|e| {
        bad(&format!(
            "not a URL ({e}); expected e.g. http://127.0.0.1:8000/v1"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(
            "must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a ?query or #fragment"));
    }

    let mut path = url.path().trim_end_matches('/');
    let mut named = None;
    for (suffix, api) in [
        ("/chat/completions", ApiKind::Chat),
        ("/completions", ApiKind::Completions),
    ] {
        if let Some(stripped) = path.strip_suffix(suffix) {
            path = stripped;
            named = Some(api);
            break;
        }
    }
    // `.../v1/models` is what people copy from a health check.
    if named.is_none() {
        path = path.strip_suffix("/models").unwrap_or(path);
    }
    let path = path.trim_end_matches('/');
    let path = if path.is_empty() { "/v1" } else { path };

    // Rebuild from the parsed parts so the base is normalised (lower-case
    // scheme and host, default port dropped) and keeps any user:pass@.
    let mut origin = url.clone();
    origin.set_path("");
    let origin = origin.as_str().trim_end_matches('/').to_owned();
    let base = format!("{origin}{path}");
    Ok(Endpoints {
        chat: format!("{base}/chat/completions"),
        completions: format!("{base}/completions"),
        models: format!("{base}/models"),
        base,
        named,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_form_gives_the_same_base() {
        for url in [
            "http://h:8000",
            "http://h:8000/",
            "http://h:8000/v1",
            "http://h:8000/v1/",
            "http://h:8000/v1/chat/completions",
            "http://h:8000/v1/chat/completions/",
            "http://h:8000/v1/completions",
            "http://h:8000/v1/models",
            " http://H:8000/v1 ",
        ] {
            let e = resolve_endpoints(url).unwrap();
            assert_eq!(e.base, "http://h:8000/v1", "{url}");
            assert_eq!(e.chat, "http://h:8000/v1/chat/completions");
            assert_eq!(e.completions, "http://h:8000/v1/completions");
            assert_eq!(e.models, "http://h:8000/v1/models");
        }
    }

    #[test]
    fn remembers_which_endpoint_was_named() {
        let named = |u| resolve_endpoints(u).unwrap().named;
        assert_eq!(named("http://h/v1/chat/completions"), Some(ApiKind::Chat));
        assert_eq!(named("http://h/v1/completions"), Some(ApiKind::Completions));
        assert_eq!(named("http://h/v1"), None);
    }

    #[test]
    fn custom_prefixes_and_https_are_kept() {
        let e = resolve_endpoints("https://gw.example.com/openai/v1/chat/completions").unwrap();
        assert_eq!(e.base, "https://gw.example.com/openai/v1");
        let e = resolve_endpoints("https://gw.example.com:443/api").unwrap();
        assert_eq!(e.base, "https://gw.example.com/api");
        assert_eq!(
            e.for_api(ApiKind::Completions),
            "https://gw.example.com/api/completions"
        );
    }

    #[test]
    fn rejects_non_http_urls_naming_the_flag() {
        for url in [
            "localhost:8000",
            "ftp://h/v1",
            "h:8000/v1",
            "",
            "http://",
            "http://h/v1?x=1",
        ] {
            let err = resolve_endpoints(url).unwrap_err().to_string();
            assert!(err.contains("--api-url"), "{url}: {err}");
        }
    }
}
