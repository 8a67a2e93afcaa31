//! The fuzz corpora against a real `shiren serve`: every seed and every input a fuzzer once crashed on, sent the way a
//! client would send it (form bodies to `/gateway.do`, requests to the cloud front door, images to
//! `LivenessFaceVerify`, videos to `ContrastFaceVerify` with `ID_MIN_VIDEO`, attempt uploads to the hosted page). The
//! server answers each without a 5xx, stays up, and stays within its memory budget.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;

use crate::common::{self, Backend, Instance, Server};

const APP_ID: &str = "2021000000000077";
const LIVENESS_SCENE: &str = "7701";
const VIDEO_SCENE: &str = "7702";
const RSS_BUDGET_MIB: u64 = 1024;

/// Every seed and artifact of a fuzz target.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "artifacts"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) {
            let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                let data = std::fs::read(&f).unwrap();
                out.push((f, data));
            }
        }
    }
    assert!(!out.is_empty(), "no inputs for {target}");
    out
}

struct Setup {
    _inst: Instance,
    server: Server,
    key: (String, String),
    client: reqwest::blocking::Client,
}

fn setup() -> Setup {
    let inst = Instance::new(Backend::Sqlite);
    let pem = inst.file("app.pem", &common::merchant_key(0).public_key().to_pem());
    inst.run(&[
        "app",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "fuzz corpora",
        "--public-key",
        pem.to_str().unwrap(),
        "--return-url",
        "https://m.example/",
    ]);
    for (id, product) in [(LIVENESS_SCENE, "LR_FR_MIN"), (VIDEO_SCENE, "ID_MIN_VIDEO")] {
        inst.run(&[
            "scene",
            "create",
            "--app-id",
            APP_ID,
            "--name",
            product,
            "--scene-id",
            id,
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
    let key = (field("AccessKeyId:"), field("AccessKeySecret:"));
    let server = inst.serve("127.0.0.1:0".parse().unwrap());
    Setup {
        _inst: inst,
        server,
        key,
        client: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
    }
}

impl Setup {
    /// The status of a request; the server must not have failed on it.
    fn check(&mut self, what: &str, path: &Path, r: reqwest::blocking::RequestBuilder) -> Value {
        let r = r
            .send()
            .unwrap_or_else(|e| panic!("{what} {}: {e}", path.display()));
        let status = r.status().as_u16();
        let body = r.text().unwrap_or_default();
        assert!(
            status < 500,
            "{what} {}: HTTP {status} {body}",
            path.display()
        );
        assert!(self.server.alive(), "the server died on {}", path.display());
        if std::env::var("FUZZ_SERVER_VERBOSE").is_ok() {
            eprintln!(
                "{what} {}: {status} {}",
                path.display(),
                body.chars().take(160).collect::<String>()
            );
        }
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    /// A cloud action signed in the RPC style with the app's real key, so the parameters reach the action.
    fn cloud(&mut self, path: &Path, action: &str, params: &[(&str, String)]) -> Value {
        let mut p: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for (k, v) in [
            ("Action", action.to_string()),
            ("AccessKeyId", self.key.0.clone()),
            ("Format", "JSON".into()),
            ("SignatureMethod", "HMAC-SHA1".into()),
            ("SignatureVersion", "1.0".into()),
            ("SignatureNonce", hex::encode(rand::random::<[u8; 16]>())),
            (
                "Timestamp",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ),
            ("Version", "2019-03-07".into()),
        ] {
            p.insert(k.to_string(), v);
        }
        let sts = shiren::protocol::aliyun::acs::rpc_string_to_sign("POST", &p);
        p.insert(
            "Signature".into(),
            shiren::protocol::aliyun::acs::rpc_signature(&self.key.1, &sts),
        );
        let body = p
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    shiren::protocol::aliyun::acs::percent_encode(k),
                    shiren::protocol::aliyun::acs::percent_encode(v)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let url = format!("{}/", self.server.addr);
        let r = self
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.check(action, path, r)
    }
}

#[test]
fn every_fuzz_input_is_answered_by_a_real_server_without_a_5xx() {
    let _heavy = common::heavy();
    let mut s = setup();
    let base = s.server.addr.clone();
    let mut sent = 0;

    // The gateway: the query string up to the first newline, the form body after it.
    for (path, data) in inputs("gateway_form") {
        let (query, body) = match data.iter().position(|b| *b == b'\n') {
            Some(i) => (
                String::from_utf8_lossy(&data[..i]).into_owned(),
                data[i + 1..].to_vec(),
            ),
            None => (String::new(), data.clone()),
        };
        // Bytes a URL cannot carry are percent-encoded, as a client would have to.
        let query: String = query
            .bytes()
            .map(|b| {
                if b.is_ascii_graphic() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let r = s
            .client
            .post(format!("{base}/gateway.do?{query}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        s.check("gateway", &path, r);
        sent += 1;
    }

    // The cloud front door, each request as the fuzz target reads it.
    for (path, data) in inputs("cloud_signature") {
        let req = shiren::fuzzing::cloud_request(&data);
        let method =
            reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let mut r = s
            .client
            .request(method, format!("{base}/?{}", req.query.replace(' ', "%20")))
            .body(req.body.clone());
        for (k, v) in &req.headers {
            if k != "host" && k != "content-length" {
                r = r.header(k.as_str(), v.as_str());
            }
        }
        s.check("cloud", &path, r);
        sent += 1;
    }

    // biz_content through a signed initialize, and the cloud parameters through a signed InitFaceVerify.
    for (path, data) in inputs("biz_params") {
        let text = String::from_utf8_lossy(&data).into_owned();
        let ts = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
        let form = shiren::protocol::alipay::merchant::signed_form(
            common::merchant_key(0),
            shiren::protocol::alipay::SignType::Rsa2,
            &[
                ("app_id", APP_ID),
                ("method", "alipay.user.certify.open.initialize"),
                ("charset", "utf-8"),
                ("sign_type", "RSA2"),
                ("timestamp", &ts),
                ("version", "1.0"),
                ("biz_content", &text),
            ],
            shiren::protocol::alipay::params::Charset::Utf8,
        );
        let r = s
            .client
            .post(format!("{base}/gateway.do"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        s.check("initialize", &path, r);
        let params: Vec<(String, String)> =
            shiren::protocol::aliyun::gateway::decode_pairs(&data).unwrap_or_default();
        let params: Vec<(&str, String)> = params
            .iter()
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        s.cloud(&path, "InitFaceVerify", &params);
        sent += 2;
    }

    // Images to the decode gate through LivenessFaceVerify.
    for (path, data) in inputs("image_gate") {
        s.cloud(
            &path,
            "LivenessFaceVerify",
            &[
                ("SceneId", LIVENESS_SCENE.into()),
                ("OuterOrderNo", format!("img-{sent}")),
                ("ProductCode", "LR_FR_MIN".into()),
                ("FaceContrastPicture", B64.encode(&data)),
            ],
        );
        sent += 1;
    }

    // Videos to demux and decode through ContrastFaceVerify (ID_MIN_VIDEO).
    for (path, data) in inputs("video") {
        s.cloud(
            &path,
            "ContrastFaceVerify",
            &[
                ("SceneId", VIDEO_SCENE.into()),
                ("OuterOrderNo", format!("video-{sent}")),
                ("ProductCode", "ID_MIN_VIDEO".into()),
                ("CertType", "IDENTITY_CARD".into()),
                ("CertName", "测试".into()),
                ("CertNo", common::test_cert_no()),
                ("FaceContrastPicture", B64.encode(&data)),
            ],
        );
        sent += 1;
    }

    // Attempt uploads to a hosted page (a made-up token: refused, never a failure).
    for (path, data) in inputs("hosted_upload") {
        let r = s
            .client
            .post(format!("{base}/h5/certify/{}/attempt", "f".repeat(32)))
            .header("content-type", "application/json")
            .body(data);
        s.check("attempt", &path, r);
        sent += 1;
    }

    assert!(s.server.alive());
    let health = s.client.get(format!("{base}/healthz")).send().unwrap();
    assert_eq!(health.status(), 200);
    let peak = s.server.peak_rss_mib();
    eprintln!("{sent} fuzz inputs sent to a real server: no 5xx, still up, peak RSS {peak} MiB");
    assert!(peak < RSS_BUDGET_MIB, "peak RSS {peak} MiB");
}
