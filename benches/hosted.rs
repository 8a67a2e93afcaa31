//! Hosted-flow decision benchmark (not a test): `cargo bench --bench hosted`. Needs `../shared/data` and ffmpeg.
//!
//! Measures one attempt from upload to verdict through the real HTTP server in this process: 20 frames (480×480
//! JPEG, as the page sends them) POSTed as JSON to `/h5/certify/{token}/attempt` → decoded, observed by the real
//! engine, decided, written to SQLite with the verdict. Reported as p50/p99 over sequential attempts and with two
//! attempts at a time, against a baseline run in the same process: the engine alone observing the same 20 frames.
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use poem::listener::{Acceptor, Listener, TcpListener};
use shiren::config::Config;
use shiren::db::NewApp;
use shiren::face::engine::{EngineSettings, OnnxEngine};
use shiren::face::models::provision::{self, Manifest, StderrProgress};
use shiren::protocol::alipay::SigningKey;

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

fn report(name: &str, v: &mut [Duration]) -> f64 {
    let p50 = pct(v, 0.5);
    println!(
        "{name:<44} p50 {p50:>8.1} ms  p99 {:>8.1} ms  (n={})",
        pct(v, 0.99),
        v.len()
    );
    p50
}

/// 20 frames of d3 at 8 fps (the page's rate), 480×480 JPEG.
fn frames(data: &Path, dir: &Path) -> Vec<Vec<u8>> {
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", "6.0", "-t", "2.5", "-i"])
        .arg(data.join("videos/d3.mp4"))
        .args(["-an", "-vf", "fps=8,scale=480:480", "-q:v", "4"])
        .arg(dir.join("%03d.jpg"))
        .status()
        .expect("ffmpeg");
    assert!(st.success());
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files.truncate(20);
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn main() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    assert!(data.is_dir(), "the hosted benchmark needs ../shared/data");
    let tmp = tempfile::tempdir().unwrap();
    let jpegs = frames(&data, tmp.path());
    assert_eq!(jpegs.len(), 20);
    let kb = jpegs.iter().map(Vec::len).sum::<usize>() as f64 / 1024.0;
    println!("20 frames, {kb:.0} KB of JPEG in all");

    let installed = provision::ensure(
        &provision::default_dir(),
        &Manifest::builtin(),
        &StderrProgress,
    )
    .unwrap();
    let engine = Arc::new(OnnxEngine::load(&installed, EngineSettings::default()).unwrap());

    // Baseline: the engine alone on the same frames, as the decision observes them.
    let mut base = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let mut prev = None;
        for (i, j) in jpegs.iter().enumerate() {
            let img = shiren::face::image::decode(j, Default::default()).unwrap();
            let (_, th) = shiren::face::observe::observe(
                engine.as_ref(),
                &img,
                i as u32 * 125,
                prev.as_ref(),
            )
            .unwrap();
            prev = Some(th);
        }
        base.push(t.elapsed());
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (seq, par, unknown) = rt.block_on(async {
        let mut config = Config {
            data_dir: tmp.path().join("data"),
            ..Config::default()
        };
        config.decision.max_attempts = 5;
        // Some 50 verifications of two ID numbers from one address: over the limits, which are not measured here.
        config.limits.enabled = false;
        let db = shiren::open_database(&config).await.unwrap();
        let store = shiren::open_store(&config, &db).await.unwrap();
        let merchant = SigningKey::generate().unwrap();
        let app = shiren::db::apps::insert(
            &db,
            NewApp {
                app_id: "2021000000000001".into(),
                name: "bench".into(),
                public_key: merchant.public_key(),
                return_url_prefixes: vec!["https://m.example/".into()],
            },
            chrono::Utc::now().timestamp(),
        )
        .await
        .unwrap();
        // The registered person: a frame of the same video.
        let photo = tmp.path().join("ref.jpg");
        std::fs::write(&photo, &jpegs[0]).unwrap();
        let csv = tmp.path().join("reg.csv");
        let cert_no = shiren::domain::idcard::with_check_char("11010119900307001");
        std::fs::write(&csv, format!("cert_no,cert_name,photo\n{cert_no},李四,ref.jpg\n")).unwrap();
        shiren::authority::import::import_csv(&db, &store, engine.as_ref(), &csv, chrono::Utc::now().timestamp(), |_, _| {})
            .await
            .unwrap();

        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
        let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let url = format!("http://{addr}");
        let key = SigningKey::generate().unwrap();
        let ctx = shiren::build_context(config, db, store, key, url.clone(), engine.clone()).unwrap();
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(shiren::build_app(ctx.clone())));

        let body_frames: Vec<serde_json::Value> = jpegs
            .iter()
            .enumerate()
            .map(|(i, j)| {
                serde_json::json!({"t_ms": i * 125, "jpeg": base64::engine::general_purpose::STANDARD.encode(j)})
            })
            .collect();
        let client = reqwest::Client::new();
        let unregistered = shiren::domain::idcard::with_check_char("11010119900307002");
        let one_for = |n: usize, cert_no: String| {
            let (ctx, app, client, url, body_frames) =
                (ctx.clone(), app.clone(), client.clone(), url.clone(), body_frames.clone());
            async move {
                let biz = serde_json::json!({
                    "outer_order_no": format!("bench-{n}-{}", rand::random::<u32>()),
                    "biz_code": "FACE",
                    "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": "李四", "cert_no": cert_no},
                    "merchant_config": {"return_url": "https://m.example/back"},
                })
                .to_string();
                let id = ctx.certify.initialize(&app, &biz).await.unwrap();
                let token = ctx
                    .certify
                    .open_page(&app, &serde_json::json!({"certify_id": id}).to_string())
                    .await
                    .unwrap();
                let page = client.get(format!("{url}/h5/certify/{token}")).send().await.unwrap();
                let cookie = page
                    .headers()
                    .get("set-cookie")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|c| c.split(';').next())
                    .unwrap()
                    .to_string();
                let ch: serde_json::Value = client
                    .post(format!("{url}/h5/certify/{token}/challenge"))
                    .header("cookie", &cookie)
                    .json(&serde_json::json!({
                        "consent_version": shiren::domain::consent::ConsentText::Identity.version()
                    }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let body = serde_json::json!({"challenge_id": ch["challenge_id"], "frames": body_frames}).to_string();
                let t = Instant::now();
                let r = client
                    .post(format!("{url}/h5/certify/{token}/attempt"))
                    .header("cookie", &cookie)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let v: serde_json::Value = r.json().await.unwrap();
                assert!(v["outcome"].is_string(), "{v}");
                t.elapsed()
            }
        };
        let one = |n: usize| one_for(n, cert_no.clone());
        // Warm up, then sequential attempts, then two at a time.
        one(0).await;
        // Registered and unregistered people alternate, so that both see the same machine load.
        let (mut seq, mut unknown) = (Vec::new(), Vec::new());
        for n in 0..20 {
            seq.push(one(n + 1).await);
            unknown.push(one_for(200 + n, unregistered.clone()).await);
        }
        let mut par = Vec::new();
        for n in 0..10 {
            let (a, b) = tokio::join!(one(100 + 2 * n), one(101 + 2 * n));
            par.push(a);
            par.push(b);
        }
        (seq, par, unknown)
    });
    let (mut seq, mut par, mut unknown) = (seq, par, unknown);
    let b = report("baseline: engine alone, 20 frames", &mut base);
    let s = report("upload of 20 frames → verdict, one at a time", &mut seq);
    let p = report("upload of 20 frames → verdict, two at a time", &mut par);
    let u = report("the same, person not in the registry", &mut unknown);
    println!(
        "ratio to the baseline (p50): one at a time {:.2}, two at a time {:.2}; unregistered / registered {:.2}",
        s / b,
        p / b,
        u / s
    );
    let seal = sealing_per_verification(&jpegs[0]);
    println!(
        "sealing at rest, per verification: {:.1} µs = {:.4} % of the verdict (p50, one at a time); verdict with \
         sealing / without: {:.6}",
        seal * 1e3,
        seal / s * 100.0,
        s / (s - seal)
    );
}

/// What sealing adds to one verification, in ms (median of many): the name, the number and its blind index, the
/// request digest, the kept face image sealed when stored; the subject and the image opened when decided and read.
fn sealing_per_verification(face_jpeg: &[u8]) -> f64 {
    use shiren::domain::seal::{DataKey, KeyRing};
    let ring = KeyRing::new(DataKey::from_bytes(&[7; 32]), vec![]);
    let mut times = Vec::new();
    for i in 0..2000 {
        let id = format!("bench{i}");
        let t = Instant::now();
        let name = ring.seal_text(&format!("verifications.cert_name|{id}"), "欧阳娜娜");
        let no = ring.seal_text(&format!("verifications.cert_no|{id}"), "11010119900307001X");
        let index = ring.index("cert_no", "11010119900307001X");
        let digest = ring.index("request digest", "0123456789abcdef0123456789abcdef");
        let image = ring.seal_bytes(&format!("faces/{id}"), face_jpeg);
        let opened = (
            ring.open_text(&format!("verifications.cert_name|{id}"), &name),
            ring.open_text(&format!("verifications.cert_no|{id}"), &no),
            ring.open_bytes(&format!("faces/{id}"), &image),
        );
        times.push(t.elapsed());
        assert!(opened.0.is_ok() && opened.1.is_ok() && opened.2.is_ok());
        std::hint::black_box((index, digest));
    }
    pct(&mut times, 0.5)
}
