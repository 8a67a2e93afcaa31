//! Fault 7, enumeration and score tuning: calls are limited per ID number (both APIs, every instance on the
//! database), per app (both front doors) and per client address (the hosted page), each answered the way its
//! protocol answers a limit: 40005 on the gateway, `Throttling.User` with `x-acs-retry-after` or Code 418 on the
//! cloud API, HTTP 429 with `Retry-After` on the hosted page.
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde_json::{json, Value};
use shiren::protocol::alipay::{merchant, Charset, SignType};
use shiren::protocol::aliyun::acs;

use crate::common::{self, Backend, Instance, Server};

const APP_ID: &str = "2021000000007007";
const RETURN_URL: &str = "https://merchant.example/face/back";
const SCENE_ID_PRO: i64 = 7001;
const SCENE_ID_MIN: i64 = 7002;

struct Setup {
    inst: Instance,
    key_id: String,
    key_secret: String,
}

/// An app with a return URL, an ID_PRO and an ID_MIN scene, and a cloud access key.
fn setup(backend: Backend) -> Setup {
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
        "Limits merchant",
        "--public-key",
        pub_file.to_str().unwrap(),
        "--return-url",
        "https://merchant.example/face/",
    ]);
    for (id, product) in [(SCENE_ID_PRO, "ID_PRO"), (SCENE_ID_MIN, "ID_MIN")] {
        inst.run(&[
            "scene",
            "create",
            "--app-id",
            APP_ID,
            "--name",
            product,
            "--scene-id",
            &id.to_string(),
            "--product",
            product,
        ]);
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
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A valid ID number of someone born on `yyyymmdd` (region 110105).
fn number(yyyymmdd: &str, seq: &str) -> String {
    shiren::domain::idcard::with_check_char(&format!("110105{yyyymmdd}{seq}"))
}

/// A signed gateway call; returns the method's response node.
fn gateway(server: &Server, method: &str, biz: &Value) -> Value {
    let ts = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let biz = biz.to_string();
    let body = merchant::signed_form(
        common::merchant_key(0),
        SignType::Rsa2,
        &[
            ("app_id", APP_ID),
            ("method", method),
            ("charset", "utf-8"),
            ("sign_type", "RSA2"),
            ("version", "1.0"),
            ("timestamp", ts.as_str()),
            ("biz_content", biz.as_str()),
        ],
        Charset::Utf8,
    );
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/gateway.do", server.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().unwrap();
    v[format!("{}_response", method.replace('.', "_"))].clone()
}

fn initialize(server: &Server, order: &str, cert_no: &str) -> Value {
    gateway(
        server,
        "alipay.user.certify.open.initialize",
        &json!({
            "outer_order_no": order,
            "biz_code": "FACE",
            "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": "张三", "cert_no": cert_no},
            "merchant_config": {"return_url": RETURN_URL},
        }),
    )
}

/// What the cloud API answered: HTTP status, `x-acs-retry-after`, the JSON body.
struct CloudAnswer {
    status: u16,
    retry_after_ms: Option<i64>,
    retry_after_secs: Option<i64>,
    body: Value,
}

impl std::fmt::Debug for CloudAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HTTP {} (retry after {:?} ms) {}",
            self.status, self.retry_after_ms, self.body
        )
    }
}

/// A cloud API call signed in RPC style (HMAC-SHA1), as the legacy SDK sends it.
fn cloud(s: &Setup, server: &Server, action: &str, extra: &[(&str, &str)]) -> CloudAnswer {
    let mut params: BTreeMap<String, String> = [
        ("Action", action),
        ("Version", "2019-03-07"),
        ("Format", "JSON"),
        ("AccessKeyId", s.key_id.as_str()),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    params.insert(
        "SignatureNonce".into(),
        hex::encode(rand::random::<[u8; 16]>()),
    );
    params.insert(
        "Timestamp".into(),
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    let signature = acs::rpc_signature(&s.key_secret, &acs::rpc_string_to_sign("POST", &params));
    params.insert("Signature".into(), signature);
    let body = params
        .iter()
        .map(|(k, v)| format!("{}={}", acs::percent_encode(k), acs::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/", server.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.parse::<i64>().unwrap())
    };
    CloudAnswer {
        status: resp.status().as_u16(),
        retry_after_ms: header("x-acs-retry-after"),
        retry_after_secs: header("retry-after"),
        body: resp.json().unwrap(),
    }
}

fn init_face_verify(s: &Setup, server: &Server, order: &str, cert_no: &str) -> CloudAnswer {
    let scene = SCENE_ID_PRO.to_string();
    cloud(
        s,
        server,
        "InitFaceVerify",
        &[
            ("SceneId", scene.as_str()),
            ("ProductCode", "ID_PRO"),
            ("OuterOrderNo", order),
            ("CertType", "IDENTITY_CARD"),
            ("CertName", "张三"),
            ("CertNo", cert_no),
            ("ReturnUrl", RETURN_URL),
        ],
    )
}

/// A refusal by `Throttling.User`: HTTP 400, the error shape, and a positive `x-acs-retry-after` (milliseconds, as
/// the Tea SDKs' retry policy reads it) with `Retry-After` in seconds.
fn assert_throttled(a: &CloudAnswer, what: &str) {
    assert_eq!(a.status, 400, "{what}: {a:?}");
    assert_eq!(a.body["Code"], "Throttling.User", "{what}: {a:?}");
    assert!(a.body["RequestId"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(a.body["Message"]
        .as_str()
        .is_some_and(|m| m.contains("try again in")));
    let ms = a
        .retry_after_ms
        .unwrap_or_else(|| panic!("{what}: no x-acs-retry-after: {a:?}"));
    let secs = a.retry_after_secs.unwrap();
    assert!(ms >= 1000 && ms % 1000 == 0, "{what}: {a:?}");
    assert_eq!(secs * 1000, ms);
}

fn count_verifications(inst: &Instance) -> u64 {
    inst.db.with(|db| async move {
        shiren::db::verifications::count_for_app(&db, APP_ID)
            .await
            .unwrap()
    })
}

/// 15 calls naming one ID number within a minute pass, spread over two `shiren serve` processes on one database;
/// the 16th is refused on either, by either API: the two front doors and the two instances share one count.
fn identity_per_minute(backend: Backend) {
    let s = setup(backend);
    let a = s.inst.serve_with(any_port(), &[]);
    let b = s.inst.serve_with(any_port(), &[]);
    let servers = [&a, &b];

    // The gateway: 15 initializes of one number, alternating between the instances.
    let no = number("19850101", "001");
    let mut first_id = String::new();
    for i in 0..15 {
        let r = initialize(servers[i % 2], &format!("lim-gw-{i}"), &no);
        assert_eq!(r["code"], "10000", "initialize {i}: {r}");
        if i == 0 {
            first_id = r["certify_id"].as_str().unwrap().to_string();
        }
    }
    let r = initialize(&a, "lim-gw-15", &no);
    assert_eq!(r["code"], "40005", "{r}");
    assert_eq!(r["msg"], "Call Limited");
    assert_eq!(r["sub_code"], "isv.method-call-limited");
    let sub_msg = r["sub_msg"].as_str().unwrap();
    assert!(
        sub_msg.contains("try again in") && !sub_msg.contains(&no),
        "{sub_msg}"
    );
    // A retry of an earlier request is not a new call: it still answers, with the same id.
    let r = initialize(&b, "lim-gw-0", &no);
    assert_eq!(
        (r["code"].as_str(), r["certify_id"].as_str()),
        (Some("10000"), Some(first_id.as_str()))
    );
    // The same number on the cloud API, on the other instance: the count is the same.
    let c = init_face_verify(&s, &b, "lim-cl-x", &no);
    assert_throttled(&c, "InitFaceVerify of a number the gateway used up");
    assert_eq!(
        count_verifications(&s.inst),
        15,
        "refused calls store nothing"
    );

    // The cloud API alone, another number: 15 pass, the 16th is throttled.
    let no2 = number("19880808", "456");
    for i in 0..15 {
        let c = init_face_verify(&s, servers[i % 2], &format!("lim-cl-{i}"), &no2);
        assert_eq!(
            (c.status, c.body["Code"].as_str()),
            (200, Some("200")),
            "InitFaceVerify {i}: {c:?}"
        );
    }
    assert_throttled(
        &init_face_verify(&s, &a, "lim-cl-15", &no2),
        "the 16th InitFaceVerify",
    );
    // Other numbers are not affected.
    let r = initialize(&a, "lim-other", &number("19700615", "321"));
    assert_eq!(r["code"], "10000", "{r}");
    assert_eq!(count_verifications(&s.inst), 31);
}

#[test]
fn the_16th_call_naming_one_id_number_within_a_minute_is_refused_sqlite() {
    identity_per_minute(Backend::Sqlite);
}

#[test]
fn the_16th_call_naming_one_id_number_within_a_minute_is_refused_postgres() {
    identity_per_minute(Backend::Postgres);
}

#[test]
fn the_16th_call_naming_one_id_number_within_a_minute_is_refused_mariadb() {
    identity_per_minute(Backend::MariaDb);
}

/// Failed verdicts of one number count per day: once there were as many as allowed, the number is refused until
/// the next day with Code 418 on the cloud API (ContrastFaceVerify and InitFaceVerify alike) and 40005 on the
/// gateway. Calls per day are limited the same way.
fn identity_per_day(backend: Backend) {
    let Some(face) = common::shared_data("faces/img8.jpg") else {
        return;
    };
    let picture = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        std::fs::read(face).unwrap(),
    );
    let s = setup(backend);
    let server = s.inst.serve_with(
        any_port(),
        &[
            ("SHIREN_LIMITS_IDENTITY_FAILURES_PER_DAY", "2"),
            ("SHIREN_LIMITS_IDENTITY_PER_DAY", "4"),
        ],
    );
    let scene = SCENE_ID_MIN.to_string();
    let contrast = |order: &str, no: &str| {
        cloud(
            &s,
            &server,
            "ContrastFaceVerify",
            &[
                ("SceneId", scene.as_str()),
                ("ProductCode", "ID_MIN"),
                ("OuterOrderNo", order),
                ("CertName", "张三"),
                ("CertNo", no),
                ("FaceContrastPicture", picture.as_str()),
            ],
        )
    };
    // Nobody is registered: each verdict fails (SubCode 202, identity not found).
    let no = number("19910203", "112");
    for i in 0..2 {
        let c = contrast(&format!("lim-f-{i}"), &no);
        assert_eq!(c.body["Code"], "200", "{c:?}");
        assert_eq!(
            (
                c.body["ResultObject"]["Passed"].as_str(),
                c.body["ResultObject"]["SubCode"].as_str()
            ),
            (Some("F"), Some("202")),
            "{c:?}"
        );
    }
    let c = contrast("lim-f-2", &no);
    assert_eq!(
        (c.status, c.body["Code"].as_str()),
        (200, Some("418")),
        "{c:?}"
    );
    assert!(c.body["Message"].as_str().unwrap().contains("today"));
    let c = init_face_verify(&s, &server, "lim-f-3", &no);
    assert_eq!(c.body["Code"], "418", "{c:?}");
    let r = initialize(&server, "lim-f-4", &no);
    assert_eq!(
        (r["code"].as_str(), r["sub_code"].as_str()),
        (Some("40005"), Some("isv.method-call-limited")),
        "{r}"
    );
    // A retried call (same order, same content) is answered from what was stored, not refused.
    let c = contrast("lim-f-0", &no);
    assert_eq!(c.body["ResultObject"]["SubCode"], "202", "{c:?}");

    // Calls per day: 4 pass (no verdict needed), the 5th is refused for the rest of the day with 418.
    let no2 = number("19920304", "223");
    for i in 0..4 {
        let c = init_face_verify(&s, &server, &format!("lim-d-{i}"), &no2);
        assert_eq!(c.body["Code"], "200", "{c:?}");
    }
    let c = init_face_verify(&s, &server, "lim-d-4", &no2);
    assert_eq!(
        (c.status, c.body["Code"].as_str()),
        (200, Some("418")),
        "{c:?}"
    );
}

#[test]
fn failures_and_calls_per_day_of_one_id_number_answer_418_sqlite() {
    identity_per_day(Backend::Sqlite);
}

#[test]
fn failures_and_calls_per_day_of_one_id_number_answer_418_postgres() {
    identity_per_day(Backend::Postgres);
}

#[test]
fn failures_and_calls_per_day_of_one_id_number_answer_418_mariadb() {
    identity_per_day(Backend::MariaDb);
}

/// An app over its calls per second: `Throttling.User` with `x-acs-retry-after` on the cloud API, 40005
/// `isv.app-call-limited` on the gateway; a second later it is served again.
fn app_per_second(backend: Backend) {
    let s = setup(backend);
    let server = s
        .inst
        .serve_with(any_port(), &[("SHIREN_LIMITS_APP_PER_SECOND", "3")]);
    let scene = SCENE_ID_PRO.to_string();
    let describe = || {
        cloud(
            &s,
            &server,
            "DescribeFaceVerify",
            &[
                ("SceneId", scene.as_str()),
                ("CertifyId", "0123456789abcdef0123456789abcdef"),
            ],
        )
    };
    let answers: Vec<CloudAnswer> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12).map(|_| scope.spawn(describe)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (throttled, served): (Vec<_>, Vec<_>) = answers.iter().partition(|a| a.status == 400);
    assert!(
        !throttled.is_empty(),
        "12 calls at once, 3 a second: {answers:?}"
    );
    for a in &throttled {
        assert_throttled(a, "an app over its calls per second");
    }
    for a in &served {
        assert_eq!(
            (a.status, a.body["Code"].as_str()),
            (200, Some("406")),
            "{a:?}"
        );
    }
    assert!(served.len() >= 3, "{answers:?}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let a = describe();
    assert_eq!(a.body["Code"], "406", "a second later: {a:?}");

    // The gateway counts the same app.
    let query = || {
        gateway(
            &server,
            "alipay.user.certify.open.query",
            &json!({"certify_id": "0123456789abcdef0123456789abcdef"}),
        )
    };
    let nodes: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12).map(|_| scope.spawn(query)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let limited: Vec<_> = nodes.iter().filter(|n| n["code"] == "40005").collect();
    assert!(!limited.is_empty(), "{nodes:?}");
    for n in limited {
        assert_eq!(n["sub_code"], "isv.app-call-limited", "{n}");
    }
    for n in nodes.iter().filter(|n| n["code"] != "40005") {
        assert_eq!(n["sub_code"], "CERTIFY_ID_NOT_EXIST", "{n}");
    }
}

#[test]
fn an_app_over_its_calls_per_second_is_throttled_sqlite() {
    app_per_second(Backend::Sqlite);
}

#[test]
fn an_app_over_its_calls_per_second_is_throttled_postgres() {
    app_per_second(Backend::Postgres);
}

#[test]
fn an_app_over_its_calls_per_second_is_throttled_mariadb() {
    app_per_second(Backend::MariaDb);
}

fn h5_post(
    client: &reqwest::blocking::Client,
    server: &Server,
    what: &str,
    body: Vec<u8>,
    forwarded_for: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut req = client
        .post(format!(
            "{}/h5/certify/made-up-token-{what}/{what}",
            server.addr
        ))
        .header("content-type", "application/json")
        .body(body);
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry, resp.json().unwrap_or(Value::Null))
}

fn client_from(ip: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// The hosted page's challenge and attempt requests count per client address (default 60 a minute), before the
/// token or the body is looked at; the 61st is answered 429 with `Retry-After`, other addresses go on.
#[test]
fn the_hosted_page_answers_429_per_client_address() {
    let s = setup(Backend::Sqlite);
    let server = s.inst.serve_with(any_port(), &[]);
    let one = client_from("127.0.0.1");
    for i in 0..60 {
        let what = if i % 2 == 0 { "challenge" } else { "attempt" };
        let (status, _, v) = h5_post(&one, &server, what, b"{}".to_vec(), None);
        assert_ne!(status, 429, "request {i}: {v}");
        assert!((400..500).contains(&status), "request {i}: {status} {v}");
    }
    let (status, retry, v) = h5_post(&one, &server, "challenge", b"{}".to_vec(), None);
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["code"], "TOO_MANY_REQUESTS");
    let retry: i64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=120).contains(&retry), "{retry}");
    assert_eq!(v["retry_after"], retry);
    // An upload is refused before its body is read: a 2 MB body changes nothing.
    let (status, _, _) = h5_post(&one, &server, "attempt", vec![b' '; 2 << 20], None);
    assert_eq!(status, 429);
    // Another address is not affected (and a forwarded-for header from an untrusted peer is ignored).
    let (status, _, v) = h5_post(
        &client_from("127.0.0.2"),
        &server,
        "challenge",
        b"{}".to_vec(),
        None,
    );
    assert_ne!(status, 429, "{v}");
    let (status, _, _) = h5_post(
        &one,
        &server,
        "challenge",
        b"{}".to_vec(),
        Some("203.0.113.50"),
    );
    assert_eq!(status, 429);

    // Behind a trusted proxy, the address it forwards is the client's; IPv6 addresses count by /64.
    let proxied = s.inst.serve_with(
        any_port(),
        &[
            ("SHIREN_LIMITS_TRUSTED_PROXIES", "127.0.0.1"),
            ("SHIREN_LIMITS_ADDRESS_PER_MINUTE", "3"),
        ],
    );
    let post =
        |forwarded: &str| h5_post(&one, &proxied, "challenge", b"{}".to_vec(), Some(forwarded)).0;
    for _ in 0..3 {
        assert_ne!(post("203.0.113.5"), 429);
    }
    assert_eq!(post("203.0.113.5"), 429);
    assert_eq!(
        post("198.51.100.1, 203.0.113.5"),
        429,
        "what the client wrote left of it does not count"
    );
    assert_ne!(post("203.0.113.6"), 429);
    for _ in 0..3 {
        assert_ne!(post("2001:db8:1:2::1"), 429);
    }
    assert_eq!(post("2001:db8:1:2::ffff"), 429, "same /64");
    assert_ne!(post("2001:db8:1:3::1"), 429, "another /64");
}
