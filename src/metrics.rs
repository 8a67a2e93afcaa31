//! Prometheus metrics (`/metrics`, text exposition format), all named `shiren_*`. Labels carry methods, status
//! codes, outcomes, reason codes, stages, products and events: never names, ID numbers, ids or images.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    decisions: BTreeMap<(&'static str, &'static str), u64>,
    stages: BTreeMap<&'static str, Histogram>,
    billing: BTreeMap<(String, &'static str), u64>,
}

/// The process's counters and histograms.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// A method as a label: the standard ones by name, anything else as `OTHER`.
fn method_label(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "OTHER",
    }
}

/// A label value from a closed set of codes; anything unexpected is `other`.
fn code_label(s: &str) -> &str {
    if !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        s
    } else {
        "other"
    }
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// An HTTP request answered with `status`.
    pub fn request(&self, method: &str, status: u16) {
        self.with(|i| {
            *i.requests
                .entry((method_label(method), status))
                .or_default() += 1
        });
    }

    /// An attempt decided: `passed`, `retry` or `failed`, with the fail reason code (`-` when passed).
    pub fn decision(&self, outcome: &'static str, reason: &'static str) {
        self.with(|i| *i.decisions.entry((outcome, reason)).or_default() += 1);
    }

    /// Time spent in one stage of a decision (`authority`, `observe`, `decide`, `record`, `total`).
    pub fn stage(&self, stage: &'static str, elapsed: Duration) {
        self.with(|i| {
            i.stages
                .entry(stage)
                .or_default()
                .observe(elapsed.as_secs_f64())
        });
    }

    /// A billing record written.
    pub fn billing_event(&self, product: &str, event: &'static str) {
        let product = code_label(product).to_string();
        self.with(|i| *i.billing.entry((product, event)).or_default() += 1);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        self.with(|i| {
            let mut out = String::new();
            let _ = writeln!(out, "# HELP shiren_http_requests_total HTTP requests answered, by method and status code.");
            let _ = writeln!(out, "# TYPE shiren_http_requests_total counter");
            for ((m, c), n) in &i.requests {
                let _ = writeln!(out, "shiren_http_requests_total{{method=\"{m}\",code=\"{c}\"}} {n}");
            }
            let _ = writeln!(out, "# HELP shiren_decisions_total Attempts decided, by outcome and fail reason.");
            let _ = writeln!(out, "# TYPE shiren_decisions_total counter");
            for ((o, r), n) in &i.decisions {
                let _ = writeln!(out, "shiren_decisions_total{{outcome=\"{o}\",reason=\"{r}\"}} {n}");
            }
            let _ = writeln!(out, "# HELP shiren_decision_stage_seconds Time spent in each stage of a decision.");
            let _ = writeln!(out, "# TYPE shiren_decision_stage_seconds histogram");
            for (stage, h) in &i.stages {
                for (b, c) in BUCKETS.iter().zip(h.counts.iter()) {
                    let _ = writeln!(out, "shiren_decision_stage_seconds_bucket{{stage=\"{stage}\",le=\"{b}\"}} {c}");
                }
                let _ = writeln!(out, "shiren_decision_stage_seconds_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "shiren_decision_stage_seconds_sum{{stage=\"{stage}\"}} {}", h.sum);
                let _ = writeln!(out, "shiren_decision_stage_seconds_count{{stage=\"{stage}\"}} {}", h.count);
            }
            let _ = writeln!(out, "# HELP shiren_billing_events_total Billing records written, by product and event.");
            let _ = writeln!(out, "# TYPE shiren_billing_events_total counter");
            for ((p, e), n) in &i.billing {
                let _ = writeln!(out, "shiren_billing_events_total{{product=\"{p}\",event=\"{e}\"}} {n}");
            }
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("GET", 200);
        m.request("GET", 200);
        m.request("BREW", 418);
        m.decision("failed", "FACE_MISMATCH");
        m.stage("total", Duration::from_millis(300));
        m.stage("total", Duration::from_millis(3));
        m.billing_event("FACE", "PASS");
        m.billing_event("张三", "PASS");
        let t = m.render();
        assert!(
            t.contains("shiren_http_requests_total{method=\"GET\",code=\"200\"} 2"),
            "{t}"
        );
        assert!(t.contains("shiren_http_requests_total{method=\"OTHER\",code=\"418\"} 1"));
        assert!(t.contains("shiren_decisions_total{outcome=\"failed\",reason=\"FACE_MISMATCH\"} 1"));
        assert!(t.contains("shiren_decision_stage_seconds_bucket{stage=\"total\",le=\"0.005\"} 1"));
        assert!(t.contains("shiren_decision_stage_seconds_bucket{stage=\"total\",le=\"0.5\"} 2"));
        assert!(t.contains("shiren_decision_stage_seconds_count{stage=\"total\"} 2"));
        assert!(t.contains("shiren_billing_events_total{product=\"FACE\",event=\"PASS\"} 1"));
        assert!(!t.contains("张三"), "free text never becomes a label");
    }
}
