//! The server is killed with SIGKILL during a stream of decisions and restarted: every verification is then either
//! decided with exactly one billing record (passed FACE) or none (failed), or undecided with none; the undecided
//! ones are decided after the restart, still billed once.
use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Backend, Instance};
use serde_json::{json, Value};

const APP_ID: &str = "2021000000000007";

/// The frames of d3 performing turn-left then open-mouth in the challenge's windows, as the page uploads them.
fn frames(dir: &Path) -> Option<Vec<Value>> {
    let (jpegs, _) = common::d3_challenge_material(dir)?;
    Some(
        jpegs
            .iter()
            .enumerate()
            .map(|(i, j)| json!({"t_ms": i * 125, "jpeg": base64::engine::general_purpose::STANDARD.encode(j)}))
            .collect(),
    )
}

struct Open {
    certify_id: String,
    token: String,
    cookie: String,
    challenge_id: Value,
}

async fn attempt(client: &reqwest::Client, base: &str, o: &Open, frames: &[Value]) -> Option<u16> {
    let body = json!({"challenge_id": o.challenge_id, "frames": frames}).to_string();
    client
        .post(format!("{base}/h5/certify/{}/attempt", o.token))
        .header("cookie", &o.cookie)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// (decided, passed, billing records) of each verification; panics when the invariant does not hold.
async fn check(db: &sea_orm::DatabaseConnection, opens: &[Open]) -> (usize, usize) {
    let (mut decided, mut passed) = (0, 0);
    for o in opens {
        let v = shiren::db::verifications::find(db, &o.certify_id)
            .await
            .unwrap()
            .unwrap();
        let records = shiren::db::billing::for_verification(db, &o.certify_id)
            .await
            .unwrap();
        match v.passed {
            Some(true) => {
                assert_eq!(
                    records.len(),
                    1,
                    "a passed verification has exactly one billing record"
                );
                passed += 1;
                decided += 1;
            }
            Some(false) => {
                assert!(records.is_empty());
                decided += 1;
            }
            None => assert!(
                records.is_empty(),
                "an undecided verification is not billed"
            ),
        }
        let attempts = shiren::db::attempts::list(db, &o.certify_id).await.unwrap();
        if v.decided_at.is_some() {
            assert!(
                attempts.iter().any(|a| a.submitted_at.is_some()),
                "verdict and attempt are written together"
            );
        }
    }
    let all = shiren::db::billing::count(db, &Default::default())
        .await
        .unwrap();
    assert_eq!(all as usize, passed);
    (decided, passed)
}

fn killed_during_decisions(backend: Backend) {
    let _heavy = common::heavy();
    let inst = Instance::new(backend);
    let Some(frames) = frames(inst.dir.path()) else {
        return;
    };
    let pub_file = inst.file("app.pem", &common::merchant_key(0).public_key().to_pem());
    inst.run(&[
        "app",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "fault",
        "--public-key",
        pub_file.to_str().unwrap(),
    ]);
    let no = shiren::domain::idcard::with_check_char("11010119900307001");
    let csv = inst.file(
        "reg.csv",
        &format!("cert_no,cert_name,photo\n{no},李四,a.png\n"),
    );
    inst.run(&["identity", "import", "--csv", csv.to_str().unwrap()]);
    let env = [
        ("SHIREN_TEST_FIXED_CHALLENGE", "turn_left,open_mouth"),
        ("SHIREN_TEST_SKIP_COLOUR_CHECK", "1"),
        ("SHIREN_MAX_ATTEMPTS", "2"),
    ];
    let bind = "127.0.0.1:0".parse().unwrap();
    let mut server = inst.serve_with(bind, &env);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = shiren::db::connect(&inst.db.url).await.unwrap();
        let store = inst.store();
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
        let client = reqwest::Client::new();
        let base = server.addr.clone();
        let mut opens = Vec::new();
        for n in 0..9 {
            // Two of three are the registered person (pass), one an unknown ID number (fails).
            let cert = if n % 3 == 2 { shiren::domain::idcard::with_check_char("11010119900307009") } else { no.clone() };
            let biz = json!({
                "outer_order_no": format!("fault-{n}"),
                "biz_code": "FACE",
                "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": "李四", "cert_no": cert},
                "merchant_config": {"return_url": "https://m.example/back", "face_reserve_strategy": "never"},
            })
            .to_string();
            let certify_id = certify.initialize(&app, &biz).await.unwrap();
            let token = certify.open_page(&app, &json!({"certify_id": certify_id}).to_string()).await.unwrap();
            let page = client.get(format!("{base}/h5/certify/{token}")).send().await.unwrap();
            let cookie = page.headers().get("set-cookie").and_then(|v| v.to_str().ok()).and_then(|c| c.split(';').next()).unwrap().to_string();
            let ch: Value = client
                .post(format!("{base}/h5/certify/{token}/challenge"))
                .header("cookie", &cookie)
                .json(&common::consent())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            opens.push(Open { certify_id, token, cookie, challenge_id: ch["challenge_id"].clone() });
        }
        let opens = Arc::new(opens);
        let frames = Arc::new(frames);
        // A stream of decisions, three at a time; the server is killed once the first verdicts are in.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sem = Arc::new(tokio::sync::Semaphore::new(3));
        for i in 0..opens.len() {
            let (client, base, opens, frames, sem, tx) = (client.clone(), base.clone(), opens.clone(), frames.clone(), sem.clone(), tx.clone());
            tokio::spawn(async move {
                let _p = sem.acquire().await.unwrap();
                let r = attempt(&client, &base, &opens[i], &frames).await;
                let _ = tx.send(r);
            });
        }
        drop(tx);
        let started = Instant::now();
        let mut answered = 0;
        while let Some(r) = rx.recv().await {
            if r == Some(200) {
                answered += 1;
            }
            if answered >= 2 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(300), "no verdicts");
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        server.kill(); // SIGKILL
        let (decided, passed) = check(&db, &opens).await;
        eprintln!("after SIGKILL: {decided} of {} decided, {passed} passed and billed", opens.len());
        assert!(decided < opens.len(), "the kill should interrupt the stream");

        // Restarted: the undecided verifications are decided now, each at most once.
        let server2 = inst.serve_with(bind, &env);
        for o in opens.iter() {
            let v = shiren::db::verifications::find(&db, &o.certify_id).await.unwrap().unwrap();
            if v.decided_at.is_some() {
                let status = attempt(&client, &server2.addr, o, &frames).await;
                assert_eq!(status, Some(409), "a decided verification is not decided again");
                continue;
            }
            // An interrupted attempt is lost, not half-written: the next challenge decides.
            let ch: Value = client
                .post(format!("{}/h5/certify/{}/challenge", server2.addr, o.token))
                .header("cookie", &o.cookie)
                .json(&common::consent())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let next = Open { certify_id: o.certify_id.clone(), token: o.token.clone(), cookie: o.cookie.clone(), challenge_id: ch["challenge_id"].clone() };
            assert_eq!(attempt(&client, &server2.addr, &next, &frames).await, Some(200), "{ch}");
        }
        let (decided, passed) = check(&db, &opens).await;
        eprintln!("after restart: {decided} decided, {passed} passed and billed");
        assert_eq!(decided, opens.len());
        assert!(passed >= 3, "the registered person passes");
        drop(server2);
    });
}

#[test]
fn sigkill_during_decisions_sqlite() {
    killed_during_decisions(Backend::Sqlite);
}

#[test]
fn sigkill_during_decisions_postgres() {
    killed_during_decisions(Backend::Postgres);
}
