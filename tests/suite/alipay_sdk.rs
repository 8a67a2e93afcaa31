//! The Alipay-style gateway driven by the official SDKs (npm alipay-sdk 4.14.0, PyPI alipay-sdk-python 3.7.1411)
//! against a real `shiren serve`, on SQLite and on PostgreSQL; plus the raw-protocol cases SDKs cannot produce.
use crate::common;

use std::path::Path;
use std::process::Command;

use common::{Backend, Instance, Server};
use shiren::protocol::alipay::{merchant, AppPublicKey, Charset, SignType, SigningKey};

const APP_ID: &str = "2021000000000001";
const RETURN_URL: &str = "https://merchant.example/face/back";

struct Setup {
    inst: Instance,
    server: Server,
    gateway_key: AppPublicKey,
    gateway_key_file: std::path::PathBuf,
    app_key_file: std::path::PathBuf,
    wrong_key_file: std::path::PathBuf,
}

fn setup(backend: Backend) -> Setup {
    let inst = Instance::new(backend);
    let app_key = common::merchant_key(0);
    // Merchants paste keys in several shapes; register this one as a bare base64 body.
    let pem = app_key.public_key().to_pem();
    let bare: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let pub_file = inst.file("app_public.txt", &bare);
    let out = inst.run(&[
        "app",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "测试商户",
        "--public-key",
        pub_file.to_str().unwrap(),
        "--return-url",
        "https://merchant.example/face/",
    ]);
    assert!(out.contains(APP_ID), "{out}");
    let listed = inst.run(&["app", "list"]);
    assert!(
        listed.contains(APP_ID) && listed.contains("active"),
        "{listed}"
    );
    // A second registration of the same id is refused.
    let again = inst
        .cmd(&[
            "app",
            "create",
            "--app-id",
            APP_ID,
            "--name",
            "x",
            "--public-key",
            pub_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let server = inst.serve(common::loopback_port_80());
    let gateway_pem = inst.run(&["gateway-key"]);
    assert!(
        gateway_pem.starts_with("-----BEGIN PUBLIC KEY-----"),
        "{gateway_pem}"
    );
    let gateway_key = AppPublicKey::parse(&gateway_pem).unwrap();
    assert_ne!(gateway_key, app_key.public_key());
    let gateway_key_file = inst.file("gateway_public.pem", &gateway_pem);
    let app_key_file = inst.file("app_private.pem", &app_key.to_pkcs1_pem());
    let wrong_key_file = inst.file("wrong_private.pem", &common::merchant_key(1).to_pkcs1_pem());
    Setup {
        inst,
        server,
        gateway_key,
        gateway_key_file,
        app_key_file,
        wrong_key_file,
    }
}

fn sdk_env(s: &Setup, cmd: &mut Command) {
    let tamper_host = common::loopback_port_80().ip().to_string();
    cmd.env(
        "SHIREN_GATEWAY",
        format!("{}/gateway.do", s.server.public_url()),
    )
    .env("SHIREN_PUBLIC_URL", s.server.public_url())
    .env("SHIREN_APP_ID", APP_ID)
    .env("SHIREN_APP_PRIVATE_KEY_FILE", &s.app_key_file)
    .env("SHIREN_WRONG_PRIVATE_KEY_FILE", &s.wrong_key_file)
    .env("SHIREN_GATEWAY_PUBLIC_KEY_FILE", &s.gateway_key_file)
    .env("SHIREN_CERT_NAME", "张三")
    .env("SHIREN_CERT_NO", common::test_cert_no())
    .env("SHIREN_RETURN_URL", RETURN_URL)
    .env("SHIREN_TAMPER_HOST", tamper_host)
    .env("SHIREN_RUN_ID", hex::encode(rand::random::<[u8; 4]>()));
}

fn run_client(s: &Setup, mut cmd: Command, name: &str) {
    sdk_env(s, &mut cmd);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!(
        "--- {name} ---\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} SDK client failed:\n{stdout}");
    assert!(
        stdout.contains("passed, 0 failed"),
        "{name} did not finish:\n{stdout}"
    );
}

/// Splits a signed envelope into (node name, node bytes, sign) exactly as the strictest SDKs do.
fn split_envelope(body: &[u8]) -> (String, Vec<u8>, String) {
    let text = encoding_rs::GBK.decode(body).0.into_owned();
    let name_end = text[2..].find('"').unwrap() + 2;
    let name = text[2..name_end].to_string();
    let start = name_end + 2;
    let sign_at = text.rfind(",\"sign\":\"").unwrap();
    let sign = text[sign_at + 9..text.len() - 2].to_string();
    let node_start_bytes = body.windows(2).position(|w| w == b"\":").unwrap() + 2;
    let sign_at_bytes = body.windows(9).rposition(|w| w == b",\"sign\":\"").unwrap();
    assert_eq!(&text[start..start + 1], "{");
    (name, body[node_start_bytes..sign_at_bytes].to_vec(), sign)
}

fn now_ts() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Signs params (RSA2) as a merchant's SDK would and returns the form body.
fn signed_form(key: &SigningKey, pairs: &[(&str, &str)], charset: Charset) -> Vec<u8> {
    merchant::signed_form(key, SignType::Rsa2, pairs, charset)
}

fn post(s: &Setup, content_type: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/gateway.do", s.server.addr))
        .header("content-type", content_type)
        .body(body)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.bytes().unwrap().to_vec())
}

fn raw_protocol_cases(s: &Setup) {
    let client = reqwest::blocking::Client::new();
    assert_eq!(
        client
            .get(format!("{}/healthz", s.server.addr))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{}/readyz", s.server.addr))
            .send()
            .unwrap()
            .status(),
        200
    );

    let form = "application/x-www-form-urlencoded;charset=utf-8";
    // Missing method: a signed error_response.
    let (status, body) = post(s, form, b"app_id=2021000000000001&charset=utf-8".to_vec());
    assert_eq!(status, 200);
    let (name, node, sign) = split_envelope(&body);
    assert_eq!(name, "error_response");
    assert!(s.gateway_key.verify(SignType::Rsa2, &node, &sign));
    let v: serde_json::Value = serde_json::from_slice(&node).unwrap();
    assert_eq!(
        (v["code"].as_str(), v["sub_code"].as_str()),
        (Some("40001"), Some("isv.missing-method"))
    );

    let key = common::merchant_key(0);
    let ts = now_ts();
    let base = |method: &'static str, biz: &'static str| {
        vec![
            ("app_id", APP_ID),
            ("method", method),
            ("charset", "utf-8"),
            ("sign_type", "RSA2"),
            ("version", "1.0"),
            ("biz_content", biz),
        ]
    };
    let sub_code_of = |body: &[u8], method_node: &str| {
        let (name, node, sign) = split_envelope(body);
        assert_eq!(name, method_node);
        assert!(
            s.gateway_key.verify(SignType::Rsa2, &node, &sign),
            "error responses are signed"
        );
        let v: serde_json::Value = serde_json::from_slice(&node).unwrap();
        v["sub_code"].as_str().unwrap_or("").to_string()
    };
    let q = "alipay_user_certify_open_query_response";

    // A bad timestamp, an unknown method, an invalid charset, a wrong body type.
    let mut p = base("alipay.user.certify.open.query", "{\"certify_id\":\"x\"}");
    p.push(("timestamp", "2020-01-01 00:00:00"));
    let (_, body) = post(s, form, signed_form(key, &p, Charset::Utf8));
    assert_eq!(sub_code_of(&body, q), "isv.invalid-timestamp");
    let mut p = base("alipay.user.certify.open.query", "{\"certify_id\":\"x\"}");
    p.push(("timestamp", "29/11/2026"));
    let (_, body) = post(s, form, signed_form(key, &p, Charset::Utf8));
    assert_eq!(sub_code_of(&body, q), "isv.invalid-timestamp");
    let mut p = base("alipay.trade.pay", "{}");
    p.push(("timestamp", &ts));
    let (_, body) = post(s, form, signed_form(key, &p, Charset::Utf8));
    assert_eq!(
        sub_code_of(&body, "alipay_trade_pay_response"),
        "isv.invalid-method"
    );
    let (_, body) = post(
        s,
        form,
        b"method=alipay.user.certify.open.query&app_id=1&charset=latin9&sign=x&sign_type=RSA2"
            .to_vec(),
    );
    assert_eq!(sub_code_of(&body, q), "isv.invalid-charset");
    let (_, body) = post(s, "application/json", b"{}".to_vec());
    assert_eq!(
        sub_code_of(&body, "error_response"),
        "isv.invalid-parameter"
    );
    // A method that could break the JSON node is answered under error_response.
    let (_, body) = post(s, form, b"method=a%22b&app_id=1".to_vec());
    assert_eq!(split_envelope(&body).0, "error_response");

    // GBK: the request is signed over GBK bytes, the answer is GBK and signed over its GBK bytes.
    let mut p = base(
        "alipay.user.certify.open.query",
        "{\"certify_id\":\"不存在\"}",
    );
    p[2] = ("charset", "GBK");
    p.push(("timestamp", &ts));
    let (status, body) = post(
        s,
        "application/x-www-form-urlencoded;charset=GBK",
        signed_form(key, &p, Charset::Gbk),
    );
    assert_eq!(status, 200);
    assert_eq!(sub_code_of(&body, q), "CERTIFY_ID_NOT_EXIST");

    // Legacy RSA (SHA1) requests are verified and answered with SHA1 signatures.
    let mut p = base("alipay.user.certify.open.query", "{\"certify_id\":\"abc\"}");
    p[3] = ("sign_type", "RSA");
    p.push(("timestamp", &ts));
    let form_body = merchant::signed_form(key, SignType::Rsa, &p, Charset::Utf8);
    let (_, body) = post(s, form, form_body);
    let (_, node, sig) = split_envelope(&body);
    assert!(s.gateway_key.verify(SignType::Rsa, &node, &sig));
    assert!(String::from_utf8_lossy(&node).contains("CERTIFY_ID_NOT_EXIST"));
}

fn check_nothing_half_written(s: &Setup) {
    // Node created one verification, Python two (one with a contrast picture); every refusal stored nothing.
    let count = count_verifications(s);
    assert_eq!(count, 3);
    let pictures = s.inst.dir.path().join("data/objects/contrast");
    let files: Vec<_> = std::fs::read_dir(&pictures)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert_eq!(files.len(), 1, "exactly one contrast picture is stored");
}

/// Eight identical initialize requests at once: one verification, the same certify_id for all.
fn concurrent_identical_initialize(s: &Setup) {
    let ts = now_ts();
    let biz = format!(
        r#"{{"outer_order_no":"race1","biz_code":"FACE","identity_param":{{"identity_type":"CERT_INFO","cert_type":"IDENTITY_CARD","cert_name":"张三","cert_no":"{}"}},"merchant_config":{{"return_url":"{RETURN_URL}"}}}}"#,
        common::test_cert_no()
    );
    let p = vec![
        ("app_id", APP_ID),
        ("method", "alipay.user.certify.open.initialize"),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("version", "1.0"),
        ("timestamp", ts.as_str()),
        ("biz_content", biz.as_str()),
    ];
    let body = signed_form(common::merchant_key(0), &p, Charset::Utf8);
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let body = body.clone();
                scope.spawn(move || {
                    let (_, resp) = post(s, "application/x-www-form-urlencoded", body);
                    let (_, node, _) = split_envelope(&resp);
                    let v: serde_json::Value = serde_json::from_slice(&node).unwrap();
                    assert_eq!(v["code"], "10000", "{v}");
                    v["certify_id"].as_str().unwrap().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    assert_eq!(count_verifications(s), 4);
}

fn count_verifications(s: &Setup) -> u64 {
    s.inst.db.with(|db| async move {
        shiren::db::verifications::count_for_app(&db, APP_ID)
            .await
            .unwrap()
    })
}

fn suite(backend: Backend) {
    let sdk = common::sdk_dir();
    let s = setup(backend);
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));

    let mut node = Command::new("node");
    node.arg(here.join("tests/sdk/node/face.cjs"))
        .env("NODE_PATH", sdk.join("node/node_modules"));
    run_client(&s, node, "node alipay-sdk");

    let mut python = Command::new(sdk.join("python/bin/python"));
    python.arg(here.join("tests/sdk/python/face.py"));
    run_client(&s, python, "python alipay-sdk-python");

    raw_protocol_cases(&s);
    check_nothing_half_written(&s);

    concurrent_identical_initialize(&s);

    // A disabled app is refused from then on.
    s.inst.run(&["app", "disable", APP_ID]);
    let ts = now_ts();
    let p = vec![
        ("app_id", APP_ID),
        ("method", "alipay.user.certify.open.query"),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("version", "1.0"),
        ("timestamp", ts.as_str()),
        ("biz_content", "{\"certify_id\":\"abc\"}"),
    ];
    let (_, body) = post(
        &s,
        "application/x-www-form-urlencoded",
        signed_form(common::merchant_key(0), &p, Charset::Utf8),
    );
    assert!(String::from_utf8_lossy(&body).contains("isv.invalid-app-id"));
}

#[test]
fn alipay_sdks_against_sqlite() {
    suite(Backend::Sqlite);
}

#[test]
fn alipay_sdks_against_postgres() {
    suite(Backend::Postgres);
}

#[test]
fn alipay_sdks_against_mariadb() {
    suite(Backend::MariaDb);
}
