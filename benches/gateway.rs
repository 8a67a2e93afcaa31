//! Gateway benchmark (not a test): `cargo bench --bench gateway`.
//!
//! 1. The cost of one RSA-2048 signature and one verification with the `rsa` crate and with `ring`
//!    (constant-time), measured in this process, with the ratio between them.
//! 2. Signed `query` and `initialize` calls per second, p50 and p99 latency, against a real `shiren serve`
//!    (a separate process, SQLite by default; `SHIREN_BENCH_DATABASE_URL` for another database), driven by
//!    concurrent clients in this process with requests signed before the clock starts.
//! 3. Throughput as a fraction of the bound set by signing alone (every response costs one RSA-2048 signature,
//!    and every request one verification, on the machine's cores).
//!
//! Knobs: `SHIREN_BENCH_SECS` (per phase, default 8), `SHIREN_BENCH_CONCURRENCY` (default 16).
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shiren::protocol::alipay::{merchant, Charset, SignType, SigningKey};

const APP_ID: &str = "2021000000000009";

fn per_op(label: &str, iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(iters);
    println!("{label:<44} {us:>9.1} µs/op  {:>8.0} op/s", 1e6 / us);
    us
}

fn form_body(key: &SigningKey, method: &str, biz: &str) -> Vec<u8> {
    let ts = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let pairs = [
        ("app_id", APP_ID),
        ("method", method),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("version", "1.0"),
        ("timestamp", ts.as_str()),
        ("biz_content", biz),
    ];
    merchant::signed_form(key, SignType::Rsa2, &pairs, Charset::Utf8)
}

struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

async fn load(
    url: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    reuse: bool,
    secs: u64,
    concurrency: usize,
) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, bodies, next, url) = (
            client.clone(),
            bodies.clone(),
            next.clone(),
            url.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let body = if reuse {
                    bodies[i % bodies.len()].clone()
                } else if i < bodies.len() {
                    bodies[i].clone()
                } else {
                    break;
                };
                let t = Instant::now();
                let ok = match client
                    .post(&url)
                    .header(
                        "content-type",
                        "application/x-www-form-urlencoded;charset=utf-8",
                    )
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r
                        .bytes()
                        .await
                        .map(|b| {
                            let needle = b"\"code\":\"10000\"";
                            b.windows(needle.len()).any(|w| w == needle)
                        })
                        .unwrap_or(false),
                    Err(_) => false,
                };
                lat.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(0.0)
    };
    Run {
        rps: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    }
}

fn main() {
    let secs: u64 = std::env::var("SHIREN_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let concurrency: usize = std::env::var("SHIREN_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    println!("== RSA-2048 PKCS#1 v1.5 (one core)");
    let key = SigningKey::generate().unwrap();
    let public = key.public_key();
    let msg = b"app_id=2021000000000009&biz_content={\"certify_id\":\"0123456789abcdef0123456789abcdef\"}&charset=utf-8&method=alipay.user.certify.open.query&sign_type=RSA2&timestamp=2026-11-29 12:00:00&version=1.0";
    let sig = key.sign(SignType::Rsa2, msg);
    let rsa_sign = per_op("sign   SHA256  rsa crate (blinded)", 200, || {
        std::hint::black_box(key.sign_with_rsa_crate(SignType::Rsa2, msg));
    });
    let ring_sign = per_op("sign   SHA256  ring (constant-time)", 200, || {
        std::hint::black_box(key.sign(SignType::Rsa2, msg));
    });
    let rsa_verify = per_op("verify SHA256  rsa crate", 2000, || {
        assert!(public.verify_with_rsa_crate(SignType::Rsa2, msg, &sig));
    });
    let ring_verify = per_op("verify SHA256  ring", 2000, || {
        assert!(public.verify(SignType::Rsa2, msg, &sig));
    });
    println!("ratio sign   rsa/ring = {:.2}x", rsa_sign / ring_sign);
    println!("ratio verify rsa/ring = {:.2}x", rsa_verify / ring_verify);
    let per_request_us = ring_sign + ring_verify;
    let bound = cores as f64 * 1e6 / per_request_us;
    println!("signing bound: {cores} cores / ({ring_sign:.0} µs sign + {ring_verify:.0} µs verify) = {bound:.0} req/s");

    // A real server in its own process.
    let dir = tempfile::tempdir().unwrap();
    let db_url = std::env::var("SHIREN_BENCH_DATABASE_URL").unwrap_or_else(|_| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.sqlite").display()
        )
    });
    let env = [
        (
            "SHIREN_DATA_DIR",
            dir.path().join("data").display().to_string(),
        ),
        ("SHIREN_DATABASE_URL", db_url),
        ("RUST_LOG", "error".to_string()),
    ];
    let bin = env!("CARGO_BIN_EXE_shiren");
    let pub_file = dir.path().join("app.pem");
    std::fs::write(&pub_file, key.public_key().to_pem()).unwrap();
    let st = Command::new(bin)
        .args([
            "app",
            "create",
            "--app-id",
            APP_ID,
            "--name",
            "bench",
            "--public-key",
        ])
        .arg(&pub_file)
        .envs(env.iter().cloned())
        .status()
        .unwrap();
    assert!(st.success());
    // Throughput is measured with one ID number and one app, far over the limits per ID number and per app.
    let mut child = Command::new(bin)
        .arg("serve")
        .envs(env.iter().cloned())
        .env("SHIREN_BIND", "127.0.0.1:0")
        .env("SHIREN_LIMITS_ENABLED", "false")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let url = format!("{base}/gateway.do");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cert_no = shiren::domain::idcard::with_check_char("11010519900307123");
    let init_biz = |i: usize| {
        format!(
            r#"{{"outer_order_no":"b{i}","biz_code":"FACE","identity_param":{{"identity_type":"CERT_INFO","cert_type":"IDENTITY_CARD","cert_name":"张三","cert_no":"{cert_no}"}},"merchant_config":{{"return_url":"https://m.example/back"}}}}"#
        )
    };
    // One verification to query.
    let first = form_body(
        &key,
        "alipay.user.certify.open.initialize",
        &init_biz(usize::MAX),
    );
    let resp = rt.block_on(async {
        reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(first)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let certify_id = resp.split("\"certify_id\":\"").nth(1).unwrap()[..32].to_string();
    let query_bodies: Vec<Vec<u8>> = (0..concurrency)
        .map(|_| {
            form_body(
                &key,
                "alipay.user.certify.open.query",
                &format!(r#"{{"certify_id":"{certify_id}"}}"#),
            )
        })
        .collect();
    // Enough pre-signed initialize requests for the phase (signing them is not part of the measurement).
    let init_count = (bound * secs as f64 * 1.2) as usize + 100;
    println!("\n(pre-signing {init_count} initialize requests...)");
    let init_bodies: Vec<Vec<u8>> = (0..init_count)
        .map(|i| form_body(&key, "alipay.user.certify.open.initialize", &init_biz(i)))
        .collect();

    println!("\n== gateway under load: {concurrency} concurrent clients, {secs} s per phase, server = separate process");
    for (name, bodies, reuse) in [
        ("query", query_bodies, true),
        ("initialize", init_bodies, false),
    ] {
        let r = rt.block_on(load(&url, Arc::new(bodies), reuse, secs, concurrency));
        println!(
            "{name:<11} {:>7.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}  = {:.0}% of the signing bound",
            r.rps,
            r.p50_ms,
            r.p99_ms,
            r.errors,
            100.0 * r.rps / bound
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
