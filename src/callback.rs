//! Callback delivery (`CallbackUrl` + `CallbackToken`): when a verification that named a callback finishes, the
//! merchant's URL is called with `GET …?certifyId=…&passed=<SubCode>&callbackToken=…` (appended to the URL's own
//! query) until it answers 2xx, with exponential backoff, at most `max_attempts` times.
//!
//! The verdict's transaction writes the delivery ([`crate::db::callbacks::enqueue`]); a [`CallbackDispatcher`]
//! task works the table off, so deliveries survive restarts and several instances can share one database (each
//! delivery is claimed with a lease; see `db::callbacks`). Callback URLs are held to the address rule of picture
//! URLs (public addresses only, resolved and pinned per attempt, redirects re-checked) and must be `https`; the
//! test-only settings `testing.allow_loopback_urls` and `testing.allow_http_callbacks` relax exactly that.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::Notify;

use crate::config::Config;
use crate::db::callbacks::{self, Delivery};
use crate::net::fetch::{self, FetchError, Rules};

/// How callbacks are delivered.
#[derive(Clone, Debug)]
pub struct CallbackSettings {
    /// Time for one attempt (connection, redirects, answer head).
    pub timeout: Duration,
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub backoff_initial: Duration,
    /// Longest wait between attempts.
    pub backoff_max: Duration,
    /// Polling period when nothing wakes the dispatcher.
    pub poll_interval: Duration,
    /// How long a claimed delivery stays with its dispatcher before another may take it over; longer than
    /// `timeout`.
    pub lease: Duration,
    /// Deliveries claimed (and attempted concurrently) per round.
    pub batch: u64,
    /// Redirects followed, each re-checked.
    pub max_redirects: usize,
    /// Test-only: loopback addresses may be called.
    pub allow_loopback: bool,
    /// Test-only: `http` URLs are accepted.
    pub allow_http: bool,
}

impl CallbackSettings {
    /// The settings of `[callback]` (and `testing.allow_loopback_urls`, `testing.allow_http_callbacks`).
    pub fn from_config(config: &Config) -> CallbackSettings {
        let c = &config.callback;
        let timeout = Duration::from_millis(c.timeout_ms.max(1));
        CallbackSettings {
            timeout,
            max_attempts: c.max_attempts.max(1),
            backoff_initial: Duration::from_millis(c.backoff_initial_ms),
            backoff_max: Duration::from_millis(c.backoff_max_ms.max(c.backoff_initial_ms)),
            poll_interval: Duration::from_millis(c.poll_ms.max(10)),
            lease: timeout * 2 + Duration::from_secs(10),
            batch: 32,
            max_redirects: 2,
            allow_loopback: config.testing.allow_loopback_urls,
            allow_http: config.testing.allow_http_callbacks,
        }
    }

    /// The wait after the `failed`-th failed attempt (1-based): `backoff_initial · 2^(failed−1)`, capped.
    pub fn backoff(&self, failed: u32) -> Duration {
        let factor = 1u32 << failed.saturating_sub(1).min(20);
        self.backoff_initial
            .saturating_mul(factor)
            .min(self.backoff_max)
    }

    fn rules(&self) -> Rules<'static> {
        Rules {
            schemes: if self.allow_http {
                &["https", "http"]
            } else {
                &["https"]
            },
            hosts: None,
            allow_loopback: self.allow_loopback,
            max_redirects: self.max_redirects,
        }
    }
}

impl Default for CallbackSettings {
    fn default() -> Self {
        CallbackSettings::from_config(&Config::default())
    }
}

/// Checks a `CallbackUrl` at InitFaceVerify: an absolute `https` URL (http only with the test switch) with a
/// host, no credentials, at most 2048 characters, and not a literal non-public address (nor `localhost`). Names
/// are resolved and checked at each delivery, not here. Errors: `BAD_URL`, `URL_NOT_ALLOWED` (scheme),
/// `PRIVATE_ADDRESS`; the cloud API answers them with Code `401` (invalid parameter).
pub fn validate_callback_url(url: &str, settings: &CallbackSettings) -> Result<(), FetchError> {
    let url = fetch::parse_url(url)?;
    let rules = settings.rules();
    fetch::check_static(&url, &rules)?;
    if fetch::is_localhost_name(&url) && !rules.allow_loopback {
        return Err(FetchError::PrivateAddress {
            host: url.host_str().unwrap_or_default().to_string(),
        });
    }
    Ok(())
}

/// The URL a delivery calls: the merchant's URL with `certifyId`, `passed` and (when given) `callbackToken`
/// appended to its own query; any fragment is dropped.
pub fn delivery_url(
    url: &str,
    certify_id: &str,
    passed: &str,
    token: Option<&str>,
) -> Result<Url, FetchError> {
    let mut url = fetch::parse_url(url)?;
    url.set_fragment(None);
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("certifyId", certify_id);
        q.append_pair("passed", passed);
        if let Some(t) = token.filter(|t| !t.is_empty()) {
            q.append_pair("callbackToken", t);
        }
    }
    Ok(url)
}

/// Works off due callback deliveries; run one per server process (more are safe, they share the work).
#[derive(Clone)]
pub struct CallbackDispatcher {
    db: DatabaseConnection,
    settings: Arc<CallbackSettings>,
    wake: Arc<Notify>,
}

/// What one attempt came to.
enum Outcome {
    Delivered(u16),
    Failed { status: Option<u16>, error: String },
}

impl CallbackDispatcher {
    pub fn new(db: DatabaseConnection, settings: CallbackSettings) -> CallbackDispatcher {
        CallbackDispatcher {
            db,
            settings: Arc::new(settings),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Uses `wake` to be woken (e.g. the one in `AppContext`, notified after a verdict with a callback commits).
    pub fn with_wake(mut self, wake: Arc<Notify>) -> CallbackDispatcher {
        self.wake = wake;
        self
    }

    /// The handle that wakes this dispatcher: `notify_one()` after committing an [`callbacks::enqueue`].
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn settings(&self) -> &CallbackSettings {
        &self.settings
    }

    /// One round: claims the deliveries due now (up to `batch`) and attempts them concurrently, recording each
    /// outcome. Returns how many were attempted.
    pub async fn run_once(&self) -> Result<usize, DbErr> {
        let now = callbacks::now_ms();
        let due = callbacks::due(&self.db, now, self.settings.batch).await?;
        let lease_until = now + self.settings.lease.as_millis() as i64;
        let mut tasks = tokio::task::JoinSet::new();
        for d in due {
            if !callbacks::claim(&self.db, &d, lease_until).await? {
                continue; // another instance took it
            }
            let this = self.clone();
            tasks.spawn(async move { this.attempt(d, lease_until).await });
        }
        let mut attempted = 0;
        while let Some(r) = tasks.join_next().await {
            attempted += 1;
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot record a callback attempt"),
                Err(e) => tracing::warn!(error = %e, "a callback attempt panicked"),
            }
        }
        Ok(attempted)
    }

    /// Runs rounds until `shutdown` completes: after each round it sleeps until the next delivery is due, the
    /// poll interval passes, or it is woken.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = match self.run_once().await {
                Ok(_) => self.wait_for_next().await,
                Err(e) => {
                    tracing::warn!(error = %e, "callback dispatcher: database error");
                    self.settings.poll_interval
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Runs forever (until the task is aborted or the runtime stops).
    pub async fn run(self) {
        self.run_until(std::future::pending()).await
    }

    /// Starts [`CallbackDispatcher::run`] on the runtime.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn wait_for_next(&self) -> Duration {
        let poll = self.settings.poll_interval;
        match callbacks::next_due_ms(&self.db).await {
            Ok(Some(t)) => {
                let ms = (t - callbacks::now_ms()).max(0) as u64;
                Duration::from_millis(ms).min(poll)
            }
            Ok(None) => poll,
            Err(e) => {
                tracing::warn!(error = %e, "callback dispatcher: database error");
                poll
            }
        }
    }

    async fn attempt(&self, d: Delivery, lease_until: i64) -> Result<(), DbErr> {
        let attempt = d.attempts + 1;
        let timeout = self.settings.timeout;
        let outcome = match tokio::time::timeout(timeout, self.call(&d)).await {
            Ok(o) => o,
            Err(_) => Outcome::Failed {
                status: None,
                error: FetchError::Timeout(timeout.as_millis() as u64).to_string(),
            },
        };
        let host = Url::parse(&d.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let recorded = match outcome {
            Outcome::Delivered(status) => {
                tracing::info!(certify_id = %d.certify_id, %host, attempt, status, "callback delivered");
                callbacks::mark_delivered(&self.db, &d.certify_id, lease_until, attempt, status)
                    .await?
            }
            Outcome::Failed { status, error } => {
                let retry_at = (attempt < self.settings.max_attempts).then(|| {
                    callbacks::now_ms() + self.settings.backoff(attempt).as_millis() as i64
                });
                if retry_at.is_some() {
                    tracing::warn!(certify_id = %d.certify_id, %host, attempt, %error, "callback attempt failed; will retry");
                } else {
                    tracing::warn!(certify_id = %d.certify_id, %host, attempt, %error, "callback given up");
                }
                callbacks::mark_failed_attempt(
                    &self.db,
                    &d.certify_id,
                    lease_until,
                    attempt,
                    status,
                    &error,
                    retry_at,
                )
                .await?
            }
        };
        if !recorded {
            tracing::warn!(certify_id = %d.certify_id, "callback lease lost before its outcome was recorded");
        }
        Ok(())
    }

    /// One GET of the delivery URL under the address rules.
    async fn call(&self, d: &Delivery) -> Outcome {
        let rules = self.settings.rules();
        let url = match delivery_url(&d.url, &d.certify_id, &d.passed, d.token.as_deref()) {
            Ok(u) => u,
            Err(e) => {
                return Outcome::Failed {
                    status: None,
                    error: e.to_string(),
                }
            }
        };
        match fetch::get_following(url, &rules).await {
            Ok(resp) if resp.status().is_success() => Outcome::Delivered(resp.status().as_u16()),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let host = resp.url().host_str().unwrap_or_default().to_string();
                Outcome::Failed {
                    status: Some(status),
                    error: FetchError::HttpStatus { host, status }.to_string(),
                }
            }
            Err(e) => Outcome::Failed {
                status: match &e {
                    FetchError::HttpStatus { status, .. } => Some(*status),
                    _ => None,
                },
                error: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testing() -> CallbackSettings {
        CallbackSettings {
            allow_http: true,
            allow_loopback: true,
            ..CallbackSettings::default()
        }
    }

    #[test]
    fn validation() {
        let s = CallbackSettings::default();
        assert_eq!(
            validate_callback_url("https://m.example/cb?x=1", &s),
            Ok(())
        );
        for (u, code) in [
            ("http://m.example/cb", "URL_NOT_ALLOWED"),
            ("ftp://m.example/cb", "URL_NOT_ALLOWED"),
            ("m.example/cb", "BAD_URL"),
            ("https://user:pw@m.example/cb", "BAD_URL"),
            ("https://127.0.0.1/cb", "PRIVATE_ADDRESS"),
            ("https://10.0.0.8/cb", "PRIVATE_ADDRESS"),
            ("https://[::1]/cb", "PRIVATE_ADDRESS"),
            ("https://169.254.169.254/cb", "PRIVATE_ADDRESS"),
            ("https://[fd00::1]/cb", "PRIVATE_ADDRESS"),
            ("https://localhost/cb", "PRIVATE_ADDRESS"),
        ] {
            assert_eq!(
                validate_callback_url(u, &s).unwrap_err().code(),
                code,
                "{u}"
            );
        }
        let t = testing();
        assert_eq!(validate_callback_url("http://127.0.0.1:9/cb", &t), Ok(()));
        assert_eq!(validate_callback_url("http://localhost:9/cb", &t), Ok(()));
        // The test switch opens loopback only.
        assert_eq!(
            validate_callback_url("http://10.0.0.8/cb", &t)
                .unwrap_err()
                .code(),
            "PRIVATE_ADDRESS"
        );
    }

    #[test]
    fn url_keeps_its_query() {
        let u = delivery_url(
            "https://m.example/cb?shop=7&x=a%20b#frag",
            "sha1abc",
            "205",
            Some("tok&en"),
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "https://m.example/cb?shop=7&x=a%20b&certifyId=sha1abc&passed=205&callbackToken=tok%26en"
        );
        let u = delivery_url("https://m.example/cb", "c1", "200", None).unwrap();
        assert_eq!(u.as_str(), "https://m.example/cb?certifyId=c1&passed=200");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let s = CallbackSettings::default();
        let secs: Vec<u64> = (1..=9).map(|n| s.backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert!(s.lease > s.timeout);
    }
}
