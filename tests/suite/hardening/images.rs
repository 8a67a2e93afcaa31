//! Faults 1–3: hostile images and free work. A 3 KB PNG of 1 × 1,600,000 pixels once aborted the whole process
//! from the hosted page (and a 1 × 16,000,000 one through `LivenessFaceVerify`); a 16-bit 6320² merchant picture
//! cost 430 MB per submission; a challenge could be resubmitted without end, each time asking the authority and
//! analysing frames. Now: refused from the header, counted per challenge, bounded in memory under a burst.
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use shiren::protocol::alipay::merchant::signed_form;
use shiren::protocol::alipay::params::Charset;
use shiren::protocol::alipay::SignType;

use crate::common::{self, Backend, Instance, Server};

const APP_ID: &str = "2021000000000012";
const LR_FR_MIN_SCENE: &str = "7001";
/// The stated budget: the server's peak resident memory with 8 concurrent heavy submissions.
const RSS_BUDGET_MIB: u64 = 1024;

/// A PNG whose header says `w`×`h` at `bits` per channel (`colour` 0 grey, 2 RGB), with rows of zeros:
/// kilobytes on the wire, gigabytes if a decoder or a resize believed it.
pub fn claimed_png(w: u32, h: u32, bits: u8, colour: u8) -> Vec<u8> {
    let crc = |data: &[u8]| {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    };
    let chunk = |out: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc(&body).to_be_bytes());
    };
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[bits, colour, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let channels = if colour == 2 { 3 } else { 1 };
    let row = vec![0u8; 1 + w as usize * channels * usize::from(bits / 8)];
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..h {
        z.write_all(&row).unwrap();
    }
    chunk(&mut out, b"IDAT", &z.finish().unwrap());
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A loopback "authority" that counts the requests it gets and answers 503: frames refused for their content
/// must never reach it.
struct CountingAuthority {
    url: String,
    hits: Arc<AtomicUsize>,
}

fn counting_authority() -> CountingAuthority {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/lookup", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut s = stream;
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let _ = s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    CountingAuthority { url, hits }
}

struct Setup {
    inst: Instance,
    server: Server,
    authority: CountingAuthority,
    cloud_key: (String, String),
}

fn setup(backend: Backend) -> Setup {
    let inst = Instance::new(backend);
    let pem = inst.file("app.pem", &common::merchant_key(0).public_key().to_pem());
    inst.run(&[
        "app",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "hardening",
        "--public-key",
        pem.to_str().unwrap(),
        "--return-url",
        "https://m.example/",
    ]);
    inst.run(&[
        "scene",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "liveness",
        "--scene-id",
        LR_FR_MIN_SCENE,
        "--product",
        "LR_FR_MIN",
    ]);
    let keys = inst.run(&["app", "access-key", "create", APP_ID]);
    let field = |name: &str| {
        keys.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{name} in {keys}"))
    };
    let cloud_key = (field("AccessKeyId:"), field("AccessKeySecret:"));
    let authority = counting_authority();
    let server = inst.serve_with(
        "127.0.0.1:0".parse().unwrap(),
        &[
            ("SHIREN_AUTHORITY_URL", authority.url.as_str()),
            ("SHIREN_AUTHORITY_SECRET", "hardening-test-secret"),
            ("SHIREN_AUTHORITY_TIMEOUT_MS", "500"),
            ("SHIREN_TEST_ALLOW_HTTP_AUTHORITY", "1"),
            ("SHIREN_ANALYSIS_CONCURRENCY", "2"),
        ],
    );
    Setup {
        inst,
        server,
        authority,
        cloud_key,
    }
}

/// A signed `initialize` through `/gateway.do`; the answer's JSON node.
fn initialize(s: &Setup, order: &str, picture: Option<&[u8]>) -> Value {
    let mut biz = json!({
        "outer_order_no": order,
        "biz_code": "FACE",
        "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": "王五", "cert_no": common::test_cert_no()},
        "merchant_config": {"return_url": "https://m.example/back"},
    });
    if let Some(p) = picture {
        biz["face_contrast_picture"] = json!(B64.encode(p));
    }
    let biz = biz.to_string();
    let ts = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let form = signed_form(
        common::merchant_key(0),
        SignType::Rsa2,
        &[
            ("app_id", APP_ID),
            ("method", "alipay.user.certify.open.initialize"),
            ("charset", "utf-8"),
            ("sign_type", "RSA2"),
            ("timestamp", &ts),
            ("version", "1.0"),
            ("biz_content", &biz),
        ],
        Charset::Utf8,
    );
    let body: Value = reqwest::blocking::Client::new()
        .post(format!("{}/gateway.do", s.server.addr))
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=utf-8",
        )
        .body(form)
        .send()
        .unwrap()
        .json()
        .unwrap();
    body["alipay_user_certify_open_initialize_response"].clone()
}

/// An open hosted session: its token, cookie and first challenge.
struct Session {
    token: String,
    cookie: String,
    challenge_id: String,
}

fn open_session(s: &Setup, order: &str) -> Session {
    let node = initialize(s, order, None);
    let certify_id = node["certify_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{node}"))
        .to_string();
    let token = s.inst.db.with(|db| async move {
        let store = s.inst.store();
        let certify = shiren::certify::CertifyService::new(
            db.clone(),
            store,
            shiren::certify::service::ServiceSettings {
                certify_ttl_secs: 1800,
                token_ttl_secs: 1200,
                max_contrast_picture_bytes: 1 << 20,
                default_scenes: Default::default(),
            },
            Arc::new(shiren::certify::SystemClock),
        );
        let app = shiren::db::apps::find(&db, APP_ID).await.unwrap().unwrap();
        certify
            .open_page(&app, &json!({ "certify_id": certify_id }).to_string())
            .await
            .unwrap()
    });
    let client = reqwest::blocking::Client::new();
    let page = client
        .get(format!("{}/h5/certify/{token}", s.server.addr))
        .send()
        .unwrap();
    let cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let ch: Value = client
        .post(format!("{}/h5/certify/{token}/challenge", s.server.addr))
        .header("cookie", &cookie)
        .json(&common::consent())
        .send()
        .unwrap()
        .json()
        .unwrap();
    Session {
        token,
        cookie,
        challenge_id: ch["challenge_id"].as_str().unwrap().to_string(),
    }
}

fn submit(
    client: &reqwest::blocking::Client,
    addr: &str,
    session: &Session,
    frames: &[Vec<u8>],
) -> (u16, Value) {
    let frames: Vec<Value> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| json!({"t_ms": i * 10, "jpeg": B64.encode(f)}))
        .collect();
    let r = client
        .post(format!("{addr}/h5/certify/{}/attempt", session.token))
        .header("cookie", &session.cookie)
        .header("content-type", "application/json")
        .body(json!({"challenge_id": session.challenge_id, "frames": frames}).to_string())
        .timeout(Duration::from_secs(900))
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

/// A cloud API call signed in the RPC style (HMAC-SHA1), as the legacy SDK sends it.
fn cloud_rpc(s: &Setup, action: &str, params: &[(&str, &str)]) -> Value {
    let mut p: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in [
        ("Action", action.to_string()),
        ("AccessKeyId", s.cloud_key.0.clone()),
        ("Format", "JSON".into()),
        ("SignatureMethod", "HMAC-SHA1".into()),
        ("SignatureVersion", "1.0".into()),
        ("SignatureNonce", hex::encode(rand::random::<[u8; 16]>())),
        (
            "Timestamp",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        ),
        ("Version", "2019-03-07".into()),
    ] {
        p.insert(k.to_string(), v);
    }
    let sts = shiren::protocol::aliyun::acs::rpc_string_to_sign("POST", &p);
    p.insert(
        "Signature".into(),
        shiren::protocol::aliyun::acs::rpc_signature(&s.cloud_key.1, &sts),
    );
    let body: String = p
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                shiren::protocol::aliyun::acs::percent_encode(k),
                shiren::protocol::aliyun::acs::percent_encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    reqwest::blocking::Client::new()
        .post(format!("{}/", s.server.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .timeout(Duration::from_secs(60))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn healthy(s: &mut Setup) {
    assert!(s.server.alive(), "the server process is gone");
    let r = reqwest::blocking::get(format!("{}/healthz", s.server.addr)).unwrap();
    assert_eq!(r.status(), 200);
}

fn hostile_images(backend: Backend) {
    let _heavy = common::heavy();
    let mut s = setup(backend);
    let client = reqwest::blocking::Client::new();

    // Fault 2: a 16-bit 6320² merchant picture is refused at initialize, from its header.
    let deep = claimed_png(6320, 6320, 16, 2);
    eprintln!("16-bit 6320² picture: {} bytes", deep.len());
    let before = s.server.rss_mib();
    let node = initialize(&s, "deep-picture", Some(&deep));
    assert_eq!(node["sub_code"], "INVALID_PICTURE", "{node}");
    assert!(
        s.server.rss_mib() < before + 100,
        "RSS {before} → {} MiB",
        s.server.rss_mib()
    );
    healthy(&mut s);

    // Fault 1: the 3 KB frame of 1 × 1,600,000 pixels that once aborted the process.
    let thin = claimed_png(1, 1_600_000, 8, 0);
    eprintln!("1 × 1,600,000 frame: {} bytes", thin.len());
    assert!(thin.len() < 8 * 1024);
    let session = open_session(&s, "thin-frame");
    let (status, v) = submit(
        &client,
        &s.server.addr,
        &session,
        std::slice::from_ref(&thin),
    );
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("INVALID_FRAMES")),
        "{v}"
    );
    healthy(&mut s);

    // Fault 3: every submission of a challenge counts; frames refused for their content never reach the authority.
    for _ in 0..2 {
        let (status, v) = submit(
            &client,
            &s.server.addr,
            &session,
            std::slice::from_ref(&thin),
        );
        assert_eq!(
            (status, v["code"].as_str()),
            (400, Some("INVALID_FRAMES")),
            "{v}"
        );
    }
    let (status, v) = submit(
        &client,
        &s.server.addr,
        &session,
        std::slice::from_ref(&thin),
    );
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("CHALLENGE_INVALID")),
        "the fourth submission of one challenge is refused: {v}"
    );
    assert_eq!(
        s.authority.hits.load(Ordering::SeqCst),
        0,
        "no authority lookup for refused frames"
    );

    // Fault 1 through the cloud API: LivenessFaceVerify with a 1 × 16,000,000 PNG.
    let thin_cloud = claimed_png(1, 16_000_000, 8, 0);
    eprintln!("1 × 16,000,000 picture: {} bytes", thin_cloud.len());
    let v = cloud_rpc(
        &s,
        "LivenessFaceVerify",
        &[
            ("SceneId", LR_FR_MIN_SCENE),
            ("OuterOrderNo", "thin-cloud"),
            ("ProductCode", "LR_FR_MIN"),
            ("FaceContrastPicture", &B64.encode(&thin_cloud)),
        ],
    );
    assert_eq!(v["Code"], "419", "{v}");
    healthy(&mut s);
    eprintln!(
        "{backend:?}: hostile images refused; RSS {} MiB, peak {} MiB",
        s.server.rss_mib(),
        s.server.peak_rss_mib()
    );
}

#[test]
fn hostile_images_sqlite() {
    hostile_images(Backend::Sqlite);
}

#[test]
fn hostile_images_postgres() {
    hostile_images(Backend::Postgres);
}

/// The heaviest submission the page accepts: 24 MiB of upload, as 70 frames of 1280² near the 256 KiB frame limit.
fn heavy_frames() -> Vec<Vec<u8>> {
    let mut amplitude = 48u32;
    loop {
        let mut seed = 0x2545_f491u32;
        let img = image::RgbImage::from_fn(1280, 1280, |x, y| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let n = seed % amplitude;
            image::Rgb([
                ((x / 5 + n) % 256) as u8,
                ((y / 5 + n) % 256) as u8,
                (((x + y) / 10 + n) % 256) as u8,
            ])
        });
        let mut frame = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut frame),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        if frame.len() < 250 * 1024 {
            return vec![frame; 70];
        }
        amplitude /= 2;
    }
}

/// Eight sessions submit the heaviest accepted upload at once: the work queues on the bound (2 at a time here),
/// the server's peak RSS stays under the budget, and a signed gateway call still answers meanwhile.
#[test]
fn a_burst_of_heavy_submissions_stays_within_memory() {
    let _heavy = common::heavy();
    let mut s = setup(Backend::Sqlite);
    let frames = Arc::new(heavy_frames());
    let upload: usize = frames.iter().map(|f| f.len() * 4 / 3).sum();
    eprintln!(
        "heavy upload: {} frames of 1280², {} bytes each, {upload} bytes as base64",
        frames.len(),
        frames[0].len()
    );
    let sessions: Vec<Session> = (0..8)
        .map(|i| open_session(&s, &format!("burst-{i}")))
        .collect();
    let idle = s.server.rss_mib();
    let started = Instant::now();
    let addr = s.server.addr.clone();
    let handles: Vec<_> = sessions
        .into_iter()
        .map(|session| {
            let (addr, frames) = (addr.clone(), frames.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                submit(&client, &addr, &session, &frames)
            })
        })
        .collect();
    // Legitimate calls meanwhile.
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let node = initialize(&s, "legitimate-meanwhile", None);
    assert!(node["certify_id"].is_string(), "{node}");
    eprintln!(
        "a signed initialize during the burst answered in {} ms",
        t.elapsed().as_millis()
    );
    healthy(&mut s);
    let mut statuses = Vec::new();
    for h in handles {
        let (status, v) = h.join().unwrap();
        assert!(
            matches!(status, 200 | 503),
            "a heavy submission is decided, or refused as busy / authority unavailable: {status} {v}"
        );
        statuses.push(status);
    }
    healthy(&mut s);
    let peak = s.server.peak_rss_mib();
    eprintln!(
        "burst of 8 heavy submissions: {:?} in {} ms; RSS idle {idle} MiB, peak {peak} MiB (budget {RSS_BUDGET_MIB})",
        statuses,
        started.elapsed().as_millis()
    );
    assert!(peak < RSS_BUDGET_MIB, "peak RSS {peak} MiB");
}
