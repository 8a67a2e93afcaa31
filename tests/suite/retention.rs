//! Kept images are deleted once their retention period is over, and not before.
use std::sync::Arc;

use base64::Engine;
use shiren::authority::local::LocalRegistry;
use shiren::certify::hosted::{HostedService, HostedSettings};
use shiren::certify::service::ServiceSettings;
use shiren::certify::{CertifyService, Clock};
use shiren::db::NewApp;

use crate::common;
use shiren::face::engine::{Face, FaceEngine};
use shiren::protocol::alipay::SigningKey;

struct At(i64);

impl Clock for At {
    fn now(&self) -> i64 {
        self.0
    }
}

/// No face engine is needed to purge.
struct NoEngine;

impl FaceEngine for NoEngine {
    fn analyze(
        &self,
        _: &image::RgbImage,
    ) -> Result<Vec<Face>, shiren::face::runtime::RuntimeError> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn images_are_deleted_after_their_retention() {
    let dir = tempfile::tempdir().unwrap();
    let db = shiren::db::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("t.sqlite").display()
    ))
    .await
    .unwrap();
    shiren::db::migrate(&db).await.unwrap();
    let store = common::store_at(dir.path());
    let now = chrono::Utc::now().timestamp();
    let app = shiren::db::apps::insert(
        &db,
        NewApp {
            app_id: "2021000000000009".into(),
            name: "t".into(),
            public_key: SigningKey::generate().unwrap().public_key(),
            return_url_prefixes: vec![],
        },
        now,
    )
    .await
    .unwrap();
    let certify = CertifyService::new(
        db.clone(),
        store.clone(),
        ServiceSettings {
            certify_ttl_secs: 1800,
            token_ttl_secs: 600,
            max_contrast_picture_bytes: 1 << 20,
            default_scenes: Default::default(),
        },
        Arc::new(At(now)),
    )
    .with_pictures(shiren::certify::reference::PictureEncoder::new(
        Arc::new(NoEngine),
        shiren::face::work::WorkPool::default(),
    ));
    // A real (blank) JPEG: its header is checked and it is decoded once, at initialize.
    let mut picture = Vec::new();
    image::DynamicImage::ImageRgb8(image::RgbImage::new(48, 48))
        .write_to(
            &mut std::io::Cursor::new(&mut picture),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let biz = serde_json::json!({
        "outer_order_no": "r1",
        "biz_code": "FACE",
        "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": "张三",
            "cert_no": shiren::domain::idcard::with_check_char("11010119900307001")},
        "merchant_config": {"return_url": "https://m.example/back"},
        "face_contrast_picture": base64::engine::general_purpose::STANDARD.encode(&picture),
    })
    .to_string();
    let id = certify.initialize(&app, &biz).await.unwrap();
    let key = format!("contrast/{id}");
    assert!(store.get(&key).await.unwrap().is_some());

    // A decided, billed verification beside it: its personal data goes too, its verdict and billing record stay.
    let decided_biz = serde_json::json!({
        "outer_order_no": "r2",
        "biz_code": "FACE",
        "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": "李四",
            "cert_no": shiren::domain::idcard::with_check_char("11010119900307002")},
        "merchant_config": {"return_url": "https://m.example/back"},
    })
    .to_string();
    let decided_req = shiren::domain::request::parse_initialize(
        &decided_biz,
        shiren::domain::request::Limits {
            max_contrast_picture_bytes: 1 << 20,
            today: chrono::Utc::now().date_naive(),
        },
    )
    .unwrap();
    let ring = store.keys().ring();
    shiren::db::verifications::insert_decided(
        &db,
        shiren::db::verifications::NewVerification {
            keys: &ring,
            certify_id: "decided-r2",
            app_id: &app.app_id,
            request: &decided_req,
            contrast_picture_key: None,
            scene_id: None,
            now,
            expires_at: now + 1800,
            api: "alipay",
            callback: None,
        },
        shiren::db::verifications::Verdict {
            certify_id: "decided-r2",
            passed: true,
            fail_reason: None,
            decision_json: "{}",
            identity_info: "{}",
            material_info: "{}",
            face_image_key: None,
            billing: shiren::billing::billing_event(
                "FACE",
                true,
                &app.app_id,
                None,
                "r2",
                shiren::billing::Calendar::UTC,
            ),
            callback_code: "200",
        },
    )
    .await
    .unwrap();
    let billed_before = shiren::db::billing::list(&db, &Default::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(billed_before.len(), 1);

    let hosted_at = |t: i64| {
        HostedService::new(
            db.clone(),
            store.clone(),
            Arc::new(NoEngine),
            Arc::new(LocalRegistry::new(db.clone(), store.clone(), "none".into())),
            HostedSettings {
                retention_days: 30,
                ..HostedSettings::default()
            },
            Arc::new(At(t)),
        )
    };
    // Within the retention period (the verification expired, but 30 days have not passed): kept.
    assert_eq!(
        hosted_at(now + 29 * 86_400)
            .purge_personal_data()
            .await
            .unwrap(),
        0
    );
    assert!(store.get(&key).await.unwrap().is_some());
    // After it: the images, the name and the number are gone; the verification stays, erased.
    assert_eq!(
        hosted_at(now + 31 * 86_400)
            .purge_personal_data()
            .await
            .unwrap(),
        2
    );
    let d = shiren::db::verifications::find(&db, "decided-r2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.passed, d.erased_at.is_some()), (Some(true), true));
    let s2 = shiren::db::verifications::find_subject(&db, &ring, "decided-r2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s2.cert_name.as_str(), s2.cert_no.as_str()), ("", ""));
    let billed_after = shiren::db::billing::list(&db, &Default::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(
        billed_after, billed_before,
        "the billing record stays as it was"
    );
    assert!(store.get(&key).await.unwrap().is_none());
    let v = shiren::db::verifications::find(&db, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(v.erased_at.is_some());
    let subject = shiren::db::verifications::find_subject(&db, &store.keys().ring(), &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (subject.cert_name.as_str(), subject.cert_no.as_str()),
        ("", "")
    );
    assert_eq!(subject.contrast_picture_key, None);
    let audit = shiren::db::audit::newest(&db, None, 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].record.action.as_str(), "retention.purge");
    assert_eq!(
        hosted_at(now + 32 * 86_400)
            .purge_personal_data()
            .await
            .unwrap(),
        0
    );
}
