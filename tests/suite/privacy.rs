//! Personal data at rest: a server with the wrong data key refuses to start; a key rotation while verifications are
//! being created loses nothing and leaves every value under the new key; deletion on instruction (admin API, CLI)
//! keeps the verdict and the billing record and is audited; `shiren audit verify` finds an edited entry.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{json, Value};
use shiren::protocol::alipay::merchant::signed_form;
use shiren::protocol::alipay::params::Charset;
use shiren::protocol::alipay::SignType;

use crate::common::{self, Backend, Instance};

const APP_ID: &str = "2021000000000131";
const ADMIN_TOKEN: &str = "privacy-test-admin-token-0123456789abcdef";
const NAME: &str = "欧阳娜娜";

fn setup(backend: Backend) -> Instance {
    let inst = Instance::new(backend);
    let key = inst.file(
        "merchant.pem",
        &common::merchant_key(0).public_key().to_pem(),
    );
    inst.run(&[
        "app",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "隐私测试",
        "--public-key",
        key.to_str().unwrap(),
    ]);
    inst
}

/// A signed `initialize`, with a contrast picture when given; the certify_id, or the error node.
fn initialize(
    client: &reqwest::blocking::Client,
    addr: &str,
    order: &str,
    picture: Option<&[u8]>,
) -> Result<String, Value> {
    let mut biz = json!({
        "outer_order_no": order,
        "biz_code": "FACE",
        "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": NAME,
                           "cert_no": common::test_cert_no()},
        "merchant_config": {"return_url": "https://m.example/back", "face_reserve_strategy": "reserve"},
    });
    if let Some(p) = picture {
        biz["face_contrast_picture"] = json!(base64::engine::general_purpose::STANDARD.encode(p));
    }
    let ts = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let form = signed_form(
        common::merchant_key(0),
        SignType::Rsa2,
        &[
            ("app_id", APP_ID),
            ("method", "alipay.user.certify.open.initialize"),
            ("charset", "utf-8"),
            ("sign_type", "RSA2"),
            ("version", "1.0"),
            ("timestamp", &ts),
            ("biz_content", &biz.to_string()),
        ],
        Charset::Utf8,
    );
    let v: Value = client
        .post(format!("{addr}/gateway.do"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=utf-8",
        )
        .body(form)
        .send()
        .map_err(|e| json!(e.to_string()))?
        .json()
        .map_err(|e| json!(e.to_string()))?;
    match v["alipay_user_certify_open_initialize_response"]["certify_id"].as_str() {
        Some(id) => Ok(id.to_string()),
        None => Err(v),
    }
}

/// The keys of the instance's key file now.
fn ring(inst: &Instance) -> shiren::domain::seal::KeyRing {
    inst.store().keys().ring()
}

#[test]
fn a_server_with_the_wrong_data_key_refuses_to_start() {
    let inst = setup(Backend::Sqlite);
    let out = inst
        .cmd(&["serve"])
        .env("SHIREN_BIND", "127.0.0.1:0")
        .env("SHIREN_DATA_KEY", "ab".repeat(32))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("is not the one the database's personal data is sealed under"),
        "{stderr}"
    );
    assert!(stderr.contains(ring(&inst).current().id()), "{stderr}");
    // The key of the key file is the right one.
    assert!(inst
        .run(&["keys", "status"])
        .contains(ring(&inst).current().id()));
}

#[test]
fn rotation_while_verifications_are_created_loses_nothing() {
    let inst = setup(Backend::Sqlite);
    // A merchant's picture as merchants send them: a face photo at 480 px.
    let picture = common::shared_data("faces/img1.jpg").map(|p| {
        let img = image::open(p).unwrap().thumbnail(480, 480);
        let mut jpeg = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
        jpeg
    });
    // Many verifications of one person in a few seconds: over the per-number limits, which are not tested here.
    let server = inst.serve_with(
        "127.0.0.1:0".parse().unwrap(),
        &[("SHIREN_LIMITS_ENABLED", "0")],
    );
    let client = reqwest::blocking::Client::new();
    // Some verifications before the rotation, kept pictures among them.
    let mut created: Vec<String> = (0..6)
        .map(|i| {
            let pic = if i % 2 == 0 { picture.as_deref() } else { None };
            initialize(&client, &server.addr, &format!("before-{i}"), pic).unwrap()
        })
        .collect();
    let old = ring(&inst);
    let during = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (during, stop, addr) = (during.clone(), stop.clone(), server.addr.clone());
        let picture = picture.clone();
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let pic = if i % 3 == 0 { picture.as_deref() } else { None };
                match initialize(&client, &addr, &format!("during-{i}"), pic) {
                    Ok(id) => during.lock().unwrap().push(id),
                    Err(e) => panic!("initialize during the rotation failed: {e}"),
                }
                i += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let out = inst.cmd(&["keys", "rotate"]).output().unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    println!("{stderr}{}", String::from_utf8_lossy(&out.stdout));
    let during = during.lock().unwrap().clone();
    assert!(
        during.len() >= 5,
        "only {} verifications during the rotation",
        during.len()
    );
    created.extend(during);
    // A few more after it, from the running server (which has loaded the new key).
    for i in 0..3 {
        created.push(initialize(&client, &server.addr, &format!("after-{i}"), None).unwrap());
    }

    let new = ring(&inst);
    assert_eq!(
        new.ids().len(),
        1,
        "the old key is dropped from the key file"
    );
    assert_ne!(new.current().id(), old.current().id());
    let status = inst.run(&["keys", "status"]);
    assert!(
        status.contains("0 verification(s), 0 identit(ies)"),
        "{status}"
    );
    // Every value opens with the new key alone, and none with the old one.
    let store = inst.store();
    let (opened, pictures) = inst.db.with(|db| {
        let (created, new, old, store) = (created.clone(), new.clone(), old.clone(), store.clone());
        async move {
            let mut pictures = 0;
            for id in &created {
                let s = shiren::db::verifications::find_subject(&db, &new, id)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(s.cert_name, NAME);
                assert_eq!(s.cert_no, common::test_cert_no());
                assert!(shiren::db::verifications::find_subject(&db, &old, id)
                    .await
                    .is_err());
                if let Some(k) = s.contrast_picture_key {
                    assert!(!store.get(&k).await.unwrap().unwrap().is_empty());
                    pictures += 1;
                }
            }
            (created.len(), pictures)
        }
    });
    println!("{opened} verifications ({pictures} with a kept picture) open under the new key only");
    assert_eq!(opened, created.len());
    assert_eq!(
        created
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        created.len()
    );
    // The rotation is in the audit log, whose chain holds until an entry is edited.
    let audit = inst.run(&["audit", "list"]);
    assert!(audit.contains("keys.rotate"), "{audit}");
    assert!(inst.run(&["audit", "verify"]).contains("intact"));
    inst.db.with(|db| async move {
        use sea_orm::ConnectionTrait;
        db.execute_unprepared("UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 1")
            .await
            .unwrap();
    });
    let out = inst.cmd(&["audit", "verify"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("entry 1 was altered"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn deletion_on_instruction_keeps_the_verdict_and_the_bill() {
    let inst = setup(Backend::Postgres);
    let mut server = inst.serve_with(
        "127.0.0.1:0".parse().unwrap(),
        &[("SHIREN_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    let client = reqwest::blocking::Client::new();
    let a = initialize(&client, &server.addr, "delete-a", None).unwrap();
    let b = initialize(&client, &server.addr, "delete-b", None).unwrap();
    let admin = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{}/admin/api{path}", server.addr))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap()
    };
    let r = admin(reqwest::Method::DELETE, &format!("/verifications/{a}"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["deleted"], true);
    let r = admin(reqwest::Method::DELETE, &format!("/verifications/{a}"));
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().unwrap()["code"], "ALREADY_DELETED");
    assert_eq!(
        admin(reqwest::Method::DELETE, "/verifications/nosuchid").status(),
        404
    );
    // The verification itself stays, ended.
    let v: Value = admin(reqwest::Method::GET, &format!("/verifications/{a}"))
        .json()
        .unwrap();
    assert_eq!(v["certify_id"], a.as_str());
    assert_eq!(v["state"], "expired");
    // The CLI deletes too.
    assert!(inst
        .run(&["verification", "delete", &b])
        .contains("deleted the personal data"));
    let out = inst.cmd(&["verification", "delete", &b]).output().unwrap();
    assert!(!out.status.success());
    let page: Value = admin(reqwest::Method::GET, "/audit?limit=10")
        .json()
        .unwrap();
    let items = page["items"].as_array().unwrap();
    let actions: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("cli", "verification.delete", b.as_str()),
            ("admin-api", "verification.delete", a.as_str()),
        ]
    );
    assert_eq!(items[0]["prev_hash"], items[1]["hash"]);
    server.kill();
    let scanned = inst.assert_nothing_personal_in_clear(&[NAME]);
    println!("nothing personal in clear in {scanned} bytes");
    assert!(inst.run(&["audit", "verify"]).contains("intact: 2 entries"));
}
