//! Outbound HTTP to merchant-supplied URLs: fetching a picture (`FaceContrastPictureUrl`) and the requests of
//! callback delivery.
//!
//! Every hop (the URL and each redirect) is checked the same way: an absolute `http`/`https` URL without
//! credentials, a scheme and host the caller's rules allow, and a host whose every address is public
//! (`net::address`). The host is resolved here and the connection is pinned to exactly the addresses that were
//! checked, so a DNS answer that changes between the check and the connection (DNS rebinding) cannot redirect the
//! request. Proxies from the environment are ignored for the same reason. Error messages name the host at most,
//! never the path or query of a URL (they can carry tokens).
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::Url;

use super::address;
use crate::config::Config;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

const USER_AGENT: &str = concat!("shiren/", env!("CARGO_PKG_VERSION"));

/// Why a URL could not be used or fetched. [`FetchError::code`] is stable; the cloud API's `Code` for each is
/// `protocol::aliyun::codes::fetch_code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Not an absolute http(s) URL, carries credentials, has no host, or is too long.
    #[error("the URL is not usable: {0}")]
    BadUrl(&'static str),
    /// The scheme or host is not allowed, or URL fetching is switched off.
    #[error("{0}")]
    NotAllowed(String),
    /// The host is, or resolves to, an address that is not public (loopback, private, link-local, …).
    #[error("the host {host} is not a public address")]
    PrivateAddress { host: String },
    /// The name did not resolve, or the connection or TLS handshake failed.
    #[error("the host {host} could not be reached: {detail}")]
    Unreachable { host: String, detail: String },
    /// The whole exchange took longer than allowed.
    #[error("the request took longer than {0} ms")]
    Timeout(u64),
    /// The final answer was not 2xx (a redirect without `Location` counts as one too).
    #[error("the host {host} answered HTTP {status}")]
    HttpStatus { host: String, status: u16 },
    /// More redirects than allowed.
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// The body is larger than allowed (announced or actually sent).
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// The body is empty.
    #[error("the body is empty")]
    Empty,
}

impl FetchError {
    /// A stable code: `BAD_URL`, `URL_NOT_ALLOWED`, `PRIVATE_ADDRESS`, `UNREACHABLE`, `TIMEOUT`, `HTTP_STATUS`,
    /// `TOO_MANY_REDIRECTS`, `TOO_LARGE`, `EMPTY`.
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::BadUrl(_) => "BAD_URL",
            FetchError::NotAllowed(_) => "URL_NOT_ALLOWED",
            FetchError::PrivateAddress { .. } => "PRIVATE_ADDRESS",
            FetchError::Unreachable { .. } => "UNREACHABLE",
            FetchError::Timeout(_) => "TIMEOUT",
            FetchError::HttpStatus { .. } => "HTTP_STATUS",
            FetchError::TooManyRedirects(_) => "TOO_MANY_REDIRECTS",
            FetchError::TooLarge(_) => "TOO_LARGE",
            FetchError::Empty => "EMPTY",
        }
    }
}

/// What a picture fetch may do.
#[derive(Clone, Debug)]
pub struct FetchPolicy {
    /// Host patterns: `host` (exactly), `*.suffix` (any subdomain of suffix) or `*` (any host). Empty refuses all.
    pub allowed_hosts: Vec<String>,
    /// Largest body accepted, in bytes.
    pub max_bytes: usize,
    /// Time for the whole fetch, redirects included.
    pub timeout: Duration,
    /// Redirects followed, each re-checked.
    pub max_redirects: usize,
    /// Test-only: loopback addresses may be reached (other private addresses stay refused).
    pub allow_loopback: bool,
}

impl FetchPolicy {
    /// The policy of `[picture_url]` (and `testing.allow_loopback_urls`).
    pub fn from_config(config: &Config) -> FetchPolicy {
        FetchPolicy {
            allowed_hosts: config.picture_url.allowed_hosts.clone(),
            max_bytes: config.picture_url.max_bytes,
            timeout: Duration::from_millis(config.picture_url.timeout_ms),
            max_redirects: config.picture_url.max_redirects,
            allow_loopback: config.testing.allow_loopback_urls,
        }
    }
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy::from_config(&Config::default())
    }
}

/// Fetches merchants' pictures by URL under a [`FetchPolicy`].
#[derive(Clone, Debug)]
pub struct PictureFetcher {
    policy: FetchPolicy,
}

impl PictureFetcher {
    pub fn new(policy: FetchPolicy) -> PictureFetcher {
        PictureFetcher { policy }
    }

    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// Checks what can be checked without the network (syntax, scheme, allow-list, a literal address), so a
    /// request can be refused before any work.
    pub fn check_url(&self, url: &str) -> Result<(), FetchError> {
        let url = parse_url(url)?;
        check_static(&url, &self.rules())
    }

    /// Downloads `url`: GET, following at most `max_redirects` redirects (each checked like the URL), within
    /// `timeout` in total, the body read in pieces and abandoned as soon as it exceeds `max_bytes`.
    pub async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let timeout = self.policy.timeout;
        let max = self.policy.max_bytes;
        let rules = self.rules();
        let work = async {
            let url = parse_url(url)?;
            let resp = get_following(url, &rules).await?;
            let host = resp.url().host_str().unwrap_or_default().to_string();
            if !resp.status().is_success() {
                return Err(FetchError::HttpStatus {
                    host,
                    status: resp.status().as_u16(),
                });
            }
            read_limited(resp, &host, max).await
        };
        let body = match tokio::time::timeout(timeout, work).await {
            Ok(r) => r?,
            Err(_) => return Err(FetchError::Timeout(timeout.as_millis() as u64)),
        };
        if body.is_empty() {
            return Err(FetchError::Empty);
        }
        Ok(body)
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            schemes: &["https", "http"],
            hosts: Some(&self.policy.allowed_hosts),
            allow_loopback: self.policy.allow_loopback,
            max_redirects: self.policy.max_redirects,
        }
    }
}

/// Reads a body, stopping as soon as it is larger than `max` (whatever `Content-Length` said).
async fn read_limited(
    mut resp: reqwest::Response,
    host: &str,
    max: usize,
) -> Result<Vec<u8>, FetchError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(FetchError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(host, e))? {
        if body.len() + chunk.len() > max {
            return Err(FetchError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What one kind of outbound request allows, per hop.
pub(crate) struct Rules<'a> {
    /// Allowed schemes (lowercase).
    pub schemes: &'a [&'a str],
    /// Host patterns; `None` allows any host (the address check still applies).
    pub hosts: Option<&'a [String]>,
    /// Test-only: loopback addresses may be reached.
    pub allow_loopback: bool,
    /// Redirects followed.
    pub max_redirects: usize,
}

/// Parses an absolute URL that names a host and carries no credentials.
pub(crate) fn parse_url(url: &str) -> Result<Url, FetchError> {
    if url.len() > MAX_URL_LEN {
        return Err(FetchError::BadUrl("longer than 2048 characters"));
    }
    let url = Url::parse(url.trim()).map_err(|_| FetchError::BadUrl("not an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::BadUrl("credentials in URLs are not accepted"));
    }
    match url.host_str() {
        Some(h) if !h.is_empty() => Ok(url),
        _ => Err(FetchError::BadUrl("no host")),
    }
}

/// The host of `url` without IPv6 brackets or a trailing dot, lowercase.
fn host_of(url: &Url) -> String {
    normalize_host(url.host_str().unwrap_or_default())
}

fn normalize_host(h: &str) -> String {
    h.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Whether `host` matches an allow-list pattern: `*` (any), `*.suffix` (a subdomain of suffix) or an exact host.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern.trim().ends_with("*.") {
        return false; // a wildcard without a suffix is a mistake, not "any host"
    }
    let pattern = normalize_host(pattern);
    let host = normalize_host(host);
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) if !suffix.is_empty() => host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        _ => !pattern.is_empty() && pattern == host,
    }
}

/// Whether a request may reach `ip` under `rules`.
fn address_allowed(ip: IpAddr, rules: &Rules<'_>) -> bool {
    address::is_public(ip) || (rules.allow_loopback && address::is_loopback(ip))
}

/// The checks that need no network: scheme, allow-list, and the address when the host is a literal one. Names
/// are checked by [`resolve_checked`].
pub(crate) fn check_static(url: &Url, rules: &Rules<'_>) -> Result<(), FetchError> {
    let scheme = url.scheme();
    if !rules.schemes.contains(&scheme) {
        return Err(FetchError::NotAllowed(format!(
            "the scheme {scheme} is not allowed (allowed: {})",
            rules.schemes.join(", ")
        )));
    }
    let host = host_of(url);
    if let Some(patterns) = rules.hosts {
        if patterns.is_empty() {
            return Err(FetchError::NotAllowed(
                "fetching pictures by URL is switched off on this server (picture_url.allowed_hosts is empty)"
                    .into(),
            ));
        }
        if !patterns.iter().any(|p| host_matches(p, &host)) {
            return Err(FetchError::NotAllowed(format!(
                "the host {host} is not in picture_url.allowed_hosts"
            )));
        }
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        if !address_allowed(ip, rules) {
            return Err(FetchError::PrivateAddress { host });
        }
    }
    Ok(())
}

/// Whether `url` names `localhost` or a name under it (RFC 6761: never leaves the machine), which can be refused
/// without resolving it.
pub(crate) fn is_localhost_name(url: &Url) -> bool {
    let host = host_of(url);
    host == "localhost" || host.ends_with(".localhost")
}

/// Resolves the host of `url` and returns its addresses, all of which are allowed; refuses the URL when any is
/// not (a name that mixes public and private addresses is not used at all).
pub(crate) async fn resolve_checked(
    url: &Url,
    rules: &Rules<'_>,
) -> Result<Vec<SocketAddr>, FetchError> {
    let host = host_of(url);
    let port = url
        .port_or_known_default()
        .ok_or(FetchError::BadUrl("no port"))?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if address_allowed(ip, rules) {
            Ok(vec![SocketAddr::new(ip, port)])
        } else {
            Err(FetchError::PrivateAddress { host })
        };
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| FetchError::Unreachable {
            host: host.clone(),
            detail: "the name does not resolve".into(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(FetchError::Unreachable {
            host,
            detail: "the name has no addresses".into(),
        });
    }
    if addrs.iter().any(|a| !address_allowed(a.ip(), rules)) {
        return Err(FetchError::PrivateAddress { host });
    }
    Ok(addrs)
}

/// One GET of `url`, connected to exactly the checked addresses, without following redirects.
async fn get_once(url: &Url, rules: &Rules<'_>) -> Result<reqwest::Response, FetchError> {
    check_static(url, rules)?;
    let addrs = resolve_checked(url, rules).await?;
    let host = host_of(url);
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT);
    if host.parse::<IpAddr>().is_err() {
        // The name the URL carries (Host header, TLS server name) with the addresses checked above.
        builder = builder.resolve_to_addrs(url.host_str().unwrap_or_default(), &addrs);
    }
    let client = builder.build().map_err(|e| FetchError::Unreachable {
        host: host.clone(),
        detail: format!(
            "cannot build the HTTP client: {}",
            innermost(&e.without_url())
        ),
    })?;
    client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| transport_error(&host, e))
}

/// GET `url`, following redirects (each one checked like the URL) up to `rules.max_redirects`. The caller bounds
/// the time. The answer is returned whatever its status, except a redirect.
pub(crate) async fn get_following(
    mut url: Url,
    rules: &Rules<'_>,
) -> Result<reqwest::Response, FetchError> {
    let mut redirects = 0;
    loop {
        let resp = get_once(&url, rules).await?;
        if !resp.status().is_redirection() {
            return Ok(resp);
        }
        let host = host_of(&url);
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| url.join(l).ok());
        let Some(next) = location else {
            return Err(FetchError::HttpStatus {
                host,
                status: resp.status().as_u16(),
            });
        };
        if redirects >= rules.max_redirects {
            return Err(FetchError::TooManyRedirects(rules.max_redirects));
        }
        redirects += 1;
        url = parse_url(next.as_str())?;
    }
}

/// A transport error as a [`FetchError`], described without the URL.
pub(crate) fn transport_error(host: &str, e: reqwest::Error) -> FetchError {
    // No reqwest timeout is set (callers bound the whole exchange), so every error here is a transport failure.
    FetchError::Unreachable {
        host: host.to_string(),
        detail: innermost(&e.without_url()),
    }
}

/// The innermost cause of an error (e.g. "Connection refused (os error 111)").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        assert!(host_matches("pics.example", "pics.example"));
        assert!(host_matches("PICS.example.", "pics.EXAMPLE"));
        assert!(!host_matches("pics.example", "a.pics.example"));
        assert!(host_matches("*.example", "a.example"));
        assert!(host_matches("*.example", "a.b.example"));
        assert!(!host_matches("*.example", "example"));
        assert!(!host_matches("*.example", "badexample"));
        assert!(!host_matches("*.example", "a.example.evil"));
        assert!(host_matches("*", "anything.example"));
        assert!(host_matches("[::1]", "[::1]"));
        assert!(host_matches("::1", "[::1]"));
        assert!(!host_matches("", "a.example"));
        assert!(!host_matches("*.", "a.example"));
    }

    fn rules(hosts: &[String]) -> Rules<'_> {
        Rules {
            schemes: &["https", "http"],
            hosts: Some(hosts),
            allow_loopback: false,
            max_redirects: 3,
        }
    }

    #[test]
    fn static_checks() {
        let any = vec!["*".to_string()];
        let check = |u: &str, hosts: &[String]| {
            parse_url(u).and_then(|url| check_static(&url, &rules(hosts)))
        };
        assert_eq!(check("https://a.example/p.jpg", &any), Ok(()));
        assert_eq!(check("not a url", &any).unwrap_err().code(), "BAD_URL");
        assert_eq!(
            check("https://u:p@a.example/", &any).unwrap_err().code(),
            "BAD_URL"
        );
        assert_eq!(
            check("ftp://a.example/p.jpg", &any).unwrap_err().code(),
            "URL_NOT_ALLOWED"
        );
        assert_eq!(
            check("file:///etc/passwd", &any).unwrap_err().code(),
            "BAD_URL"
        );
        let e = check("https://a.example/p.jpg", &[]).unwrap_err();
        assert_eq!(e.code(), "URL_NOT_ALLOWED");
        assert!(e.to_string().contains("switched off"), "{e}");
        let only = vec!["*.oss.example".to_string()];
        assert_eq!(check("https://b.oss.example/x", &only), Ok(()));
        let e = check("https://evil.example/x?token=secret", &only).unwrap_err();
        assert_eq!(e.code(), "URL_NOT_ALLOWED");
        assert!(!e.to_string().contains("secret"), "{e}");
        for u in [
            "http://127.0.0.1/",
            "http://10.1.2.3/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(check(u, &any).unwrap_err().code(), "PRIVATE_ADDRESS", "{u}");
        }
        assert_eq!(
            check(&format!("https://a.example/{}", "x".repeat(3000)), &any)
                .unwrap_err()
                .code(),
            "BAD_URL"
        );
    }
}
