//! The cloud ID-verification API (version 2019-03-07) driven by the official SDKs against a real `shiren serve`:
//! PyPI `alibabacloud-cloudauth20190307` (ACS3-HMAC-SHA256 and `signature_algorithm="v2"`), PyPI
//! `aliyun-python-sdk-cloudauth` (legacy core) and npm `@alicloud/cloudauth20190307`; plus raw-protocol cases no SDK
//! produces (chunked bodies written by hand, `+` versus `%20`, oversized bodies, malformed signatures, a nonce
//! replayed against a second instance on the same database).
//!
//! The client scripts (`tests/sdk/python/cloud.py`, `tests/sdk/node/cloud.cjs`) take case names on the command line
//! and print one JSON line per case; `expect` below says what each case must produce.
use crate::common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{Backend, Instance, Server};
use serde_json::Value;
use shiren::protocol::aliyun::acs;

const APP_ID: &str = "cloudapp01";
const SCENE_ID: &str = "1000";

struct Setup {
    inst: Instance,
    server: Server,
    key_id: String,
    secret: String,
}

impl Setup {
    /// `127.0.0.1:PORT`, the SDKs' endpoint.
    fn endpoint(&self) -> String {
        self.server.addr.trim_start_matches("http://").to_string()
    }
}

fn create_key(inst: &Instance) -> (String, String) {
    let out = inst.run(&["app", "access-key", "create", APP_ID]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let id = lines[0].strip_prefix("AccessKeyId: ").expect(&out);
    let secret = lines[1].strip_prefix("AccessKeySecret: ").expect(&out);
    (id.to_string(), secret.to_string())
}

fn setup(backend: Backend) -> Setup {
    let inst = Instance::new(backend);
    let pem = common::merchant_key(0).public_key().to_pem();
    let pub_file = inst.file("app_public.pem", &pem);
    inst.run(&[
        "app",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "云认证商户",
        "--public-key",
        pub_file.to_str().unwrap(),
    ]);
    let scene = inst.run(&[
        "scene",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "cloud",
        "--scene-id",
        SCENE_ID,
        "--product",
        "ID_PRO",
    ]);
    assert_eq!(scene.trim(), SCENE_ID);
    let (key_id, secret) = create_key(&inst);
    // Keys of an unknown app are refused.
    let none = inst
        .cmd(&["app", "access-key", "create", "nosuchapp"])
        .output()
        .unwrap();
    assert!(!none.status.success());
    let listed = inst.run(&["app", "access-key", "list", APP_ID]);
    assert!(
        listed.contains(&key_id) && listed.contains("active") && !listed.contains(&secret),
        "{listed}"
    );
    // The secret is stored sealed, under a key kept out of the database (a 0600 file in the data dir).
    let key_file = inst.dir.path().join("data/cloud_secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let stored: String = inst.db.with(|db| async move {
        use sea_orm::{ConnectionTrait, Statement};
        let row = db
            .query_one(Statement::from_string(
                db.get_database_backend(),
                "SELECT secret_enc FROM cloud_access_keys".to_string(),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<String>("", "secret_enc").unwrap()
    });
    assert!(!stored.contains(&secret), "the secret is stored in clear");
    let server = inst.serve("127.0.0.1:0".parse().unwrap());
    Setup {
        inst,
        server,
        key_id,
        secret,
    }
}

fn client_env(s: &Setup, cmd: &mut Command) {
    cmd.env("SHIREN_CLOUD_ENDPOINT", s.endpoint())
        .env("SHIREN_CLOUD_KEY_ID", &s.key_id)
        .env("SHIREN_CLOUD_KEY_SECRET", &s.secret)
        .env("SHIREN_CLOUD_SCENE_ID", SCENE_ID);
}

/// Runs a client script and returns its JSON lines by case name.
fn run_client(s: &Setup, mut cmd: Command, name: &str) -> BTreeMap<String, Value> {
    client_env(s, &mut cmd);
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!(
        "--- {name} ({:.1} s) ---\n{stdout}{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} client failed");
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["case"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

fn python(s: &Setup, flavour: &str, cases: &[&str]) -> BTreeMap<String, Value> {
    let sdk = common::sdk_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/python/cloud.py");
    let mut cmd = Command::new(sdk.join("python/bin/python"));
    cmd.arg(script).arg(flavour).args(cases);
    run_client(s, cmd, flavour)
}

fn node(s: &Setup, cases: &[&str]) -> BTreeMap<String, Value> {
    let sdk = common::sdk_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/node/cloud.cjs");
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .args(cases)
        .env("NODE_PATH", sdk.join("node/node_modules"));
    run_client(s, cmd, "node")
}

const ALL_CASES: &[&str] = &[
    "describe_known_scene",
    "describe_unknown_scene",
    "wrong_secret",
    "unknown_key",
    "stale_timestamp",
    "replayed_nonce",
    "unknown_action",
    "special_characters",
];

/// What a case must produce: (HTTP status, Code, raised by the SDK).
fn expect(case: &str, flavour: &str) -> (u64, &'static str, bool) {
    match case {
        "describe_known_scene" | "special_characters" => (200, "406", false),
        "describe_unknown_scene" => (200, "404", false),
        // The legacy SDK recognises its own string-to-sign after the colon and renames the error.
        "wrong_secret" if flavour == "legacy" => (400, "InvalidAccessKeySecret", true),
        "wrong_secret" => (400, "SignatureDoesNotMatch", true),
        "unknown_key" => (404, "InvalidAccessKeyId.NotFound", true),
        "stale_timestamp" => (400, "InvalidTimeStamp.Expired", true),
        "replayed_nonce" => (400, "SignatureNonceUsed", true),
        "unknown_action" => (404, "InvalidAction.NotFound", true),
        other => panic!("no expectation for case {other}"),
    }
}

fn check_results(results: &BTreeMap<String, Value>, flavour: &str, cases: &[&str]) {
    for case in cases {
        let r = results
            .get(*case)
            .unwrap_or_else(|| panic!("{flavour}: no result for {case}"));
        let (status, code, raised) = expect(case, flavour);
        assert_eq!(r["code"], code, "{flavour} {case}: {r}");
        assert_eq!(r["status"], status, "{flavour} {case}: {r}");
        assert_eq!(r["error"] == true, raised, "{flavour} {case}: {r}");
        if !raised {
            let body = &r["body"];
            let request_id = body["RequestId"].as_str().unwrap_or_default();
            assert_eq!(request_id.len(), 36, "{flavour} {case}: {r}");
            assert!(body["Message"].is_string(), "{flavour} {case}: {r}");
            assert!(body.get("ResultObject").is_none_or(Value::is_null), "{r}");
        }
        if *case == "wrong_secret" && flavour != "legacy" {
            let message = r["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("server string to sign is:"),
                "{flavour}: {message}"
            );
        }
    }
}

#[test]
fn official_sdks_on_sqlite() {
    let s = setup(Backend::Sqlite);
    for flavour in ["tea", "tea-v2", "legacy"] {
        let r = python(&s, flavour, ALL_CASES);
        check_results(&r, flavour, ALL_CASES);
    }
    let r = node(&s, ALL_CASES);
    check_results(&r, "node", ALL_CASES);
    // Keys in use show when they were last used.
    let listed = s.inst.run(&["app", "access-key", "list", APP_ID]);
    assert!(!listed.contains("never"), "{listed}");
}

#[test]
fn official_sdks_on_postgres() {
    let s = setup(Backend::Postgres);
    let cases = ["describe_known_scene", "wrong_secret", "replayed_nonce"];
    let r = python(&s, "tea", &cases);
    check_results(&r, "tea", &cases);
    let r = python(&s, "legacy", &cases);
    check_results(&r, "legacy", &cases);
    let r = node(&s, &cases);
    check_results(&r, "node", &cases);
}

// ---- raw protocol -------------------------------------------------------------------------------------------------

/// Sends one HTTP/1.1 request by hand (the body chunked when asked) and returns the status, headers and JSON body.
fn raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    chunked: bool,
) -> (u16, String, Value) {
    let hostport = addr.trim_start_matches("http://");
    let mut stream = TcpStream::connect(hostport).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\n");
    if !headers.iter().any(|(k, _)| k == "host") {
        head.push_str(&format!("host: {hostport}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if chunked {
        head.push_str("transfer-encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    }
    stream.write_all(head.as_bytes()).unwrap();
    if chunked {
        // Uneven chunks, as a streaming client would send them.
        for chunk in body.chunks(7) {
            stream
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .unwrap();
            stream.write_all(chunk).unwrap();
            stream.write_all(b"\r\n").unwrap();
        }
        stream.write_all(b"0\r\n\r\n").unwrap();
    } else {
        stream.write_all(body).unwrap();
    }
    let mut resp = Vec::new();
    let _ = stream.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let json = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, head.to_ascii_lowercase(), json)
}

fn now_utc(offset_secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_secs))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Headers of an ACS3-HMAC-SHA256 request, signed with `secret`.
fn acs3(
    s: &Setup,
    secret: &str,
    action: &str,
    query: &[(&str, &str)],
    body: &[u8],
    nonce: &str,
) -> Vec<(String, String)> {
    let mut h: BTreeMap<String, String> = [
        ("host", s.endpoint()),
        ("x-acs-action", action.to_string()),
        ("x-acs-version", "2019-03-07".to_string()),
        ("x-acs-date", now_utc(0)),
        ("x-acs-signature-nonce", nonce.to_string()),
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
    let q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cr = acs::acs3_canonical_request(
        "POST",
        &q,
        &signed,
        |name| h.get(name).cloned(),
        &acs::sha256_hex(body),
    );
    let sig = acs::acs3_signature(secret, &acs::acs3_string_to_sign(&cr));
    h.insert(
        "authorization".into(),
        format!(
            "ACS3-HMAC-SHA256 Credential={},SignedHeaders={},Signature={sig}",
            s.key_id,
            signed.join(";")
        ),
    );
    h.into_iter().collect()
}

/// RPC (HMAC-SHA1) parameters for DescribeFaceVerify with `extra`, signed with the test key.
fn rpc_params(s: &Setup, extra: &[(&str, &str)], nonce: &str) -> BTreeMap<String, String> {
    rpc_params_with("POST", &s.key_id, &s.secret, extra, nonce)
}

fn rpc_params_with(
    method: &str,
    key_id: &str,
    secret: &str,
    extra: &[(&str, &str)],
    nonce: &str,
) -> BTreeMap<String, String> {
    let mut p: BTreeMap<String, String> = [
        ("Action", "DescribeFaceVerify"),
        ("Version", "2019-03-07"),
        ("Format", "JSON"),
        ("AccessKeyId", key_id),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce),
    ]
    .iter()
    .chain(extra.iter())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    p.insert("Timestamp".into(), now_utc(0));
    let sig = acs::rpc_signature(secret, &acs::rpc_string_to_sign(method, &p));
    p.insert("Signature".into(), sig);
    p
}

/// Form-encodes pairs, spaces as `plus` says (`+` or `%20`).
fn form(p: &BTreeMap<String, String>, plus: bool) -> String {
    p.iter()
        .map(|(k, v)| {
            let v = acs::percent_encode(v);
            let v = if plus { v.replace("%20", "+") } else { v };
            format!("{}={v}", acs::percent_encode(k))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn form_headers() -> Vec<(String, String)> {
    vec![(
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    )]
}

#[test]
fn raw_protocol() {
    let s = setup(Backend::Sqlite);
    let addr = s.server.addr.clone();
    let body = format!("SceneId={SCENE_ID}&CertifyId=sha+0%200");

    // A chunked ACS3 body, hashed as received.
    let n = nonce();
    let (status, head, json) = raw(
        &addr,
        "POST",
        "/",
        &acs3(
            &s,
            &s.secret,
            "DescribeFaceVerify",
            &[],
            body.as_bytes(),
            &n,
        ),
        body.as_bytes(),
        true,
    );
    assert_eq!(
        (status, json["Code"].as_str()),
        (200, Some("406")),
        "{json}"
    );
    assert!(
        head.contains("content-type: application/json;charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("x-acs-request-id: "), "{head}");

    // The same chunked request again: its nonce is spent.
    let (status, _, json) = raw(
        &addr,
        "POST",
        "/",
        &acs3(
            &s,
            &s.secret,
            "DescribeFaceVerify",
            &[],
            body.as_bytes(),
            &n,
        ),
        body.as_bytes(),
        true,
    );
    assert_eq!(
        (status, json["Code"].as_str()),
        (400, Some("SignatureNonceUsed"))
    );
    for key in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
        assert!(json[key].is_string(), "{key} in {json}");
    }

    // `+` and `%20` are both spaces (the signature covers the decoded value either way), in body and query.
    for plus in [true, false] {
        let p = rpc_params(
            &s,
            &[("SceneId", SCENE_ID), ("CertifyId", "sha 1 2")],
            &nonce(),
        );
        let (status, _, json) = raw(
            &addr,
            "POST",
            "/",
            &form_headers(),
            form(&p, plus).as_bytes(),
            false,
        );
        assert_eq!(
            (status, json["Code"].as_str()),
            (200, Some("406")),
            "plus={plus}: {json}"
        );
        let p = rpc_params_with(
            "GET",
            &s.key_id,
            &s.secret,
            &[("SceneId", SCENE_ID), ("CertifyId", "sha 1 2")],
            &nonce(),
        );
        let (status, _, json) = raw(
            &addr,
            "GET",
            &format!("/?{}", form(&p, plus)),
            &[],
            b"",
            false,
        );
        assert_eq!(
            (status, json["Code"].as_str()),
            (200, Some("406")),
            "GET plus={plus}: {json}"
        );
    }

    // An RPC signature over another value does not match, and the message carries the server's string-to-sign
    // after a colon, as the legacy SDK expects.
    let mut p = rpc_params(&s, &[("SceneId", SCENE_ID)], &nonce());
    p.insert("SceneId".into(), "1001".into());
    let (status, _, json) = raw(
        &addr,
        "POST",
        "/",
        &form_headers(),
        form(&p, true).as_bytes(),
        false,
    );
    assert_eq!(
        (status, json["Code"].as_str()),
        (400, Some("SignatureDoesNotMatch"))
    );
    let message = json["Message"].as_str().unwrap();
    let sts = message.split(':').nth(1).unwrap();
    assert_eq!(sts, acs::rpc_string_to_sign("POST", &p));

    // A body that does not match x-acs-content-sha256.
    let mut h = acs3(
        &s,
        &s.secret,
        "DescribeFaceVerify",
        &[],
        body.as_bytes(),
        &nonce(),
    );
    let (status, _, json) = raw(
        &addr,
        "POST",
        "/",
        &h,
        b"SceneId=1000&CertifyId=other",
        false,
    );
    assert_eq!(
        (status, json["Code"].as_str()),
        (400, Some("InvalidParameter")),
        "{json}"
    );

    // Malformed or missing signatures, a wrong version, a missing action.
    for (k, v) in h.iter_mut() {
        if k == "authorization" {
            *v = "ACS3-HMAC-SHA256 Credential=x".into();
        }
    }
    let (status, _, json) = raw(&addr, "POST", "/", &h, body.as_bytes(), false);
    assert_eq!(
        (status, json["Code"].as_str()),
        (400, Some("IncompleteSignature")),
        "{json}"
    );
    let unsigned = format!("/?Action=DescribeFaceVerify&Version=2019-03-07&SceneId={SCENE_ID}");
    let (status, _, json) = raw(&addr, "GET", &unsigned, &[], b"", false);
    assert_eq!(
        (status, json["Code"].as_str()),
        (400, Some("MissingParameter")),
        "{json}"
    );
    let (status, _, json) = raw(
        &addr,
        "GET",
        "/?Action=DescribeFaceVerify&Version=2017-01-01",
        &[],
        b"",
        false,
    );
    assert_eq!(
        (status, json["Code"].as_str()),
        (400, Some("InvalidVersion")),
        "{json}"
    );
    let (status, _, json) = raw(
        &addr,
        "POST",
        "/",
        &form_headers(),
        b"Version=2019-03-07",
        false,
    );
    assert_eq!(
        (status, json["Code"].as_str()),
        (400, Some("MissingParameter")),
        "{json}"
    );
    let (status, _, json) = raw(
        &addr,
        "POST",
        "/",
        &form_headers(),
        b"Action=X&Version=2019-03-07&A=%FF",
        false,
    );
    assert_eq!(
        (status, json["Code"].as_str()),
        (400, Some("InvalidParameter")),
        "{json}"
    );

    // A body over the limit (16 MiB by default) is refused with a JSON error, chunked or not.
    let big = vec![b'a'; 16 * 1024 * 1024 + 1];
    let (status, _, json) = raw(&addr, "POST", "/", &form_headers(), &big, false);
    assert_eq!(
        (status, json["Code"].as_str()),
        (413, Some("RequestTooLarge")),
        "{json}"
    );

    // The nonce table is shared: a request accepted by one instance is a replay at another on the same database.
    let second = s.inst.serve("127.0.0.1:0".parse().unwrap());
    let p = rpc_params(&s, &[("SceneId", SCENE_ID)], &nonce());
    let (status, _, _) = raw(
        &addr,
        "POST",
        "/",
        &form_headers(),
        form(&p, true).as_bytes(),
        false,
    );
    assert_eq!(status, 200);
    let (status, _, json) = raw(
        &second.addr,
        "POST",
        "/",
        &form_headers(),
        form(&p, true).as_bytes(),
        false,
    );
    assert_eq!(
        (status, json["Code"].as_str()),
        (400, Some("SignatureNonceUsed")),
        "{json}"
    );

    // Old nonces are purged (here: all of them, by moving the cut-off past now).
    let purged = s.inst.db.with(|db| async move {
        shiren::db::cloud_keys::purge_nonces(&db, i64::MAX)
            .await
            .unwrap()
    });
    assert!(purged >= 5, "{purged}");

    // Signature verification cost: the HMAC part alone, measured here for the record.
    let started = Instant::now();
    let sts = acs::rpc_string_to_sign("POST", &p);
    for _ in 0..10_000 {
        assert!(acs::rpc_verify(&s.secret, &sts, &p["Signature"]));
    }
    println!(
        "RPC signature check: {:.2} µs each",
        started.elapsed().as_secs_f64() * 1e6 / 10_000.0
    );

    // Disabled keys and keys of disabled apps are refused as inactive.
    s.inst.run(&["app", "access-key", "disable", &s.key_id]);
    let p = rpc_params(&s, &[("SceneId", SCENE_ID)], &nonce());
    let (status, _, json) = raw(
        &addr,
        "POST",
        "/",
        &form_headers(),
        form(&p, true).as_bytes(),
        false,
    );
    assert_eq!(
        (status, json["Code"].as_str()),
        (400, Some("InvalidAccessKeyId.Inactive")),
        "{json}"
    );
    let (key_id, secret) = create_key(&s.inst);
    s.inst.run(&["app", "disable", APP_ID]);
    let p = rpc_params_with("POST", &key_id, &secret, &[("SceneId", SCENE_ID)], &nonce());
    let (status, _, json) = raw(
        &addr,
        "POST",
        "/",
        &form_headers(),
        form(&p, true).as_bytes(),
        false,
    );
    assert_eq!(
        (status, json["Code"].as_str()),
        (400, Some("InvalidAccessKeyId.Inactive")),
        "{json}"
    );
}
