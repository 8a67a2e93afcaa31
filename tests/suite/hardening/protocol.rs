//! Protocol faults of the hardening issue, against a real `shiren serve`:
//! - 5: an RPC (HMAC-SHA1) request cannot be made to run another action by an unsigned `x-acs-action` header;
//! - 8: the HTML page of a failed `certify` (and the console's notices) show no text chosen by whoever made the link;
//! - 9: return URLs of script, data, file and unregistered app schemes are refused, on the gateway, the cloud API,
//!   and when prefixes are registered;
//! - 10 (part): merchant RSA keys under 2048 bits are refused unless `[gateway] allow_legacy_rsa_keys` is on.
use std::collections::BTreeMap;

use serde_json::{json, Value};
use shiren::protocol::alipay::merchant::signed_form;
use shiren::protocol::alipay::params::Charset;
use shiren::protocol::alipay::SignType;
use shiren::protocol::aliyun::acs;

use crate::common::{self, Backend, Instance, Server};

/// An app without registered return URL prefixes.
const OPEN_APP: &str = "2021000000000071";
/// An app whose prefixes are `https://m.example/` and the app scheme `alipays://`.
const PREFIX_APP: &str = "2021000000000072";
const SCENE_ID: &str = "7100";
/// What a phishing link would plant on the verification domain.
const PLANTED: &str = "您的认证已失效，请立即拨打客服热线 400-000-0000 并提供验证码";
const PLANTED_EN: &str = "Your verification has expired, call +1-555-0100 now";
const ADMIN_TOKEN: &str = "protocol-test-admin-token-0123456789abcdef";

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn public_key_file(inst: &Instance, i: usize) -> String {
    inst.file(
        &format!("merchant{i}.pem"),
        &common::merchant_key(i).public_key().to_pem(),
    )
    .display()
    .to_string()
}

/// An instance with the two apps, an ID_PRO scene of the open app and an access key of it; the key's id and secret.
fn setup(backend: Backend) -> (Instance, String, String) {
    let inst = Instance::new(backend);
    let key = public_key_file(&inst, 0);
    inst.run(&[
        "app",
        "create",
        "--app-id",
        OPEN_APP,
        "--name",
        "无前缀商户",
        "--public-key",
        &key,
    ]);
    inst.run(&[
        "app",
        "create",
        "--app-id",
        PREFIX_APP,
        "--name",
        "有前缀商户",
        "--public-key",
        &key,
        "--return-url",
        "https://m.example/",
        "--return-url",
        "alipays://",
    ]);
    inst.run(&[
        "scene",
        "create",
        "--app-id",
        OPEN_APP,
        "--name",
        "cloud",
        "--scene-id",
        SCENE_ID,
        "--product",
        "ID_PRO",
    ]);
    let out = inst.run(&["app", "access-key", "create", OPEN_APP]);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{name} in {out}"))
    };
    let (id, secret) = (field("AccessKeyId:"), field("AccessKeySecret:"));
    (inst, id, secret)
}

fn serve(inst: &Instance) -> Server {
    inst.serve_with(
        "127.0.0.1:0".parse().unwrap(),
        &[("SHIREN_ADMIN_TOKEN", ADMIN_TOKEN)],
    )
}

fn verifications_of(inst: &Instance, app_id: &'static str) -> u64 {
    inst.db.with(|db| async move {
        shiren::db::verifications::count_for_app(&db, app_id)
            .await
            .unwrap()
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Cloud API requests signed by hand.

fn utc_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn form_encode(p: &BTreeMap<String, String>) -> String {
    p.iter()
        .map(|(k, v)| format!("{}={}", acs::percent_encode(k), acs::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The form body of an RPC (HMAC-SHA1) request: `params` plus the common ones, signed with the key. `action` None
/// leaves the `Action` parameter out.
fn rpc_body(key_id: &str, secret: &str, action: Option<&str>, params: &[(&str, &str)]) -> String {
    let mut p: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in [
        ("Version", "2019-03-07"),
        ("Format", "JSON"),
        ("AccessKeyId", key_id),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
    ] {
        p.insert(k.into(), v.into());
    }
    if let Some(a) = action {
        p.insert("Action".into(), a.into());
    }
    p.insert("SignatureNonce".into(), nonce());
    p.insert("Timestamp".into(), utc_now());
    let signature = acs::rpc_signature(secret, &acs::rpc_string_to_sign("POST", &p));
    p.insert("Signature".into(), signature);
    form_encode(&p)
}

fn cloud_post(server: &Server, headers: &[(&str, &str)], body: String) -> (u16, Value) {
    let mut req = client()
        .post(format!("{}/", server.addr))
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(body).send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, json)
}

/// Headers of an ACS3-HMAC-SHA256 request whose signed `x-acs-action` is `header_action`, over `query` and `body`.
fn acs3_headers(
    server: &Server,
    key_id: &str,
    secret: &str,
    header_action: &str,
    query: &[(String, String)],
    body: &[u8],
) -> Vec<(String, String)> {
    let host = server.addr.trim_start_matches("http://").to_string();
    let h: BTreeMap<String, String> = [
        ("host", host),
        ("x-acs-action", header_action.to_string()),
        ("x-acs-version", "2019-03-07".to_string()),
        ("x-acs-date", utc_now()),
        ("x-acs-signature-nonce", nonce()),
        ("x-acs-content-sha256", acs::sha256_hex(body)),
        (
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let signed: Vec<String> = h.keys().cloned().collect();
    let canonical = acs::acs3_canonical_request(
        "POST",
        query,
        &signed,
        |name| h.get(name).cloned(),
        &acs::sha256_hex(body),
    );
    let signature = acs::acs3_signature(secret, &acs::acs3_string_to_sign(&canonical));
    let mut out: Vec<(String, String)> = h.into_iter().filter(|(k, _)| k != "host").collect();
    out.push((
        "authorization".into(),
        format!(
            "ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders={},Signature={signature}",
            signed.join(";")
        ),
    ));
    out
}

/// The parameters of an InitFaceVerify that would start a verification, with `return_url`.
fn init_params(order: &str, return_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SceneId", SCENE_ID.to_string()),
        ("OuterOrderNo", order.to_string()),
        ("ProductCode", "ID_PRO".to_string()),
        ("CertType", "IDENTITY_CARD".to_string()),
        ("CertName", "张三".to_string()),
        ("CertNo", common::test_cert_no()),
        ("MetaInfo", r#"{"zimVer":"3.0.0","appVersion":"1","bioMetaInfo":"4.1.0:1,0","deviceType":"h5","ua":"t"}"#.to_string()),
        ("ReturnUrl", return_url.to_string()),
    ]
}

fn borrowed<'a>(p: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    p.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Fault 5. A request RPC-signed for DescribeFaceVerify (carrying everything an InitFaceVerify needs) with an added
/// `x-acs-action: InitFaceVerify` is refused and starts nothing; the same request without the header, or with the
/// header repeating the signed action (as the legacy SDKs send it), still runs DescribeFaceVerify; the same
/// parameters signed as InitFaceVerify do start a verification (so the refused request would have).
#[test]
fn rpc_signature_binds_the_action() {
    let (inst, key_id, secret) = setup(Backend::Sqlite);
    let server = serve(&inst);
    let params = init_params("rpc-action-1", "https://m.example/back");
    let p = borrowed(&params);

    // The attack: signed for DescribeFaceVerify, header says InitFaceVerify.
    let body = rpc_body(&key_id, &secret, Some("DescribeFaceVerify"), &p);
    let (status, json) = cloud_post(&server, &[("x-acs-action", "InitFaceVerify")], body);
    assert_eq!(
        (status, json["Code"].as_str()),
        (400, Some("InvalidParameter")),
        "{json}"
    );
    assert!(json["Message"].as_str().unwrap().contains("x-acs-action"));
    for key in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
        assert!(json[key].is_string(), "{key} in {json}");
    }
    assert!(json.get("ResultObject").is_none());
    assert_eq!(verifications_of(&inst, OPEN_APP), 0);

    // RPC-signed without any Action parameter: the header alone names nothing signed.
    let body = rpc_body(&key_id, &secret, None, &p);
    let (status, json) = cloud_post(&server, &[("x-acs-action", "InitFaceVerify")], body);
    assert_eq!(
        (status, json["Code"].as_str()),
        (400, Some("MissingParameter")),
        "{json}"
    );
    assert_eq!(verifications_of(&inst, OPEN_APP), 0);

    // The signed action runs: without the header, and with the header repeating it.
    for headers in [vec![], vec![("x-acs-action", "DescribeFaceVerify")]] {
        let body = rpc_body(&key_id, &secret, Some("DescribeFaceVerify"), &p);
        let (status, json) = cloud_post(&server, &headers, body);
        assert_eq!(status, 200, "{headers:?}: {json}");
        assert_ne!(json["Code"].as_str(), Some("200"), "{json}");
        assert!(json.get("ResultObject").is_none(), "{json}");
    }
    assert_eq!(verifications_of(&inst, OPEN_APP), 0);

    // ACS3 signs both the header and the query: when they disagree the request is refused too.
    let body = b"SceneId=7100&CertifyId=sha0".to_vec();
    let query = vec![("Action".to_string(), "DescribeFaceVerify".to_string())];
    let headers = acs3_headers(&server, &key_id, &secret, "InitFaceVerify", &query, &body);
    let resp = headers
        .iter()
        .fold(
            client().post(format!("{}/?Action=DescribeFaceVerify", server.addr)),
            |r, (k, v)| r.header(k, v),
        )
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let json: Value = resp.json().unwrap();
    assert_eq!(json["Code"].as_str(), Some("InvalidParameter"), "{json}");

    // The same parameters signed as InitFaceVerify start a verification.
    let body = rpc_body(&key_id, &secret, Some("InitFaceVerify"), &p);
    let (status, json) = cloud_post(&server, &[("x-acs-action", "InitFaceVerify")], body);
    assert_eq!(
        (status, json["Code"].as_str()),
        (200, Some("200")),
        "{json}"
    );
    assert!(json["ResultObject"]["CertifyId"].is_string(), "{json}");
    assert_eq!(verifications_of(&inst, OPEN_APP), 1);
}

// ---------------------------------------------------------------------------------------------------------------
// The gateway.

fn gateway_ts() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", acs::percent_encode(k), acs::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Checks a certify error page: HTML, the fixed message and `sub_code`, nothing of what the request said.
fn assert_fixed_page(resp: reqwest::blocking::Response, sub_code: &str, said: &[&str]) {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.text().unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    for text in said {
        assert!(
            !body.contains(text),
            "the page shows {text:?} from the request:\n{body}"
        );
    }
    // Nothing of the string-to-sign or its announcement.
    for fragment in ["验签", "biz_content", "app_id=", "sign_type=", "timestamp="] {
        assert!(
            !body.contains(fragment),
            "{fragment:?} on the page:\n{body}"
        );
    }
    assert!(body.contains(sub_code), "{sub_code} in {body}");
    assert!(body.contains("认证无法开始") && body.contains("could not be started"));
}

/// Fault 8. Links to the gateway's `certify` that fail (a bad or missing signature, an unknown app, a signed request
/// for a certify_id that is attacker text) show a page with a fixed message and the sub-code only; the console
/// shows only its own notices.
#[test]
fn error_pages_show_no_request_text() {
    let (inst, _, _) = setup(Backend::Sqlite);
    let server = serve(&inst);
    let ts = gateway_ts();
    let biz = json!({ "certify_id": PLANTED }).to_string();
    let common = |app_id: &'static str| {
        vec![
            ("method", "alipay.user.certify.open.certify"),
            ("app_id", app_id),
            ("charset", "utf-8"),
            ("sign_type", "RSA2"),
            ("version", "1.0"),
            ("notice", PLANTED_EN),
        ]
    };
    let get = |query: String| {
        client()
            .get(format!("{}/gateway.do?{query}", server.addr))
            .send()
            .unwrap()
    };
    let said = [PLANTED, PLANTED_EN, "400-000-0000", "555-0100"];

    // A made-up signature: the gateway computes the string-to-sign (it holds every parameter) and refuses.
    let mut pairs = common(OPEN_APP);
    pairs.extend([
        ("timestamp", ts.as_str()),
        ("biz_content", biz.as_str()),
        ("sign", "AAAA"),
    ]);
    assert_fixed_page(get(query_string(&pairs)), "isv.invalid-signature", &said);

    // No signature at all, and an unknown app.
    let mut pairs = common(OPEN_APP);
    pairs.extend([("timestamp", ts.as_str()), ("biz_content", biz.as_str())]);
    assert_fixed_page(get(query_string(&pairs)), "isv.missing-signature", &said);
    let mut pairs = common("2099000000000001");
    pairs.extend([
        ("timestamp", ts.as_str()),
        ("biz_content", biz.as_str()),
        ("sign", "AAAA"),
    ]);
    assert_fixed_page(get(query_string(&pairs)), "isv.invalid-app-id", &said);

    // A properly signed request whose certify_id is the planted text: a business error, the same fixed page.
    let mut pairs = common(OPEN_APP);
    pairs.extend([("timestamp", ts.as_str()), ("biz_content", biz.as_str())]);
    let form = signed_form(
        common::merchant_key(0),
        SignType::Rsa2,
        &pairs,
        Charset::Utf8,
    );
    let resp = get(String::from_utf8(form).unwrap());
    let status = resp.status().as_u16();
    let body = resp.text().unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(
        !body.contains(PLANTED) && !body.contains(PLANTED_EN),
        "{body}"
    );
    assert!(body.contains("认证无法开始"), "{body}");

    // The console's notice after a change is shown; other text in its place is not.
    let c = client();
    let login = c
        .post(format!("{}/console/login", server.addr))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("console login failed: {}", login.status()))
        .to_string();
    let console = |path: &str| {
        c.get(format!("{}{path}", server.addr))
            .header("cookie", &cookie)
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let page = console(&format!("/console/apps?ok=created+app+{OPEN_APP}"));
    assert!(page.contains(&format!("created app {OPEN_APP}")), "{page}");
    for planted in [
        PLANTED.to_string(),
        format!("created app {OPEN_APP} — {PLANTED_EN}"),
        "created app 2099000000000001".to_string(),
    ] {
        let page = console(&format!(
            "/console/apps?ok={}",
            acs::percent_encode(&planted)
        ));
        assert!(!page.contains(&planted), "{planted}");
        assert!(!page.contains("notice ok"), "{page}");
        let page = console(&format!(
            "/console/scenes?ok={}",
            acs::percent_encode(&planted)
        ));
        assert!(!page.contains(&planted), "{planted}");
    }
}

/// A signed `initialize` of `app_id` with `return_url`; the response node.
fn initialize(server: &Server, app_id: &str, order: &str, return_url: &str) -> Value {
    let biz = json!({
        "outer_order_no": order,
        "biz_code": "FACE",
        "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": "张三",
                           "cert_no": common::test_cert_no()},
        "merchant_config": {"return_url": return_url},
    })
    .to_string();
    let ts = gateway_ts();
    let form = signed_form(
        common::merchant_key(0),
        SignType::Rsa2,
        &[
            ("app_id", app_id),
            ("method", "alipay.user.certify.open.initialize"),
            ("charset", "utf-8"),
            ("sign_type", "RSA2"),
            ("version", "1.0"),
            ("timestamp", &ts),
            ("biz_content", &biz),
        ],
        Charset::Utf8,
    );
    let v: Value = client()
        .post(format!("{}/gateway.do", server.addr))
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=utf-8",
        )
        .body(form)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["alipay_user_certify_open_initialize_response"].clone()
}

/// Return URLs no app may use, with or without registered prefixes.
const NEVER: &[&str] = &[
    "javascript:alert(document.domain)",
    "JavaScript://m.example/%0aalert(1)",
    "java\tscript:alert(1)",
    " javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "intent://scan/#Intent;scheme=zxing;package=com.evil;end",
    "blob:https://m.example/0000",
    "//evil.example/",
    "https:\\\\evil.example/",
    "https:///evil.example/",
    "https://m.example@evil.example/",
    "https://m.example/\u{202e}kcab",
];

/// Fault 9. Through the gateway's `initialize`: an app without prefixes gets only http(s) URLs; script, data, file
/// and app schemes and host tricks are refused with INVALID_PARAMETER; an app with `https://m.example/` and
/// `alipays://` registered gets exactly those. The cloud API's `ReturnUrl` follows the same rule, and such schemes
/// cannot be registered as prefixes.
#[test]
fn return_urls_admit_only_web_and_registered_schemes() {
    let (inst, key_id, secret) = setup(Backend::Sqlite);
    let server = serve(&inst);
    let mut n = 0;
    let mut order = || {
        n += 1;
        format!("return-url-{n}")
    };

    for url in NEVER {
        for app in [OPEN_APP, PREFIX_APP] {
            let node = initialize(&server, app, &order(), url);
            assert_eq!(
                (node["code"].as_str(), node["sub_code"].as_str()),
                (Some("40004"), Some("INVALID_PARAMETER")),
                "{app} {url:?}: {node}"
            );
        }
    }
    for url in [
        "alipays://platformapi/startapp?appId=20000067",
        "weixin://dl/business",
    ] {
        let node = initialize(&server, OPEN_APP, &order(), url);
        assert_eq!(
            node["sub_code"].as_str(),
            Some("INVALID_PARAMETER"),
            "{url}: {node}"
        );
    }
    assert_eq!(verifications_of(&inst, OPEN_APP), 0);
    assert_eq!(verifications_of(&inst, PREFIX_APP), 0);

    // What is allowed.
    for (app, url) in [
        (OPEN_APP, "https://any.example/back?x=1"),
        (OPEN_APP, "http://m.example:8080/back"),
        (PREFIX_APP, "https://m.example/back"),
        (PREFIX_APP, "alipays://platformapi/startapp?appId=20000067"),
    ] {
        let node = initialize(&server, app, &order(), url);
        assert_eq!(node["code"].as_str(), Some("10000"), "{app} {url}: {node}");
    }
    // A well-formed URL outside the registered prefixes, and an app scheme not registered.
    let node = initialize(&server, PREFIX_APP, &order(), "https://evil.example/");
    assert_eq!(
        node["sub_code"].as_str(),
        Some("RETURN_URL_NOT_ALLOWED"),
        "{node}"
    );
    let node = initialize(&server, PREFIX_APP, &order(), "weixin://dl/business");
    assert_eq!(
        node["sub_code"].as_str(),
        Some("INVALID_PARAMETER"),
        "{node}"
    );

    // The cloud API's InitFaceVerify.
    for url in [
        "javascript:alert(1)",
        "data:text/html,x",
        "intent://x#Intent;end",
    ] {
        let params = init_params(&order(), url);
        let body = rpc_body(&key_id, &secret, Some("InitFaceVerify"), &borrowed(&params));
        let (status, json) = cloud_post(&server, &[], body);
        assert_eq!(
            (status, json["Code"].as_str()),
            (200, Some("401")),
            "{url}: {json}"
        );
        assert!(
            json["Message"].as_str().unwrap_or("").contains("ReturnUrl"),
            "{json}"
        );
    }
    let params = init_params(&order(), "https://m.example/back");
    let body = rpc_body(&key_id, &secret, Some("InitFaceVerify"), &borrowed(&params));
    let (_, json) = cloud_post(&server, &[], body);
    assert_eq!(json["Code"].as_str(), Some("200"), "{json}");

    // Registering such a scheme as a prefix fails.
    let key = public_key_file(&inst, 1);
    for prefix in ["javascript:", "data:", "file://", "https://u@evil.example/"] {
        let out = inst
            .cmd(&[
                "app",
                "create",
                "--app-id",
                "badprefix",
                "--name",
                "x",
                "--public-key",
                &key,
                "--return-url",
                prefix,
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{prefix}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is not allowed"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A PEM public key of a fresh RSA key of `bits`.
fn rsa_public_pem(bits: usize) -> String {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
        .unwrap()
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap()
}

/// Fault 10 (part). `shiren app create` refuses a 1024-bit merchant key with a message naming the setting, and
/// registers it with `SHIREN_ALLOW_LEGACY_RSA_KEYS=1`; the console refuses it too. 2048 bits need no setting.
#[test]
fn short_rsa_keys_need_the_legacy_setting() {
    let inst = Instance::new(Backend::Sqlite);
    let short = inst.file("short.pem", &rsa_public_pem(1024));
    let short = short.to_str().unwrap();
    let create = |app_id: &str, key: &str, legacy: Option<&str>| {
        let mut cmd = inst.cmd(&[
            "app",
            "create",
            "--app-id",
            app_id,
            "--name",
            "legacy",
            "--public-key",
            key,
        ]);
        if let Some(v) = legacy {
            cmd.env("SHIREN_ALLOW_LEGACY_RSA_KEYS", v);
        }
        cmd.output().unwrap()
    };
    for legacy in [None, Some("0")] {
        let out = create("legacy1", short, legacy);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{legacy:?}");
        assert!(
            stderr.contains("1024 bits")
                && stderr.contains("at least 2048")
                && stderr.contains("allow_legacy_rsa_keys"),
            "{stderr}"
        );
    }
    let out = create("legacy1", short, Some("1"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("RSA-1024"));
    let full = public_key_file(&inst, 0);
    let out = create("modern1", &full, None);
    assert!(out.status.success());

    // The console's form.
    let server = serve(&inst);
    let c = client();
    let login = c
        .post(format!("{}/console/login", server.addr))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string();
    let page = c
        .get(format!("{}/console/apps", server.addr))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let short_pem = std::fs::read_to_string(short).unwrap();
    let resp = c
        .post(format!("{}/console/apps", server.addr))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("app_id", "legacy2"),
            ("name", "legacy"),
            ("public_key", short_pem.as_str()),
            ("return_urls", ""),
        ])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body = resp.text().unwrap();
    assert!(body.contains("1024 bits"), "{body}");
    let listed = inst.run(&["app", "list"]);
    assert!(!listed.contains("legacy2"), "{listed}");
}
