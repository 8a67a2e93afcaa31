//! The operator console on SQLite and PostgreSQL: a real `shiren serve` (JSON logs), apps and scenes made with the
//! CLI, verifications, attempts and billing records written through the crate's `db` functions (the same calls the
//! hosted flow's decision makes), then headless Chromium (tests/browser/console.cjs) logs in, reads the overview
//! and its SVG charts, searches, creates and disables, is refused without a CSRF token, and downloads a month's
//! CSV, which must match the admin API's totals for that month. Also: `/metrics` over HTTP after that traffic, and
//! the JSON log lines (request ids, no names or ID numbers). Screenshots: `$CARGO_TARGET_TMPDIR/console-screens/`.
use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{Backend, Instance};
use serde_json::{json, Value};

const APP_ID: &str = "2021000000000501";
const OTHER_APP: &str = "2021000000000502";
const ADMIN_TOKEN: &str = "console-admin-token-0123456789abcdef";
const SCENE: i64 = 501;
const NAME: &str = "张三丰";
const DAY: i64 = 86_400;

fn create_app(inst: &Instance, app_id: &str, key: usize) {
    let pub_file = inst.file(
        &format!("{app_id}.pem"),
        &common::merchant_key(key).public_key().to_pem(),
    );
    inst.run(&[
        "app",
        "create",
        "--app-id",
        app_id,
        "--name",
        "控制台测试",
        "--public-key",
        pub_file.to_str().unwrap(),
    ]);
}

/// What the seeded data should show.
#[derive(Debug, Default)]
struct Seeded {
    /// A passed verification with a kept face image.
    face_id: String,
    face_order: String,
    today_total: u64,
    today_passed: u64,
    month_total: u64,
    month_passed: u64,
    month_failed: u64,
}

fn checks_json(attempt: u32, passed: bool, reason: Option<&str>, score: f64) -> String {
    json!({
        "attempt": attempt,
        "challenge": ["turn_left", "open_mouth"],
        "frames": 52,
        "fail_reason": reason,
        "decision": {
            "passed": passed,
            "checks": [
                {"name": "identity", "passed": reason != Some("IDENTITY_NOT_FOUND")},
                {"name": "one_face", "passed": true, "score": 0.0, "threshold": 0.2},
                {"name": "action_turn_left", "passed": true, "score": 0.213, "threshold": 0.15},
                {"name": "action_open_mouth", "passed": reason != Some("LIVENESS_ACTION_OPEN_MOUTH"), "score": 0.41, "threshold": 0.3},
                {"name": "face_match", "passed": passed, "score": score, "threshold": 70.0}
            ],
            "best_frame": 4,
            "match_score": score,
            "identity_check": "authority"
        }
    })
    .to_string()
}

/// Verifications over the last 30 days (the same calls the hosted flow makes: insert, open the page, issue an
/// attempt, record its outcome with the verdict and billing record in one transaction).
async fn seed(db: sea_orm::DatabaseConnection, data_dir: &Path) -> Seeded {
    use shiren::db::{attempts, verifications};
    let now = chrono::Utc::now().timestamp();
    let today = now.div_euclid(DAY);
    let mut s = Seeded::default();
    let store = common::store_at(data_dir);
    let reasons = [
        "LIVENESS_ACTION_OPEN_MOUTH",
        "FACE_MISMATCH",
        "LIVENESS_COLOUR_FLASH",
    ];
    for i in 0..40u32 {
        let days_back = i64::from(i % 30);
        // Today's verifications at most a minute old; older ones at noon of their day.
        let t = if days_back == 0 {
            now - 60 + i64::from(i)
        } else {
            (today - days_back) * DAY + 12 * 3600 + i64::from(i)
        };
        let (app, order) = match i {
            38 => (OTHER_APP, "shared-order".to_string()),
            39 => (APP_ID, "shared-order".to_string()),
            _ => (APP_ID, format!("console-order-{i:02}")),
        };
        let biz = json!({
            "outer_order_no": order,
            "biz_code": "FACE",
            "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": NAME, "cert_no": common::test_cert_no()},
            "merchant_config": {"return_url": "https://m.example/back", "face_reserve_strategy": "reserve"},
        })
        .to_string();
        let req = shiren::domain::request::parse_initialize(
            &biz,
            shiren::domain::request::Limits {
                max_contrast_picture_bytes: 1 << 20,
                today: chrono::Utc::now().date_naive(),
            },
        )
        .unwrap();
        let id = format!("cid{i:02}{}", hex::encode(rand::random::<[u8; 12]>()));
        verifications::insert(
            &db,
            verifications::NewVerification {
                keys: &store.keys().ring(),
                certify_id: &id,
                app_id: app,
                request: &req,
                contrast_picture_key: None,
                scene_id: Some(SCENE),
                now: t,
                expires_at: t + 3600,
                api: "alipay",
                callback: None,
            },
        )
        .await
        .unwrap();
        s.month_total += 1;
        if days_back == 0 {
            s.today_total += 1;
        }
        // Every fourth stays undecided.
        if i % 4 == 3 {
            continue;
        }
        assert!(verifications::open_page(
            &db,
            &id,
            shiren::domain::state::State::Initialized,
            shiren::domain::state::State::InProgress,
            &format!("tokenhash-{id}"),
            t,
            t + 600,
        )
        .await
        .unwrap());
        let passed = i % 4 != 2;
        let reason = (!passed).then(|| reasons[(i as usize / 4) % reasons.len()]);
        // Failed ones had a retry first.
        let mut number = 1;
        if !passed {
            let ch = hex::encode(rand::random::<[u8; 16]>());
            attempts::insert(&db, &ch, &id, 1, "{}", t + 1)
                .await
                .unwrap();
            verifications::record_attempt(
                &db,
                attempts::AttemptOutcome {
                    challenge_id: &ch,
                    outcome: "retry",
                    fail_reason: Some("LIVENESS_COLOUR_FLASH"),
                    checks_json: &checks_json(1, false, Some("LIVENESS_COLOUR_FLASH"), 0.0),
                    decision_ms: 700 + i as i32,
                },
                None,
                t + 8,
            )
            .await
            .unwrap();
            number = 2;
        }
        let ch = hex::encode(rand::random::<[u8; 16]>());
        attempts::insert(&db, &ch, &id, number, "{}", t + 10)
            .await
            .unwrap();
        let checks = checks_json(number, passed, reason, if passed { 84.5 } else { 41.25 });
        let face_key = (i == 0).then(|| format!("faces/{id}"));
        if let Some(k) = &face_key {
            let mut img = image::RgbImage::new(96, 120);
            for (x, y, p) in img.enumerate_pixels_mut() {
                *p = image::Rgb([(x * 2) as u8, (y * 2) as u8, 160]);
            }
            let mut jpeg = Vec::new();
            image::DynamicImage::ImageRgb8(img)
                .write_to(
                    &mut std::io::Cursor::new(&mut jpeg),
                    image::ImageFormat::Jpeg,
                )
                .unwrap();
            store.put(k, &jpeg).await.unwrap();
            s.face_id = id.clone();
            s.face_order = order.clone();
        }
        let billing = shiren::billing::billing_event(
            "FACE",
            passed,
            app,
            Some(SCENE),
            &order,
            shiren::billing::Calendar::UTC,
        );
        assert!(verifications::record_attempt(
            &db,
            attempts::AttemptOutcome {
                challenge_id: &ch,
                outcome: if passed { "passed" } else { "failed" },
                fail_reason: reason,
                checks_json: &checks,
                decision_ms: 900 + 10 * i as i32,
            },
            Some(verifications::Verdict {
                certify_id: &id,
                passed,
                fail_reason: reason,
                decision_json: &checks,
                identity_info: "{}",
                material_info: "{}",
                face_image_key: face_key.as_deref(),
                billing,
                callback_code: if passed { "200" } else { "205" },
            }),
            t + 20,
        )
        .await
        .unwrap());
        if passed {
            s.month_passed += 1;
            if days_back == 0 {
                s.today_passed += 1;
            }
        } else {
            s.month_failed += 1;
        }
    }
    s
}

/// A running `shiren serve` whose stderr (the log) goes to a file.
struct Serve {
    child: std::process::Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(inst: &Instance, env: &[(&str, &str)], log: &Path) -> Serve {
    let mut child = inst
        .cmd(&["serve"])
        .env("SHIREN_BIND", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let url = common::listening_address(&mut child);
    Serve { child, url }
}

fn admin_get(url: &str, path: &str) -> Value {
    let resp = reqwest::blocking::Client::new()
        .get(format!("{url}/admin/api{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{path}");
    resp.json().unwrap()
}

/// One real decision on the running server, as a merchant and a person make it: `initialize` and `certify` through
/// the gateway (signed as the SDKs sign), the hosted page, a challenge, and an attempt of faceless frames. The ID
/// number is not registered, so the verdict is a final failure; it goes through the authority lookup, the face
/// engine and the decision, which is where a name or an ID number could reach a log line.
fn real_decision(url: &str) -> Value {
    use base64::Engine;
    use shiren::protocol::alipay::params::Charset;
    use shiren::protocol::alipay::SignType;
    let key = common::merchant_key(0);
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let ts = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let signed = |method: &str, biz: &str| {
        shiren::protocol::alipay::merchant::signed_form(
            key,
            SignType::Rsa2,
            &[
                ("app_id", APP_ID),
                ("method", method),
                ("charset", "utf-8"),
                ("sign_type", "RSA2"),
                ("version", "1.0"),
                ("timestamp", &ts),
                ("biz_content", biz),
            ],
            Charset::Utf8,
        )
    };
    let biz = json!({
        "outer_order_no": "metrics-order-1",
        "biz_code": "FACE",
        "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": NAME, "cert_no": common::test_cert_no()},
        "merchant_config": {"return_url": "https://m.example/back"},
    })
    .to_string();
    let init: Value = client
        .post(format!("{url}/gateway.do"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=utf-8",
        )
        .body(signed("alipay.user.certify.open.initialize", &biz))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let certify_id = init["alipay_user_certify_open_initialize_response"]["certify_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{init}"))
        .to_string();
    let form = signed(
        "alipay.user.certify.open.certify",
        &json!({"certify_id": certify_id}).to_string(),
    );
    let go = client
        .get(format!(
            "{url}/gateway.do?{}",
            String::from_utf8(form).unwrap()
        ))
        .send()
        .unwrap();
    assert_eq!(go.status().as_u16(), 302);
    let page_url = go.headers()["location"].to_str().unwrap().to_string();
    let page = client.get(&page_url).send().unwrap();
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let ch: Value = client
        .post(format!("{page_url}/challenge"))
        .header("cookie", &cookie)
        .json(&common::consent())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        160,
        120,
        image::Rgb([90, 90, 90]),
    ))
    .write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&jpeg);
    let frames: Vec<Value> = (0..24)
        .map(|i| json!({"t_ms": i * 125, "jpeg": b64}))
        .collect();
    let resp = client
        .post(format!("{page_url}/attempt"))
        .header("cookie", &cookie)
        .json(&json!({"challenge_id": ch["challenge_id"], "frames": frames}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let verdict: Value = resp.json().unwrap();
    assert_eq!(verdict["outcome"], "failed", "{verdict}");
    verdict
}

fn console_run(backend: Backend) {
    let started = Instant::now();
    let inst = Instance::new(backend);
    create_app(&inst, APP_ID, 0);
    create_app(&inst, OTHER_APP, 1);
    // Scenes by the CLI, with the liveness setting.
    assert_eq!(
        inst.run(&[
            "scene",
            "create",
            "--app-id",
            APP_ID,
            "--name",
            "开户",
            "--scene-id",
            &SCENE.to_string(),
            "--liveness",
            "strict",
        ])
        .trim(),
        SCENE.to_string()
    );
    let list = inst.run(&["scene", "list"]);
    assert!(list.contains("liveness strict"), "{list}");
    let back = inst.run(&["scene", "update", "501", "--liveness", "default"]);
    assert!(back.contains("liveness standard"), "{back}");
    let bad = inst
        .cmd(&["scene", "update", "501", "--liveness", "paranoid"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("standard or strict"));
    inst.run(&["scene", "update", "501", "--liveness", "strict"]);

    let data_dir = inst.dir.path().join("data");
    let seeded = inst.db.with(|db| seed(db, &data_dir));
    eprintln!(
        "seeded {seeded:?} in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let log = inst.dir.path().join("serve.log");
    let srv = serve(
        &inst,
        &[
            ("SHIREN_ADMIN_TOKEN", ADMIN_TOKEN),
            ("SHIREN_LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ],
        &log,
    );
    // The admin API's scene listing carries the liveness setting.
    let scenes = admin_get(&srv.url, "/scenes");
    assert_eq!(scenes[0]["liveness"], "strict", "{scenes}");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("console-screens")
        .join(format!("{backend:?}").to_lowercase());
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let now = chrono::Utc::now();
    let month = now.format("%Y-%m").to_string();
    let new_app_pem = common::merchant_key(2).public_key().to_pem();
    let input = json!({
        "url": srv.url,
        "token": ADMIN_TOKEN,
        "certifyId": seeded.face_id,
        "order": seeded.face_order,
        "name": NAME,
        "certNo": common::test_cert_no(),
        "month": month,
        "newAppPem": new_app_pem,
        "expect": {
            "todayTotal": seeded.today_total,
            "todayPassed": seeded.today_passed,
            "monthTotal": seeded.month_total,
            "monthPassed": seeded.month_passed,
            "monthFailed": seeded.month_failed,
        },
        "shots": shots,
    });
    // The month's totals before the browser deletes a verification's personal data: deletion keeps the bill.
    let (from, to) = shiren::console::month_days(&month).unwrap();
    let daily_before = admin_get(&srv.url, &format!("/billing/daily?from={from}&to={to}"));
    let one = common::browser();
    let browser_started = Instant::now();
    let out = Command::new("node")
        .arg("tests/browser/console.cjs")
        .arg(input.to_string())
        .env("NODE_PATH", common::sdk_dir().join("node/node_modules"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    drop(one);
    assert!(out.status.success(), "console.cjs failed");
    eprintln!(
        "browser checks took {:.1} s",
        browser_started.elapsed().as_secs_f64()
    );
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();

    // The month's CSV from the console equals the admin API's totals for the month, per app, scene, product and
    // event, and in sum; and its rows are the admin API's export of the same days.
    let daily = admin_get(&srv.url, &format!("/billing/daily?from={from}&to={to}"));
    assert_eq!(
        daily, daily_before,
        "the month's reconciliation is unchanged by the deletion"
    );
    let mut api: BTreeMap<String, u64> = BTreeMap::new();
    for i in daily["items"].as_array().unwrap() {
        *api.entry(format!(
            "{},{},{},{}",
            i["app_id"].as_str().unwrap(),
            i["scene_id"],
            i["product"].as_str().unwrap(),
            i["event"].as_str().unwrap()
        ))
        .or_default() += i["count"].as_u64().unwrap();
    }
    let csv = result["csv"].as_str().unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(shiren::billing::CSV_HEADER));
    let mut from_csv: BTreeMap<String, u64> = BTreeMap::new();
    let mut rows = 0u64;
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        assert!(f[0] >= from.as_str() && f[0] <= to.as_str(), "{l}");
        *from_csv
            .entry(format!("{},{},{},{}", f[2], f[3], f[4], f[5]))
            .or_default() += 1;
        rows += 1;
    }
    assert_eq!(from_csv, api, "CSV totals == admin API totals of {month}");
    assert_eq!(rows, daily["total"].as_u64().unwrap());
    assert_eq!(result["grandTotal"].as_u64().unwrap(), rows);
    assert!(rows > 0, "the month has billable events");
    let api_csv = reqwest::blocking::Client::new()
        .get(format!(
            "{}/admin/api/billing/export.csv?from={from}&to={to}",
            srv.url
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(api_csv, csv, "the console's CSV is the admin API's export");

    // The console's views of personal data and its deletion are in the audit log.
    let audit = admin_get(&srv.url, "/audit?limit=500");
    let entries = audit["items"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "verification.delete" && e["actor"] == "console"),
        "{audit}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "personal_data.view" && e["target"] == seeded.face_id.as_str()),
        "{audit}"
    );

    // A real decision, then /metrics over HTTP after all that traffic.
    let verdict = real_decision(&srv.url);
    eprintln!("real decision: {verdict}");
    let metrics = reqwest::blocking::get(format!("{}/metrics", srv.url))
        .unwrap()
        .text()
        .unwrap();
    let count = |series: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        count(r#"shiren_http_requests_total{method="GET",code="200"}"#) >= 10,
        "{metrics}"
    );
    assert!(
        count(r#"shiren_http_requests_total{method="POST",code="403"}"#) >= 2,
        "the refused CSRF-less POSTs are counted: {metrics}"
    );
    assert!(count(r#"shiren_http_requests_total{method="POST",code="401"}"#) >= 1);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with(r#"shiren_decisions_total{outcome="failed",reason="#)),
        "the decision is counted: {metrics}"
    );
    assert!(count(r#"shiren_decision_stage_seconds_count{stage="total"}"#) >= 1);
    for family in [
        "# TYPE shiren_http_requests_total counter",
        "# TYPE shiren_decisions_total counter",
        "# TYPE shiren_decision_stage_seconds histogram",
        "# TYPE shiren_billing_events_total counter",
    ] {
        assert!(metrics.contains(family), "{family} missing: {metrics}");
    }
    assert!(metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .all(|l| l.starts_with("shiren_")));

    // JSON logs: every line is a JSON object; request lines carry a request id; no names or ID numbers anywhere.
    drop(srv);
    let text = std::fs::read_to_string(&log).unwrap();
    let mut requests = 0;
    let mut ids = std::collections::HashSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        if v["message"] == "request" {
            requests += 1;
            let id = v["span"]["request_id"]
                .as_str()
                .unwrap_or_else(|| panic!("request line without request_id: {line}"));
            assert_eq!(id.len(), 16);
            ids.insert(id.to_string());
            assert!(
                v["status"].is_number() && v["span"]["path"].is_string(),
                "{line}"
            );
        }
    }
    assert!(requests >= 15, "{requests} request lines:\n{text}");
    assert_eq!(ids.len(), requests, "request ids are unique");
    for secret in [NAME, &common::test_cert_no(), ADMIN_TOKEN] {
        assert!(!text.contains(secret), "{secret} leaked into the log");
    }
    assert!(
        text.contains("console login refused"),
        "a refused login is logged"
    );
    eprintln!(
        "console test on {backend:?}: {:.1} s in all; screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    );
}

#[test]
fn console_sqlite() {
    console_run(Backend::Sqlite);
}

#[test]
fn console_postgres() {
    console_run(Backend::Postgres);
}

/// Without an admin token there is no console: the login page says so and nothing logs in.
#[test]
fn no_admin_token_no_console() {
    let inst = Instance::new(Backend::Sqlite);
    let log = inst.dir.path().join("serve.log");
    let srv = serve(&inst, &[("SHIREN_ADMIN_TOKEN", "")], &log);
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(format!("{}/console/login", srv.url))
        .send()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(page
        .text()
        .unwrap()
        .contains("no admin token is configured"));
    for token in ["", "anything"] {
        let r = client
            .post(format!("{}/console/login", srv.url))
            .form(&[("token", token)])
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 403);
        assert!(r.headers().get("set-cookie").is_none());
    }
    let r = client
        .get(format!("{}/console/overview", srv.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let r = client
        .get(format!("{}/console/billing.csv", srv.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

/// A strict scene's challenges ask three actions (an open mouth and two others); a standard scene's two or three.
#[test]
fn strict_scenes_challenge_three_actions() {
    use std::sync::Arc;

    use poem::listener::{Acceptor, Listener, TcpListener};
    let inst = Instance::new(Backend::Sqlite);
    create_app(&inst, APP_ID, 0);
    create_app(&inst, OTHER_APP, 1);
    for (app, id, liveness) in [(APP_ID, "601", "strict"), (OTHER_APP, "602", "standard")] {
        inst.run(&[
            "scene",
            "create",
            "--app-id",
            app,
            "--name",
            liveness,
            "--scene-id",
            id,
            "--liveness",
            liveness,
            "--max-attempts",
            "5",
            "--default",
        ]);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = shiren::config::Config {
            data_dir: inst.dir.path().join("data"),
            database_url: Some(inst.db.url.clone()),
            ..Default::default()
        };
        let db = shiren::open_database(&config).await.unwrap();
        let store = shiren::open_store(&config, &db).await.unwrap();
        let engine = Arc::new(
            shiren::face::engine::OnnxEngine::load(common::installed_models(), Default::default())
                .unwrap(),
        );
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let url = format!("http://{}", acceptor.local_addr()[0].as_socket_addr().unwrap());
        let key = shiren::protocol::alipay::SigningKey::generate().unwrap();
        let ctx = shiren::build_context(config, db.clone(), store, key, url.clone(), engine).unwrap();
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(shiren::build_app(ctx.clone())));
        let client = reqwest::Client::new();
        for (app_id, strict) in [(APP_ID, true), (OTHER_APP, false)] {
            let app = shiren::db::apps::find(&db, app_id).await.unwrap().unwrap();
            let mut sizes = std::collections::BTreeSet::new();
            for n in 0..2 {
                let biz = json!({
                    "outer_order_no": format!("strict-{n}"),
                    "biz_code": "FACE",
                    "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": NAME, "cert_no": common::test_cert_no()},
                    "merchant_config": {"return_url": "https://m.example/back"},
                })
                .to_string();
                let id = ctx.certify.initialize(&app, &biz).await.unwrap();
                let token = ctx
                    .certify
                    .open_page(&app, &json!({"certify_id": id}).to_string())
                    .await
                    .unwrap();
                let page = client
                    .get(format!("{url}/h5/certify/{token}"))
                    .send()
                    .await
                    .unwrap();
                let cookie = page
                    .headers()
                    .get("set-cookie")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|c| c.split(';').next())
                    .unwrap()
                    .to_string();
                // Five attempts each: every challenge is issued (and uses up an attempt).
                for _ in 0..5 {
                    let ch: Value = client
                        .post(format!("{url}/h5/certify/{token}/challenge"))
                        .header("cookie", &cookie)
                        .json(&common::consent())
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let actions = ch["actions"]
                        .as_array()
                        .unwrap_or_else(|| panic!("{ch}"));
                    assert!(actions.iter().any(|a| a == "open_mouth"), "{ch}");
                    sizes.insert(actions.len());
                }
            }
            if strict {
                assert_eq!(sizes, [3].into(), "strict: always three actions");
            } else {
                assert!(sizes.iter().all(|n| (2..=3).contains(n)), "{sizes:?}");
            }
        }
    });
}

#[test]
fn wrong_admin_tokens_are_throttled_per_address() {
    let inst = Instance::new(Backend::Sqlite);
    let log = inst.dir.path().join("serve.log");
    let token = "throttle-test-admin-token-0123456789";
    let srv = serve(&inst, &[("SHIREN_ADMIN_TOKEN", token)], &log);
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = |t: &str| {
        client
            .post(format!("{}/console/login", srv.url))
            .form(&[("token", t)])
            .send()
            .unwrap()
    };
    let admin = |t: &str| {
        client
            .get(format!("{}/admin/api/scenes", srv.url))
            .bearer_auth(t)
            .send()
            .unwrap()
    };
    // A correct token clears the count; then five wrong ones at the console and five at the admin API.
    assert_eq!(login(token).status().as_u16(), 303);
    for i in 0..10 {
        let status = if i % 2 == 0 {
            login(&format!("guess-{i}")).status()
        } else {
            admin(&format!("guess-{i}")).status()
        };
        assert_eq!(status.as_u16(), 401, "attempt {i}");
    }
    // The eleventh attempt is refused before the token is looked at, even the right one, in both places.
    let r = login(token);
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("set-cookie").is_none());
    let wait: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    assert!(r.text().unwrap().contains("Too many wrong tokens"));
    let r = admin(token);
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["code"], "TOO_MANY_FAILURES");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains("guess-"),
        "tokens tried never reach the log"
    );
    assert!(!logged.contains(token));
}
