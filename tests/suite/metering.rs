//! Scenes, metering and reconciliation on SQLite and PostgreSQL: the scene CLI; billing records written with the
//! decisions of a concurrent run of real hosted-flow attempts (one per passed FACE verification, never two);
//! the admin API's listings, paging and totals against the CSV of `shiren billing export`.
use crate::common;

use std::sync::Arc;

use base64::Engine;
use common::{Backend, Instance};
use poem::listener::{Acceptor, Listener, TcpListener};
use serde_json::{json, Value};
use shiren::config::Config;

const APP_ID: &str = "2021000000000005";
const OTHER_APP: &str = "2021000000000006";
const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";

fn cert_no(seq: u32) -> String {
    shiren::domain::idcard::with_check_char(&format!("11010119900307{seq:03}"))
}

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
        "计费测试",
        "--public-key",
        pub_file.to_str().unwrap(),
    ]);
}

fn scene_cli(backend: Backend) {
    let inst = Instance::new(backend);
    create_app(&inst, APP_ID, 0);
    assert_eq!(
        inst.run(&[
            "scene",
            "create",
            "--app-id",
            APP_ID,
            "--name",
            "开户",
            "--scene-id",
            "77"
        ])
        .trim(),
        "77"
    );
    let next = inst.run(&[
        "scene",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "转账",
        "--match-far",
        "1e-4",
    ]);
    assert_eq!(next.trim(), "78", "the next free id follows the largest");
    // Mistakes are refused with a message, not a panic.
    for (args, needle) in [
        (
            vec!["scene", "create", "--app-id", APP_ID, "--name", "开户"],
            "already has a scene",
        ),
        (
            vec![
                "scene",
                "create",
                "--app-id",
                APP_ID,
                "--name",
                "x",
                "--scene-id",
                "77",
            ],
            "already exists",
        ),
        (
            vec!["scene", "create", "--app-id", "nope", "--name", "x"],
            "no app",
        ),
        (
            vec![
                "scene",
                "create",
                "--app-id",
                APP_ID,
                "--name",
                "y",
                "--max-attempts",
                "9",
            ],
            "1 to 5",
        ),
        (
            vec![
                "scene",
                "create",
                "--app-id",
                APP_ID,
                "--name",
                "z",
                "--match-far",
                "0.5",
            ],
            "1e-2",
        ),
        (
            vec!["scene", "update", "99", "--max-attempts", "2"],
            "no scene 99",
        ),
    ] {
        let out = inst.cmd(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let updated = inst.run(&[
        "scene",
        "update",
        "77",
        "--max-attempts",
        "2",
        "--retention-days",
        "7",
        "--keep-photos",
        "no",
        "--default",
    ]);
    assert!(
        updated.contains("attempts 2") && updated.contains("7d") && updated.contains("default"),
        "{updated}"
    );
    let back = inst.run(&["scene", "update", "78", "--match-far", "default"]);
    assert!(back.contains("far (server)"), "{back}");
    let list = inst.run(&["scene", "list", "--app-id", APP_ID]);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.lines().next().unwrap().starts_with("77 "), "{list}");
    inst.db.with(|db| async move {
        let s = shiren::db::scenes::find(&db, 77).await.unwrap().unwrap();
        assert_eq!(
            (
                s.max_attempts,
                s.retention_days,
                s.keep_photos,
                s.is_default
            ),
            (Some(2), Some(7), false, true)
        );
        // The default scene of an app is the one marked so; an app without one gets one on first use, once.
        let d = shiren::db::scenes::default_for_app(&db, APP_ID, "FACE", 0)
            .await
            .unwrap();
        assert_eq!(d.scene_id, 77);
        let (a, b) = tokio::join!(
            shiren::db::scenes::default_for_app(&db, OTHER_APP, "FACE", 0),
            shiren::db::scenes::default_for_app(&db, OTHER_APP, "FACE", 0)
        );
        assert_eq!(a.unwrap().scene_id, b.unwrap().scene_id);
        assert_eq!(
            shiren::db::scenes::list(&db, Some(OTHER_APP))
                .await
                .unwrap()
                .len(),
            1
        );
    });
}

#[test]
fn scene_cli_sqlite() {
    scene_cli(Backend::Sqlite);
}

#[test]
fn scene_cli_postgres() {
    scene_cli(Backend::Postgres);
}

#[test]
fn scene_cli_mariadb() {
    scene_cli(Backend::MariaDb);
}

struct Running {
    ctx: Arc<shiren::AppContext>,
    url: String,
}

async fn start(inst: &Instance, max_attempts: u32) -> Running {
    let mut config = Config {
        data_dir: inst.dir.path().join("data"),
        database_url: Some(inst.db.url.clone()),
        admin_token: Some(ADMIN_TOKEN.into()),
        ..Config::default()
    };
    config.decision.max_attempts = max_attempts;
    config.testing.fixed_challenge = Some(vec!["turn_left".into(), "open_mouth".into()]);
    config.testing.skip_colour_check = true;
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
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let url = format!("http://{addr}");
    let key = shiren::protocol::alipay::SigningKey::generate().unwrap();
    let ctx = shiren::build_context(config, db, store, key, url.clone(), engine).unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(shiren::build_app(ctx.clone())));
    Running { ctx, url }
}

/// Initializes a verification, opens its page, takes a challenge; returns (certify_id, token, cookie, challenge).
async fn begin(
    r: &Running,
    client: &reqwest::Client,
    app: &shiren::db::App,
    order: &str,
    name: &str,
    no: &str,
) -> (String, String, String, Value) {
    let biz = json!({
        "outer_order_no": order,
        "biz_code": "FACE",
        "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": name, "cert_no": no},
        "merchant_config": {"return_url": "https://m.example/back", "face_reserve_strategy": "never"},
    })
    .to_string();
    let id = r.ctx.certify.initialize(app, &biz).await.unwrap();
    let token = r
        .ctx
        .certify
        .open_page(app, &json!({"certify_id": id}).to_string())
        .await
        .unwrap();
    let page = client
        .get(format!("{}/h5/certify/{token}", r.url))
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
    let ch: Value = client
        .post(format!("{}/h5/certify/{token}/challenge", r.url))
        .header("cookie", &cookie)
        .json(&common::consent())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (id, token, cookie, ch)
}

async fn submit(
    r: &Running,
    client: &reqwest::Client,
    token: &str,
    cookie: &str,
    challenge_id: &Value,
    frames: &[Value],
) -> (u16, Value) {
    let body = json!({"challenge_id": challenge_id, "frames": frames}).to_string();
    let resp = client
        .post(format!("{}/h5/certify/{token}/attempt", r.url))
        .header("cookie", cookie)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn admin(r: &Running, client: &reqwest::Client, path: &str) -> (u16, String) {
    let resp = client
        .get(format!("{}/admin/api{path}", r.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn metering_run(backend: Backend) {
    let _heavy = common::heavy();
    let inst = Instance::new(backend);
    let Some((jpegs, photo)) = common::d3_challenge_material(inst.dir.path()) else {
        return;
    };
    create_app(&inst, APP_ID, 0);
    create_app(&inst, OTHER_APP, 1);
    // The other app's verifications belong to a scene the config does not name: its default, made on first use.
    let frames: Vec<Value> = jpegs
        .iter()
        .enumerate()
        .map(|(i, j)| json!({"t_ms": i * 125, "jpeg": base64::engine::general_purpose::STANDARD.encode(j)}))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let month_start = chrono::Utc::now().format("%Y-%m-01").to_string();
    let (passed, api_total, api_per_app) = rt.block_on(async {
        let r = start(&inst, 1).await;
        let db = r.ctx.db.clone();
        let csv = inst.dir.path().join("reg.csv");
        std::fs::write(
            &csv,
            format!(
                "cert_no,cert_name,photo\n{},李四,{}\n",
                cert_no(1),
                photo.display()
            ),
        )
        .unwrap();
        shiren::authority::import::import_csv(
            &db,
            &r.ctx.store,
            common::face_engine(),
            &csv,
            chrono::Utc::now().timestamp(),
            |_, _| {},
        )
        .await
        .unwrap();
        let apps = [
            shiren::db::apps::find(&db, APP_ID).await.unwrap().unwrap(),
            shiren::db::apps::find(&db, OTHER_APP)
                .await
                .unwrap()
                .unwrap(),
        ];
        let client = reqwest::Client::new();
        // 12 verifications, three at a time: the registered person (passes), an unregistered ID number (fails,
        // final) and an unregistered number under another name (fails, final), over two apps.
        let sem = Arc::new(tokio::sync::Semaphore::new(3));
        let mut tasks = Vec::new();
        for n in 0..12u32 {
            let (r2, client, app, frames, sem) = (
                Running {
                    ctx: r.ctx.clone(),
                    url: r.url.clone(),
                },
                client.clone(),
                apps[(n % 2) as usize].clone(),
                frames.clone(),
                sem.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire().await.unwrap();
                let (name, no) = match n % 3 {
                    0 | 1 => ("李四", cert_no(1)),
                    _ => ("王五", cert_no(9)),
                };
                let (id, token, cookie, ch) =
                    begin(&r2, &client, &app, &format!("order-{n}"), name, &no).await;
                // The same attempt twice at once: one decision, the other refused.
                let (a, b) = tokio::join!(
                    submit(&r2, &client, &token, &cookie, &ch["challenge_id"], &frames),
                    submit(&r2, &client, &token, &cookie, &ch["challenge_id"], &frames)
                );
                let mut statuses = [a.0, b.0];
                statuses.sort();
                assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
                let verdict = if a.0 == 200 { a.1 } else { b.1 };
                // And once decided, no further attempt is taken.
                let again = client
                    .post(format!("{}/h5/certify/{token}/challenge", r2.url))
                    .header("cookie", &cookie)
                    .json(&common::consent())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(again.status().as_u16(), 409);
                (id, verdict["outcome"].as_str().unwrap_or("").to_string())
            }));
        }
        let mut passed = 0u64;
        for t in tasks {
            let (id, outcome) = t.await.unwrap();
            let records = shiren::db::billing::for_verification(&db, &id)
                .await
                .unwrap();
            let v = shiren::db::verifications::find(&db, &id)
                .await
                .unwrap()
                .unwrap();
            assert!(v.scene_id.is_some(), "every verification records its scene");
            eprintln!(
                "{id}: {outcome} ({:?}), {} billing record(s)",
                v.fail_reason,
                records.len()
            );
            if v.passed == Some(true) {
                passed += 1;
                assert_eq!(records.len(), 1);
                assert_eq!(
                    (records[0].event.as_str(), records[0].product.as_str()),
                    ("PASS", "FACE")
                );
                assert_eq!(records[0].scene_id, v.scene_id);
            } else {
                assert!(records.is_empty());
            }
        }
        assert!(
            passed >= 4,
            "the registered person should pass (passed {passed} of 8)"
        );
        let all = shiren::db::billing::count(&db, &Default::default())
            .await
            .unwrap();
        assert_eq!(all, passed, "billing count == passed FACE verifications");

        // A verdict cannot be written twice, and a billing record cannot be doubled, even by a direct second try.
        let some = shiren::db::billing::list(&db, &Default::default(), None, 1)
            .await
            .unwrap()
            .remove(0);
        let txn = sea_orm::TransactionTrait::begin(&db).await.unwrap();
        let ev = shiren::billing::billing_event(
            "FACE",
            true,
            &some.app_id,
            some.scene_id,
            &some.outer_order_no,
            shiren::billing::Calendar::UTC,
        )
        .unwrap();
        assert!(!shiren::db::billing::insert(&txn, &some.certify_id, &ev, 0)
            .await
            .unwrap());
        txn.commit().await.unwrap();
        assert_eq!(
            shiren::db::billing::count(&db, &Default::default())
                .await
                .unwrap(),
            passed
        );

        // The admin API: token required, compared exactly.
        let anon = client
            .get(format!("{}/admin/api/billing/daily", r.url))
            .send()
            .await
            .unwrap();
        assert_eq!(anon.status().as_u16(), 401);
        let wrong = client
            .get(format!("{}/admin/api/billing/daily", r.url))
            .bearer_auth("admin-token-for-tests-012345678")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401);
        for bad in [
            "/billing/daily?from=2026-13-01",
            "/billing/records?limit=0",
            "/verifications?outcome=maybe",
            "/billing/records?cursor=x",
            "/verifications?from=2026-11-02&to=2026-11-01",
            "/verifications?product=NOPE",
        ] {
            let (status, body) = admin(&r, &client, bad).await;
            assert_eq!(status, 400, "{bad}: {body}");
            assert!(body.contains("INVALID_PARAMETER"), "{body}");
        }
        let (status, _) = admin(&r, &client, "/verifications/doesnotexist").await;
        assert_eq!(status, 404);

        // Verifications by outcome, paged two at a time.
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, body) = admin(
                &r,
                &client,
                &format!(
                    "/verifications?from={today}&to={today}&outcome=passed&limit=2&cursor={cursor}"
                ),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let page: Value = serde_json::from_str(&body).unwrap();
            for v in page["items"].as_array().unwrap() {
                assert_eq!(v["state"], "passed");
                assert!(
                    !body.contains("李四") && !body.contains(&cert_no(1)),
                    "no personal data in listings"
                );
                seen.push(v["certify_id"].as_str().unwrap().to_string());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
        }
        let mut dedup = seen.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(
            (seen.len() as u64, dedup.len() as u64),
            (passed, passed),
            "paging neither skips nor repeats"
        );
        let (_, failed) = admin(
            &r,
            &client,
            &format!("/verifications?from={today}&to={today}&outcome=failed&limit=500"),
        )
        .await;
        let failed: Value = serde_json::from_str(&failed).unwrap();
        assert_eq!(
            failed["items"].as_array().unwrap().len() as u64,
            12 - passed
        );

        // Billing records paged one at a time add up to the daily totals.
        let mut paged = 0u64;
        let mut cursor = String::new();
        loop {
            let (status, body) = admin(
                &r,
                &client,
                &format!("/billing/records?from={month_start}&to={today}&limit=1&cursor={cursor}"),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let page: Value = serde_json::from_str(&body).unwrap();
            paged += page["items"].as_array().unwrap().len() as u64;
            match page["next_cursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
        }
        assert_eq!(paged, passed);
        let (_, daily) = admin(
            &r,
            &client,
            &format!("/billing/daily?from={month_start}&to={today}"),
        )
        .await;
        let daily: Value = serde_json::from_str(&daily).unwrap();
        let mut per_app = std::collections::BTreeMap::new();
        for i in daily["items"].as_array().unwrap() {
            *per_app
                .entry(i["app_id"].as_str().unwrap().to_string())
                .or_insert(0u64) += i["count"].as_u64().unwrap();
        }
        let (_, scenes) = admin(&r, &client, "/scenes").await;
        let scenes: Value = serde_json::from_str(&scenes).unwrap();
        assert_eq!(
            scenes.as_array().unwrap().len(),
            2,
            "one default scene per app, made on first use"
        );
        // The CSV download of the API equals the CLI's export.
        let (status, api_csv) = admin(
            &r,
            &client,
            &format!("/billing/export.csv?from={month_start}&to={today}"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(api_csv.lines().count() as u64, passed + 1);
        (passed, daily["total"].as_u64().unwrap(), per_app)
    });
    drop(rt);
    assert_eq!(api_total, passed);
    // The CSV of the month (CLI) matches the API's totals, overall and per app.
    let csv = inst.run(&["billing", "export", "--from", &month_start, "--to", &today]);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(shiren::billing::CSV_HEADER));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len() as u64, api_total);
    for (app, n) in &api_per_app {
        assert_eq!(
            rows.iter().filter(|r| r[2] == app.as_str()).count() as u64,
            *n,
            "{app}"
        );
    }
    let one_app = inst.run(&[
        "billing",
        "export",
        "--from",
        &month_start,
        "--to",
        &today,
        "--app",
        APP_ID,
    ]);
    assert_eq!(
        one_app.lines().count() as u64 - 1,
        api_per_app.get(APP_ID).copied().unwrap_or(0)
    );
    let out = inst
        .cmd(&["billing", "export", "--from", "2026-11-31", "--to", &today])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--from"));
}

#[test]
fn metering_sqlite() {
    metering_run(Backend::Sqlite);
}

#[test]
fn metering_postgres() {
    metering_run(Backend::Postgres);
}
