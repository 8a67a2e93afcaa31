//! The cloud API's hosted products (ID_PRO, PV_FV, LR_FR) end to end: the official Node SDK
//! (@alicloud/cloudauth20190307) calls InitFaceVerify, the CertifyUrl opens in real headless Chromium with a camera
//! fed from a file, the real face engine decides, DescribeFaceVerify reads the verdict, and the merchant's callback
//! receiver hears about it. Needs `../shared/data`; without it the test says so and does nothing.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::{Backend, Instance};
use serde_json::{json, Value};

use crate::common;

const APP_ID: &str = "2021000000000077";
const RETURN: &str = "http://127.0.0.1:9/back/";
const Y4M_SCALE: &str = "scale='min(640,iw)':'min(480,ih)':force_original_aspect_ratio=decrease:force_divisible_by=2,format=yuv420p";
const TEST_SETTINGS: [(&str, &str); 5] = [
    ("SHIREN_TEST_FIXED_CHALLENGE", "turn_left,open_mouth"),
    ("SHIREN_TEST_SKIP_COLOUR_CHECK", "1"),
    // The merchant's callback receiver is a plain-http server on loopback.
    ("SHIREN_TEST_ALLOW_LOOPBACK_URLS", "1"),
    ("SHIREN_TEST_ALLOW_HTTP_CALLBACKS", "1"),
    ("SHIREN_CALLBACK_BACKOFF_INITIAL_MS", "300"),
];

struct Material {
    /// d3: a woman turns her head to her left, then opens her mouth wide.
    d3_clip: PathBuf,
    /// A frame of d3 (her reference photo).
    d3_photo: PathBuf,
    /// Another person (the man of d18).
    other_photo: PathBuf,
}

fn material(dir: &Path) -> Option<Material> {
    let d3 = common::shared_data("videos/d3.mp4")?;
    let m = Material {
        d3_clip: dir.join("d3.y4m"),
        d3_photo: dir.join("d3_photo.jpg"),
        other_photo: common::shared_data("videos/d19.jpg")?,
    };
    common::ffmpeg(&[
        "-ss",
        "4.0",
        "-t",
        "7.8",
        "-i",
        d3.to_str().unwrap(),
        "-an",
        "-vf",
        Y4M_SCALE,
        "-f",
        "yuv4mpegpipe",
        m.d3_clip.to_str().unwrap(),
    ]);
    common::ffmpeg(&[
        "-ss",
        "1.5",
        "-i",
        d3.to_str().unwrap(),
        "-frames:v",
        "1",
        "-q:v",
        "3",
        m.d3_photo.to_str().unwrap(),
    ]);
    Some(m)
}

/// A merchant's callback receiver on loopback: answers 500 to the first `fail_first` calls, then 200; records every
/// query string it was called with.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

fn receiver(fail_first: usize) -> Receiver {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/shiren/callback?merchant=1",
        listener.local_addr().unwrap()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let calls = {
                let mut l = log.lock().unwrap();
                l.push(target);
                l.len()
            };
            let status = if calls <= fail_first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = s.write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .as_bytes(),
            );
        }
    });
    Receiver { url, seen }
}

struct Setup {
    inst: Instance,
    key_id: String,
    key_secret: String,
    scenes: std::collections::HashMap<&'static str, i64>,
    no_a: String,
}

fn setup(backend: Backend, m: &Material) -> Setup {
    let inst = Instance::new(backend);
    let pub_file = inst.file(
        "app_public.pem",
        &common::merchant_key(0).public_key().to_pem(),
    );
    inst.run(&[
        "app",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "Cloud merchant",
        "--public-key",
        pub_file.to_str().unwrap(),
        "--return-url",
        RETURN,
    ]);
    let no_a = shiren::domain::idcard::with_check_char("11010119900307021");
    std::fs::copy(&m.d3_photo, inst.dir.path().join("a.jpg")).unwrap();
    let csv = inst.file(
        "registry.csv",
        &format!("cert_no,cert_name,photo\n{no_a},李四,a.jpg\n"),
    );
    inst.run(&["identity", "import", "--csv", csv.to_str().unwrap()]);
    let mut scenes = std::collections::HashMap::new();
    for (i, product) in ["ID_PRO", "PV_FV", "LR_FR"].into_iter().enumerate() {
        let id = 3000 + i as i64;
        let out = inst.run(&[
            "scene",
            "create",
            "--app-id",
            APP_ID,
            "--name",
            &format!("{product} scene"),
            "--scene-id",
            &id.to_string(),
            "--product",
            product,
        ]);
        assert!(out.contains(&id.to_string()), "{out}");
        scenes.insert(product, id);
    }
    let keys = inst.run(&["app", "access-key", "create", APP_ID]);
    let field = |name: &str| {
        keys.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{name} in {keys}"))
    };
    Setup {
        key_id: field("AccessKeyId:"),
        key_secret: field("AccessKeySecret:"),
        inst,
        scenes,
        no_a,
    }
}

/// Runs one case through `tests/browser/cloud_case.cjs`; returns its result JSON.
fn case(s: &Setup, server: &common::Server, name: &str, product: &str, input: Value) -> Value {
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cloud-hosted-screens")
        .join(name);
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let url = server.public_url();
    let mut o = json!({
        "endpoint": url.trim_start_matches("http://"),
        "keyId": s.key_id,
        "keySecret": s.key_secret,
        "sceneId": s.scenes[product],
        "productCode": product,
        "order": format!("{name}-{}", hex::encode(rand::random::<[u8; 4]>())),
        "returnUrl": format!("{RETURN}done"),
    });
    for (k, v) in input.as_object().unwrap() {
        o[k] = v.clone();
    }
    if let Some(page) = o.get_mut("page").filter(|p| p.is_object()) {
        page["returnPrefix"] = json!(RETURN);
        page["screenshots"] = json!(shots);
        page["log"] = json!(true);
        page["timeoutMs"] = json!(150_000);
    }
    let _one = o
        .get("page")
        .is_some_and(Value::is_object)
        .then(common::browser);
    let out = Command::new("node")
        .arg("tests/browser/cloud_case.cjs")
        .arg(o.to_string())
        .env("NODE_PATH", common::sdk_dir().join("node/node_modules"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("--- {name} ---\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "case {name} failed:\n{stdout}");
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    println!("{name}: {v}");
    v
}

fn material_info(v: &Value) -> Value {
    serde_json::from_str(
        v.pointer("/describe/materialInfo")
            .and_then(Value::as_str)
            .unwrap(),
    )
    .unwrap()
}

/// Waits up to `secs` for the receiver to have seen `n` calls.
fn wait_for_calls(r: &Receiver, n: usize, secs: u64) -> Vec<String> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let seen = r.seen.lock().unwrap().clone();
        if seen.len() >= n || std::time::Instant::now() > until {
            return seen;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn suite(backend: Backend, full: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(m) = material(tmp.path()) else {
        println!(
            "../shared/data is not there: the cloud hosted-flow tests need its videos; skipped"
        );
        return;
    };
    let s = setup(backend, &m);
    let server = s
        .inst
        .serve_with("127.0.0.1:0".parse().unwrap(), &TEST_SETTINGS);
    let cb = receiver(2);

    // ID_PRO: the registry's person, with a callback that fails twice before it is accepted.
    let v = case(
        &s,
        &server,
        "id-pro",
        "ID_PRO",
        json!({
            "certName": "李四", "certNo": s.no_a, "page": {"y4m": m.d3_clip},
            "callbackUrl": cb.url, "callbackToken": "tok-123",
        }),
    );
    assert_eq!(v.pointer("/init/code"), Some(&json!("200")), "{v}");
    assert_eq!(v.pointer("/describe/code"), Some(&json!("200")), "{v}");
    assert_eq!(v.pointer("/describe/passed"), Some(&json!("T")), "{v}");
    assert_eq!(v.pointer("/describe/subCode"), Some(&json!("200")), "{v}");
    let mi = material_info(&v);
    assert_eq!(mi["faceAttack"], "F");
    assert!(
        mi["facialPictureFront"]["verifyScore"].as_f64().unwrap() >= 70.0,
        "{mi}"
    );
    // The kept face image (返照) is a link valid for 15 minutes; a tampered link gets nothing.
    let link = mi["facialPictureFront"]["pictureUrl"]
        .as_str()
        .expect("a picture link")
        .to_string();
    let jpeg = reqwest::blocking::get(&link).unwrap();
    assert_eq!(jpeg.status(), 200);
    assert_eq!(&jpeg.bytes().unwrap()[..3], b"\xff\xd8\xff", "a JPEG");
    let tampered = link.replace("token=", "token=A");
    assert_eq!(reqwest::blocking::get(&tampered).unwrap().status(), 404);
    let certify_id = v
        .pointer("/init/certifyId")
        .and_then(Value::as_str)
        .unwrap();
    let calls = wait_for_calls(&cb, 3, 60);
    println!("callback calls: {calls:?}");
    assert_eq!(calls.len(), 3, "two failures, then delivered: {calls:?}");
    for c in &calls {
        assert!(c.starts_with("/shiren/callback?merchant=1&"), "{c}");
        assert!(c.contains(&format!("certifyId={certify_id}")), "{c}");
        assert!(c.contains("passed=200"), "{c}");
        assert!(c.contains("callbackToken=tok-123"), "{c}");
    }

    // The page and the server's flow do not depend on the database: the PV_FV cases run on SQLite only (PostgreSQL
    // runs ID_PRO and LR_FR, and every query of PV_FV runs on both in cloud_actions).
    if full {
        // PV_FV: the merchant's own picture of her is the reference; nobody is named.
        let v = case(
            &s,
            &server,
            "pv-fv",
            "PV_FV",
            json!({"contrastPicture": m.d3_photo, "page": {"y4m": m.d3_clip}}),
        );
        assert_eq!(v.pointer("/describe/passed"), Some(&json!("T")), "{v}");
        assert!(
            material_info(&v)["facialPictureFront"]["verifyScore"]
                .as_f64()
                .unwrap()
                >= 70.0
        );

        // PV_FV with a picture of another person: liveness passes, the match fails (SubCode 204).
        let v = case(
            &s,
            &server,
            "pv-fv-other",
            "PV_FV",
            json!({"contrastPicture": m.other_photo, "page": {"y4m": m.d3_clip}}),
        );
        assert_eq!(v.pointer("/describe/passed"), Some(&json!("F")), "{v}");
        assert_eq!(v.pointer("/describe/subCode"), Some(&json!("204")), "{v}");
    }

    // LR_FR: liveness alone, without a ReturnUrl (the page shows the result and stays).
    let v = case(
        &s,
        &server,
        "lr-fr",
        "LR_FR",
        json!({"returnUrl": null, "page": {"y4m": m.d3_clip}}),
    );
    assert_eq!(v.pointer("/describe/passed"), Some(&json!("T")), "{v}");
    assert_eq!(v.pointer("/describe/subCode"), Some(&json!("200")), "{v}");
    assert!(material_info(&v)["facialPictureFront"]
        .get("verifyScore")
        .is_none());

    // The consent text matches the product: only ID_PRO speaks of a name and an ID number. Each verification
    // records the version the person agreed to.
    let lr_text = v
        .pointer("/page/consentText")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    assert!(!lr_text.is_empty(), "{v}");
    for word in ["姓名", "身份证", "name", "ID number"] {
        assert!(
            !lr_text.contains(word),
            "LR_FR's consent mentions {word}: {lr_text}"
        );
    }
    let consents = s.inst.db.with(|db| async move {
        use sea_orm::{ConnectionTrait, Statement};
        db.query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT biz_code, consent_version FROM verifications WHERE consent_at IS NOT NULL"
                .to_string(),
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.try_get::<String>("", "biz_code").unwrap(),
                r.try_get::<String>("", "consent_version").unwrap(),
            )
        })
        .collect::<Vec<_>>()
    });
    let products: &[(&str, &str)] = if full {
        &[
            ("ID_PRO", "identity"),
            ("PV_FV", "picture"),
            ("LR_FR", "liveness"),
        ]
    } else {
        &[("ID_PRO", "identity"), ("LR_FR", "liveness")]
    };
    for &(product, version) in products {
        let expected = format!("{}.{version}", shiren::domain::consent::TEXTS_OF);
        assert!(
            consents.iter().any(|(p, v)| p == product && *v == expected),
            "{product}: {consents:?}"
        );
    }

    // Refusals at InitFaceVerify are business errors with the documented codes.
    let v = case(
        &s,
        &server,
        "pv-fv-no-picture",
        "PV_FV",
        json!({"page": null}),
    );
    assert_eq!(v.pointer("/init/code"), Some(&json!("400")), "{v}");
    let v = case(
        &s,
        &server,
        "id-pro-bad-number",
        "ID_PRO",
        json!({"certName": "李四", "certNo": "110101199003070211", "page": null}),
    );
    assert_eq!(v.pointer("/init/code"), Some(&json!("401")), "{v}");

    // Every verdict was billed once, per call.
    let billed = s.inst.db.with(|db| async move {
        shiren::db::billing::count(&db, &Default::default())
            .await
            .unwrap()
    });
    assert_eq!(
        billed,
        if full { 4 } else { 2 },
        "ID_PRO, PV_FV (twice) and LR_FR are billed per verdict"
    );
}

#[test]
fn cloud_hosted_products_in_chromium_against_sqlite() {
    suite(Backend::Sqlite, true);
}

#[test]
fn cloud_hosted_products_in_chromium_against_postgres() {
    suite(Backend::Postgres, false);
}
