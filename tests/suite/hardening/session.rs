//! The hosted page's identity before anything else, against a real `shiren serve`:
//! - an attempt upload is read only after its token and browser session are known (fault 4): uploads with made-up
//!   tokens or sessions are answered at once with the body unread, a declared body over the limit too, and a flood
//!   of them neither slows the answers down nor grows the server's memory;
//! - a verification has one page link and one page session (fault 6): the merchant's signed certify URL replayed
//!   leads to the same link every time (one token row), a second browser is told `TOKEN_USED` while the first goes
//!   on, InitFaceVerify retried gives the same CertifyUrl, and the tokens of expired verifications are purged.
use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shiren::protocol::alipay::{merchant, Charset, SignType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{self, Backend, Instance};

const APP_ID: &str = "2021000000000612";
const MIB: usize = 1024 * 1024;
/// The hosted page's upload limit (`MAX_ATTEMPT_BODY` in src/api/h5.rs).
const ATTEMPT_LIMIT: usize = 24 * MIB;

/// A `shiren serve` started here (as `common::Instance::serve_with` does) so that its process id is known.
struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(inst: &Instance, extra: &[(&str, &str)]) -> Serve {
        let mut child = inst
            .cmd(&["serve"])
            .env("SHIREN_BIND", "127.0.0.1:0")
            .envs(extra.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let addr = common::listening_address(&mut child);
        Serve { child, addr }
    }

    /// The server's resident memory (VmRSS), in KiB.
    fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// An instance with one merchant app (key 0).
fn instance(backend: Backend) -> Instance {
    let inst = Instance::new(backend);
    let pem = inst.file("app.pem", &common::merchant_key(0).public_key().to_pem());
    inst.run(&[
        "app",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "session",
        "--public-key",
        pem.to_str().unwrap(),
    ]);
    inst
}

/// A gateway timestamp `offset_secs` from now, in UTC (a zone the gateway accepts like any other; using UTC makes
/// the window checks below exact on any machine).
fn timestamp(offset_secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_secs))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The signed form of a gateway call, as the merchant's SDK makes it, with a timestamp `offset_secs` from now.
fn signed(method: &str, biz: &str, offset_secs: i64) -> String {
    let ts = timestamp(offset_secs);
    let pairs = [
        ("app_id", APP_ID),
        ("method", method),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("timestamp", ts.as_str()),
        ("version", "1.0"),
        ("biz_content", biz),
    ];
    String::from_utf8(merchant::signed_form(
        common::merchant_key(0),
        SignType::Rsa2,
        &pairs,
        Charset::Utf8,
    ))
    .unwrap()
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A new verification (FACE) through the gateway; its certify_id.
fn initialize(base: &str, order: &str) -> String {
    let biz = json!({
        "outer_order_no": order,
        "biz_code": "FACE",
        "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": "张三", "cert_no": common::test_cert_no()},
        "merchant_config": {"return_url": "https://m.example/back"},
    })
    .to_string();
    let v: Value = client()
        .post(format!("{base}/gateway.do"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=utf-8",
        )
        .body(signed("alipay.user.certify.open.initialize", &biz, 0))
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["alipay_user_certify_open_initialize_response"]["certify_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

/// The certify URL a merchant hands to its front end (a GET of the gateway, signed once).
fn certify_url(base: &str, certify_id: &str, offset_secs: i64) -> String {
    let biz = json!({ "certify_id": certify_id }).to_string();
    format!(
        "{base}/gateway.do?{}",
        signed("alipay.user.certify.open.certify", &biz, offset_secs)
    )
}

/// Follows a certify URL once: the page link it redirects to, or the status and body of its error page.
fn follow(url: &str) -> Result<String, (u16, String)> {
    let r = client().get(url).send().unwrap();
    let status = r.status().as_u16();
    match r.headers().get("location") {
        Some(l) if status == 302 => Ok(l.to_str().unwrap().to_string()),
        _ => Err((status, r.text().unwrap_or_default())),
    }
}

/// Opens the page link: its status, its new session cookie (`name=value`), and its body.
fn open(link: &str, cookie: Option<&str>) -> (u16, Option<String>, String) {
    let mut req = client().get(link);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_string);
    (status, cookie, r.text().unwrap_or_default())
}

fn challenge(link: &str, cookie: &str) -> (u16, Value) {
    challenge_with(link, cookie, &common::consent())
}

fn challenge_with(link: &str, cookie: &str, body: &Value) -> (u16, Value) {
    let r = client()
        .post(format!("{link}/challenge"))
        .header("cookie", cookie)
        .json(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

fn token_of(link: &str) -> String {
    link.rsplit('/').next().unwrap().to_string()
}

fn count_tokens(inst: &Instance, certify_id: &str) -> u64 {
    let id = certify_id.to_string();
    inst.db.with(|db| async move {
        shiren::db::verifications::count_tokens(&db, &id)
            .await
            .unwrap()
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Fault 4: the body after the identity.

/// What one raw upload got: the answer's status (None when the connection ended without one), its head, how much
/// of the body went out, and how long it took.
#[derive(Debug)]
struct Upload {
    status: Option<u16>,
    head: String,
    body: String,
    sent: usize,
    elapsed: Duration,
}

/// POSTs to `path` announcing `declared` body bytes and sending up to `send` of them (in 256 KiB pieces, while
/// reading the answer). Plain TCP, so that an answer given before the body is read is seen as such.
async fn upload(
    addr: &str,
    path: &str,
    cookie: Option<&str>,
    declared: usize,
    send: usize,
) -> Upload {
    let host = addr.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n{cookie}\r\n"
    );
    let writer = async move {
        let mut sent = 0;
        if wr.write_all(head.as_bytes()).await.is_err() {
            return 0;
        }
        let piece = vec![b' '; 256 * 1024];
        while sent < send {
            let n = piece.len().min(send - sent);
            if wr.write_all(&piece[..n]).await.is_err() {
                break;
            }
            sent += n;
        }
        sent
    };
    let reader = async move {
        let mut buf = Vec::new();
        let mut tmp = vec![0u8; 16 * 1024];
        loop {
            match rd.read(&mut tmp).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
            // A complete answer (head and Content-Length body) is enough; the server may keep the connection.
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break;
                }
            }
        }
        buf
    };
    let (sent, buf) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(writer, reader)
    })
    .await
    .expect("an upload neither answered nor ended within 60 s");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok());
    Upload {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
        sent,
        elapsed: started.elapsed(),
    }
}

fn made_up_token() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

#[test]
fn attempt_uploads_are_read_only_after_token_and_session() {
    let inst = instance(Backend::Sqlite);
    let server = Serve::start(&inst, &[]);
    let base = server.addr.clone();
    let id = initialize(&base, "body-after-identity");
    let link = follow(&certify_url(&base, &id, 0)).expect("certify redirects");
    let token = token_of(&link);
    let (status, cookie, _) = open(&link, None);
    assert_eq!(status, 200);
    let cookie = cookie.expect("a session cookie");
    let path = format!("/h5/certify/{token}/attempt");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Headers announcing a full 24 MiB upload and no body at all: the identity decides at once.
    let cases = [
        (
            format!("/h5/certify/{}/attempt", made_up_token()),
            None,
            ATTEMPT_LIMIT,
            403,
            "SESSION_MISSING",
        ),
        (
            format!("/h5/certify/{}/attempt", made_up_token()),
            Some("shiren_h5=made-up".to_string()),
            ATTEMPT_LIMIT,
            404,
            "TOKEN_INVALID",
        ),
        (path.clone(), None, ATTEMPT_LIMIT, 403, "SESSION_MISSING"),
        (
            path.clone(),
            Some("shiren_h5=made-up".to_string()),
            ATTEMPT_LIMIT,
            403,
            "SESSION_MISSING",
        ),
        // The right session, but more than the limit announced: refused unread too.
        (
            path.clone(),
            Some(cookie.clone()),
            100 * MIB,
            413,
            "INVALID_FRAMES",
        ),
    ];
    for (p, c, declared, want, code) in cases {
        let u = rt.block_on(upload(&base, &p, c.as_deref(), declared, 0));
        assert_eq!(u.status, Some(want), "{u:?}");
        assert!(u.body.contains(code), "{u:?}");
        assert!(u.head.contains("connection: close"), "{u:?}");
        assert!(u.elapsed < Duration::from_secs(2), "{u:?}");
        eprintln!(
            "no body sent, {declared} bytes announced: {want} {code} in {:?}",
            u.elapsed
        );
    }
    // With the right session the body is read (and here found not to be the expected JSON).
    let u = rt.block_on(upload(&base, &path, Some(&cookie), 2, 2));
    assert_eq!(u.status, Some(400), "{u:?}");
    assert!(u.body.contains("INVALID_FRAMES"), "{u:?}");

    // A flood: 16 clients at once, each sending a whole 24 MiB upload with a made-up token or session (the issue
    // saw RSS 170 → 305 MB with 8 such uploads before the fix). The server's RSS is sampled meanwhile.
    let before = server.rss_kib();
    let pid = server.child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let started = Instant::now();
    let uploads: Vec<Upload> = rt.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (base, path) = (base.clone(), path.clone());
                tokio::spawn(async move {
                    let made_up = format!("/h5/certify/{}/attempt", made_up_token());
                    let (p, c) = match i % 4 {
                        0 => (made_up, None),
                        1 => (made_up, Some(format!("shiren_h5={}", made_up_token()))),
                        2 => (path, None),
                        _ => (path, Some(format!("shiren_h5={}", made_up_token()))),
                    };
                    upload(&base, &p, c.as_deref(), ATTEMPT_LIMIT, ATTEMPT_LIMIT).await
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let flood = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let sent: usize = uploads.iter().map(|u| u.sent).sum();
    let slowest = uploads.iter().map(|u| u.elapsed).max().unwrap();
    let answered: Vec<Option<u16>> = uploads.iter().map(|u| u.status).collect();
    eprintln!(
        "flood: 16 × 24 MiB uploads with made-up tokens/sessions ended in {flood:?} (slowest {slowest:?}); \
         {} MiB of 384 MiB went out before the server closed; answers {answered:?}; \
         server RSS {} MiB before, peak {} MiB",
        sent / MIB,
        before / 1024,
        peak / 1024
    );
    for u in &uploads {
        // Answered with the refusal, or cut off (the server closes instead of draining the body).
        assert!(matches!(u.status, None | Some(403 | 404)), "{u:?}");
        assert!(u.elapsed < Duration::from_secs(10), "{u:?}");
    }
    assert!(
        answered.iter().any(|s| s.is_some()),
        "some refusals arrive before the reset"
    );
    assert!(
        sent < 16 * ATTEMPT_LIMIT / 2,
        "the server stopped the uploads early ({sent} bytes went out)"
    );
    const BUDGET_KIB: u64 = 32 * 1024;
    assert!(
        peak.saturating_sub(before) < BUDGET_KIB,
        "RSS grew by {} KiB (budget {BUDGET_KIB} KiB)",
        peak.saturating_sub(before)
    );

    // The server is up and the real session still works.
    assert_eq!(
        client()
            .get(format!("{base}/healthz"))
            .send()
            .unwrap()
            .status(),
        200
    );
    let (status, ch) = challenge(&link, &cookie);
    assert_eq!(status, 200, "{ch}");
    assert!(ch["challenge_id"].is_string());
}

// ---------------------------------------------------------------------------------------------------------------
// Fault 6: one page link and one page session per verification.

fn replayed_certify_url(backend: Backend) {
    let inst = instance(backend);
    let server = Serve::start(
        &inst,
        // A replay loop of 80 calls at once: over the per-app rate, which is not what this test is about.
        &[("SHIREN_LIMITS_APP_PER_SECOND", "1000")],
    );
    let base = server.addr.clone();
    let id = initialize(&base, "replay");
    // The merchant signs the certify URL once; it is then replayed (as an attacker who saw it would).
    let url = certify_url(&base, &id, 0);
    let link = follow(&url).expect("certify redirects");
    for _ in 0..19 {
        assert_eq!(follow(&url).as_deref(), Ok(link.as_str()), "the same link");
    }
    assert_eq!(
        count_tokens(&inst, &id),
        1,
        "one token row after 20 replays"
    );

    // The first browser binds the page; a second one, with the link or with the certify URL, is refused.
    let (status, cookie, _) = open(&link, None);
    assert_eq!(status, 200);
    let first = cookie.expect("the first browser gets a session");
    let (status, cookie, body) = open(&follow(&url).unwrap(), None);
    assert_eq!(status, 403);
    assert!(body.contains("TOKEN_USED"), "{body}");
    assert!(cookie.is_none(), "no session for the second browser");
    let (status, ch) = challenge(&link, "shiren_h5=guess");
    assert_eq!(
        (status, ch["code"].as_str()),
        (403, Some("SESSION_MISSING"))
    );

    // The first browser goes on, also after following the certify URL again (the merchant's link tapped twice).
    let (status, ch) = challenge(&link, &first);
    assert_eq!(status, 200, "{ch}");
    assert_eq!(ch["attempt"], 1);
    let again = follow(&url).unwrap();
    assert_eq!(again, link);
    let (status, cookie, _) = open(&again, Some(&first));
    assert_eq!((status, cookie), (200, None));
    let (status, ch) = challenge(&again, &first);
    assert_eq!(status, 200, "{ch}");
    assert_eq!(ch["attempt"], 2);

    // Many replays at once (a replay loop) still leave one row.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || (0..10).map(|_| follow(&url)).collect::<Vec<_>>())
        })
        .collect();
    for t in threads {
        for r in t.join().unwrap() {
            assert_eq!(r.as_deref(), Ok(link.as_str()));
        }
    }
    assert_eq!(
        count_tokens(&inst, &id),
        1,
        "one token row after 100 replays"
    );

    // Another verification has its own link.
    let other = initialize(&base, "replay-other");
    let other_link = follow(&certify_url(&base, &other, 0)).unwrap();
    assert_ne!(other_link, link);
    assert_eq!(open(&other_link, None).0, 200);

    // The replay window of a signed certify URL is its timestamp's: the gateway reads it as local time of any
    // zone from UTC-12 to UTC+14, plus timestamp_skew_secs (900), so it is accepted until 12 h 15 min after the
    // timestamp read as UTC (20 h 15 min after signing in Beijing, at most 26 h 15 min in UTC+14).
    let skew = 900;
    let late = certify_url(&base, &id, -(12 * 3600 + skew - 60));
    assert_eq!(follow(&late).as_deref(), Ok(link.as_str()));
    let too_late = certify_url(&base, &id, -(12 * 3600 + skew + 60));
    let (status, body) = follow(&too_late).unwrap_err();
    assert_eq!(status, 400);
    assert!(body.contains("isv.invalid-timestamp"), "{body}");
}

#[test]
fn replayed_certify_url_keeps_one_page_session_on_sqlite() {
    replayed_certify_url(Backend::Sqlite);
}

#[test]
fn replayed_certify_url_keeps_one_page_session_on_postgres() {
    replayed_certify_url(Backend::Postgres);
}

#[test]
fn replayed_certify_url_keeps_one_page_session_on_mariadb() {
    replayed_certify_url(Backend::MariaDb);
}

/// InitFaceVerify of the cloud API (RPC signature) with these parameters; the JSON answer.
fn init_face_verify(base: &str, key_id: &str, secret: &str, order: &str) -> Value {
    use shiren::protocol::aliyun::acs;
    let mut p: BTreeMap<String, String> = [
        ("Action", "InitFaceVerify"),
        ("Version", "2019-03-07"),
        ("Format", "JSON"),
        ("AccessKeyId", key_id),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SceneId", "6120"),
        ("ProductCode", "LR_FR"),
        ("OuterOrderNo", order),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    p.insert(
        "SignatureNonce".into(),
        hex::encode(rand::random::<[u8; 16]>()),
    );
    p.insert(
        "Timestamp".into(),
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    let sig = acs::rpc_signature(secret, &acs::rpc_string_to_sign("POST", &p));
    p.insert("Signature".into(), sig);
    let body = p
        .iter()
        .map(|(k, v)| format!("{}={}", acs::percent_encode(k), acs::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    client()
        .post(format!("{base}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn retried_init_face_verify_gives_the_same_page() {
    let inst = instance(Backend::Sqlite);
    inst.run(&[
        "scene",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "liveness",
        "--scene-id",
        "6120",
        "--product",
        "LR_FR",
    ]);
    let out = inst.run(&["app", "access-key", "create", APP_ID]);
    let mut lines = out.lines();
    let key_id = lines.next().unwrap().strip_prefix("AccessKeyId: ").unwrap();
    let secret = lines
        .next()
        .unwrap()
        .strip_prefix("AccessKeySecret: ")
        .unwrap();
    let server = Serve::start(&inst, &[]);
    let base = server.addr.clone();
    let first = init_face_verify(&base, key_id, secret, "cloud-retry");
    assert_eq!(first["Code"], "200", "{first}");
    let id = first["ResultObject"]["CertifyId"].as_str().unwrap();
    let url = first["ResultObject"]["CertifyUrl"].as_str().unwrap();
    let (status, cookie, _) = open(url, None);
    assert_eq!(status, 200);
    for _ in 0..5 {
        let again = init_face_verify(&base, key_id, secret, "cloud-retry");
        assert_eq!(again["ResultObject"]["CertifyId"], id, "{again}");
        assert_eq!(again["ResultObject"]["CertifyUrl"], url, "{again}");
    }
    assert_eq!(count_tokens(&inst, id), 1);
    assert_eq!(open(url, None).0, 403, "a second browser");
    // LR_FR names nobody: the consent of a product that names a person is not the one its page showed.
    let cookie = cookie.unwrap();
    let (status, refused) = challenge(url, &cookie);
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["code"], "CONSENT_REQUIRED");
    let liveness =
        json!({"consent_version": shiren::domain::consent::ConsentText::Liveness.version()});
    assert_eq!(
        challenge_with(url, &cookie, &liveness).0,
        200,
        "the first browser"
    );
}

#[test]
fn page_tokens_of_expired_verifications_are_purged() {
    let inst = instance(Backend::Sqlite);
    // Two instances on one database: one whose verifications live 3 s (and so are purged 3 s after that, its
    // purge running every 3 s), one with the default half hour.
    let short = Serve::start(
        &inst,
        &[
            ("SHIREN_CERTIFY_TTL_SECS", "3"),
            ("SHIREN_TOKEN_TTL_SECS", "3"),
        ],
    );
    let long = Serve::start(&inst, &[]);
    let gone = initialize(&short.addr, "purge-short");
    let link = follow(&certify_url(&short.addr, &gone, 0)).unwrap();
    let kept = initialize(&long.addr, "purge-long");
    let kept_link = follow(&certify_url(&long.addr, &kept, 0)).unwrap();
    assert_eq!(count_tokens(&inst, &gone), 1);
    let started = Instant::now();
    while count_tokens(&inst, &gone) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the expired verification's token was not purged"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "the token of a verification expiring after 3 s was purged {:?} after it was minted",
        started.elapsed()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "not before its time"
    );
    assert_eq!(
        count_tokens(&inst, &kept),
        1,
        "a live verification keeps its token"
    );
    assert_eq!(open(&kept_link, None).0, 200);
    // The purged link is unknown now; the certify URL cannot mint it again (the verification expired).
    let (status, _, body) = open(&link, None);
    assert_eq!(status, 404);
    assert!(body.contains("TOKEN_INVALID"), "{body}");
    let (status, body) = follow(&certify_url(&short.addr, &gone, 0)).unwrap_err();
    assert_eq!(status, 400, "{body}");
    assert_eq!(count_tokens(&inst, &gone), 0);
}
