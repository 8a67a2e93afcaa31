//! The admin API against its committed OpenAPI document (`openapi/admin.json`): schemathesis (PyPI, pinned with
//! hashes in tests/hardening/schemathesis/) generates requests for every operation, valid and malformed, against a
//! real `shiren serve` on SQLite holding apps, a scene, verifications and billing records, and checks each answer:
//! no 5xx, and status code, content type, headers and body as the document says. Three runs: with the admin token
//! (200, 400 and 404 answers, every parse error in the documented envelope), with a wrong token (401 until the
//! address is locked out, then 429 with `Retry-After`), and without any token while locked out (401).
//!
//! Knobs: `SHIREN_SCHEMATHESIS_EXAMPLES` (examples per operation, default 100), `SHIREN_SCHEMATHESIS_SEED` (default
//! fixed, so CI is repeatable; set another to explore).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::common::{self, Backend, Instance, Server};

const APP_ID: &str = "2021000000000031";
const OTHER_APP: &str = "2021000000000032";
const SCENE: i64 = 31;
const ADMIN_TOKEN: &str = "schema-admin-token-0123456789abcdef";
const DAY: i64 = 86_400;
/// The checks of every run: they cover every documented part of a response.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";

/// The virtualenv with schemathesis, installed on first use by tests/hardening/schemathesis/install.sh.
fn schemathesis() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hardening/schemathesis/install.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tests/hardening/schemathesis/install.sh failed"
        );
        PathBuf::from(
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .lines()
                .last()
                .unwrap(),
        )
    })
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
        "契约测试",
        "--public-key",
        pub_file.to_str().unwrap(),
    ]);
}

/// Twelve verifications over the last three days, of two apps (one with a scene): undecided, failed and passed,
/// the decided ones with their verdict and (passed) billing record written in one transaction, as the server does.
/// Returns the certify_ids.
async fn seed(db: sea_orm::DatabaseConnection, keys: shiren::domain::seal::KeyRing) -> Vec<String> {
    use shiren::db::verifications::{self, NewVerification, Verdict};
    let now = chrono::Utc::now().timestamp();
    let mut ids = Vec::new();
    for i in 0..12i64 {
        let t = now - (i % 3) * DAY - 60 * (i + 1);
        let (app, scene) = if i % 4 == 3 {
            (OTHER_APP, None)
        } else {
            (APP_ID, Some(SCENE))
        };
        let order = format!("schema-order-{i:02}");
        let biz = json!({
            "outer_order_no": order,
            "biz_code": "FACE",
            "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD",
                "cert_name": "张三", "cert_no": common::test_cert_no()},
            "merchant_config": {"return_url": "https://m.example/back"},
        })
        .to_string();
        let request = shiren::domain::request::parse_initialize(
            &biz,
            shiren::domain::request::Limits {
                max_contrast_picture_bytes: 1 << 20,
                today: chrono::Utc::now().date_naive(),
            },
        )
        .unwrap();
        let id = format!("schema{i:02}{}", hex::encode(rand::random::<[u8; 10]>()));
        let new = NewVerification {
            keys: &keys,
            certify_id: &id,
            app_id: app,
            request: &request,
            contrast_picture_key: None,
            scene_id: scene,
            now: t,
            expires_at: t + 3600,
            api: "alipay",
            callback: None,
        };
        if i % 3 == 0 {
            verifications::insert(&db, new).await.unwrap();
        } else {
            let passed = i % 3 == 1;
            let reason = (!passed).then_some("FACE_MISMATCH");
            verifications::insert_decided(
                &db,
                new,
                Verdict {
                    certify_id: &id,
                    passed,
                    fail_reason: reason,
                    decision_json: "{}",
                    identity_info: "{}",
                    material_info: "{}",
                    face_image_key: None,
                    billing: shiren::billing::billing_event(
                        "FACE",
                        passed,
                        app,
                        scene,
                        &order,
                        shiren::billing::Calendar::UTC,
                    ),
                    callback_code: if passed { "200" } else { "205" },
                },
            )
            .await
            .unwrap();
        }
        ids.push(id);
    }
    ids
}

/// What one `st run` did: its JSON report, and the status codes it received per operation.
struct Run {
    report: Value,
    statuses: BTreeMap<String, BTreeMap<u16, u32>>,
}

impl Run {
    fn count(&self, op: &str, status: u16) -> u32 {
        self.statuses
            .get(op)
            .and_then(|s| s.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// The status codes of the documented operations, summed.
    fn all_statuses(&self) -> BTreeMap<u16, u32> {
        let mut all = BTreeMap::new();
        for (_, s) in self.statuses.iter().filter(|(op, _)| documented(op)) {
            for (k, v) in s {
                *all.entry(*k).or_insert(0) += v;
            }
        }
        all
    }

    fn summary(&self) -> String {
        let (documented, other): (BTreeMap<_, _>, BTreeMap<_, _>) =
            self.statuses.iter().partition(|(op, _)| documented(op));
        let warnings: Vec<&String> = self.report["warnings"]
            .as_object()
            .map(|w| {
                w.iter()
                    .filter(|(_, v)| v.as_array().is_some_and(|a| !a.is_empty()))
                    .map(|(k, _)| k)
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "{} operations tested, {} test cases, {} with failures; statuses {:?}; {} requests with methods the \
             document does not have; warnings {:?}",
            self.report["operations"]["tested"],
            self.report["test_cases"]["generated"],
            self.report["test_cases"]["with_failures"],
            documented,
            other.values().flat_map(|s| s.values()).sum::<u32>(),
            warnings
        )
    }
}

/// The operation a request went to, named as in the document (`GET /verifications/{certify_id}`).
/// Whether the document has the operation: every `GET`, and the deletion of a verification's personal data.
fn documented(op: &str) -> bool {
    op.starts_with("GET ") || op == "DELETE /verifications/{certify_id}"
}

fn operation(method: &str, uri: &str) -> String {
    let path = uri
        .split_once("/admin/api")
        .map(|(_, p)| p)
        .unwrap_or(uri)
        .split('?')
        .next()
        .unwrap_or_default();
    let path = if path.starts_with("/verifications/") {
        "/verifications/{certify_id}"
    } else {
        path
    };
    format!("{method} {path}")
}

/// Runs schemathesis against `server` with the committed document, optionally with an `Authorization` header.
fn st_run(inst: &Instance, server: &Server, name: &str, auth: Option<&str>, examples: u32) -> Run {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/admin.json");
    let reports = inst.dir.path().join(format!("st-{name}"));
    std::fs::create_dir_all(&reports).unwrap();
    let seed = std::env::var("SHIREN_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261204".into());
    let mut cmd = Command::new(schemathesis().join("bin/st"));
    cmd.current_dir(&reports)
        .env("NO_COLOR", "1")
        .args(["run", doc.to_str().unwrap()])
        .args(["--url", &format!("{}/admin/api", server.addr)])
        .args(["--checks", &CHECKS.replace(' ', "")])
        .args(["--max-examples", &examples.to_string()])
        .args(["--seed", &seed])
        .args(["--workers", "1", "--request-timeout", "10"])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--report", "json,ndjson", "--report-dir"])
        .arg(&reports);
    if let Some(a) = auth {
        cmd.args(["--header", &format!("Authorization: {a}")]);
    }
    eprintln!("schemathesis ({name}): {cmd:?}");
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let find = |ext: &str| {
        std::fs::read_dir(&reports)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == ext))
            .unwrap_or_else(|| panic!("no {ext} report from schemathesis:\n{stdout}"))
    };
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(find("json")).unwrap()).unwrap();
    let mut statuses: BTreeMap<String, BTreeMap<u16, u32>> = BTreeMap::new();
    for line in std::fs::read_to_string(find("ndjson")).unwrap().lines() {
        let event: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        let Some(interactions) = event["ScenarioFinished"]["recorder"]["interactions"].as_object()
        else {
            continue;
        };
        for i in interactions.values() {
            let (Some(method), Some(uri), Some(status)) = (
                i["request"]["method"].as_str(),
                i["request"]["uri"].as_str(),
                i["response"]["status_code"].as_u64(),
            ) else {
                continue;
            };
            *statuses
                .entry(operation(method, uri))
                .or_default()
                .entry(status as u16)
                .or_insert(0) += 1;
        }
    }
    let run = Run { report, statuses };
    eprintln!("schemathesis ({name}): {}", run.summary());
    assert!(
        out.status.success()
            && run.report["failures"]
                .as_array()
                .is_some_and(|f| f.is_empty())
            && run.report["errors"]
                .as_array()
                .is_some_and(|e| e.is_empty()),
        "schemathesis ({name}) found responses that break the document:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(run.report["operations"]["tested"], 8, "{stdout}");
    run
}

#[test]
fn admin_api_answers_as_its_openapi_document_says() {
    let examples: u32 = std::env::var("SHIREN_SCHEMATHESIS_EXAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    schemathesis();
    let inst = Instance::new(Backend::Sqlite);
    create_app(&inst, APP_ID, 0);
    create_app(&inst, OTHER_APP, 1);
    inst.run(&[
        "scene",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "开户",
        "--scene-id",
        &SCENE.to_string(),
    ]);
    let keys = inst.store().keys().ring();
    let ids = inst.db.with(|db| seed(db, keys));
    let mut server = inst.serve_with(
        "127.0.0.1:0".parse().unwrap(),
        // Errors only: the refused guesses below would each log a warning.
        &[("SHIREN_ADMIN_TOKEN", ADMIN_TOKEN), ("RUST_LOG", "error")],
    );
    let http = reqwest::blocking::Client::new();
    let api = format!("{}/admin/api", server.addr);

    // The data is there: the listings return rows, so the generated requests reach real answers.
    let page: Value = http
        .get(format!("{api}/verifications?limit=500"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(ids.len()),
        "{page}"
    );

    // 1. With the admin token.
    let started = std::time::Instant::now();
    let valid = st_run(
        &inst,
        &server,
        "token",
        Some(&format!("Bearer {ADMIN_TOKEN}")),
        examples,
    );
    eprintln!(
        "schemathesis (token): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(server.alive(), "the server is still up");
    for op in [
        "GET /verifications",
        "GET /billing/records",
        "GET /billing/daily",
        "GET /billing/export.csv",
        "GET /scenes",
    ] {
        assert!(
            valid.count(op, 200) > 0,
            "{op}: no 200 answer; {}",
            valid.summary()
        );
    }
    for op in [
        "GET /verifications",
        "GET /billing/records",
        "GET /billing/daily",
        "GET /billing/export.csv",
    ] {
        assert!(
            valid.count(op, 400) > 0,
            "{op}: no 400 answer; {}",
            valid.summary()
        );
    }
    assert!(
        valid.count("GET /verifications/{certify_id}", 404) > 0,
        "{}",
        valid.summary()
    );
    // Only documented answers: 200, 400 and 404 (and 409 for a deletion repeated), and 401 where schemathesis left
    // the token out; 405 for the methods the document does not have (schemathesis tries them too).
    for (op, statuses) in &valid.statuses {
        let allowed: &[u16] = if op.starts_with("GET ") {
            &[200, 400, 401, 404]
        } else if documented(op) {
            &[200, 400, 401, 404, 409]
        } else {
            &[405]
        };
        assert!(
            statuses.keys().all(|s| allowed.contains(s)),
            "{op}: {statuses:?}"
        );
    }
    // A known certify_id answers 200 through the documented path (schemathesis rarely guesses one).
    for id in &ids[..3] {
        let r = http
            .get(format!("{api}/verifications/{id}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.json::<Value>().unwrap()["certify_id"], id.as_str());
    }

    // 2. With a wrong token: 401 until the address has too many failures, then 429 with Retry-After.
    let wrong = st_run(
        &inst,
        &server,
        "wrong-token",
        Some("Bearer not-the-admin-token"),
        5,
    );
    assert!(server.alive(), "the server is still up");
    let all = wrong.all_statuses();
    assert!(
        all.keys().all(|s| [401, 429].contains(s))
            && all.contains_key(&401)
            && all.contains_key(&429),
        "a wrong token gets 401, then 429: {all:?}"
    );

    // 3. Without a token while the address is locked out: 401 (a missing token is not a guess).
    let none = st_run(&inst, &server, "no-token", None, 5);
    let all = none.all_statuses();
    assert!(
        all.keys().all(|s| [401, 429].contains(s)) && all.contains_key(&401),
        "no token gets 401: {all:?}"
    );

    // The envelopes themselves, as an operator's client sees them.
    let r = http.get(format!("{api}/scenes")).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        r.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(r.json::<Value>().unwrap()["code"], "UNAUTHORIZED");
    let r = http
        .get(format!("{api}/scenes"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        429,
        "locked out, even with the right token"
    );
    let retry: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.json::<Value>().unwrap()["code"], "TOO_MANY_FAILURES");
    assert!(server.alive(), "the server is still up");
    server.kill();
}

/// The committed document promises, for every operation, the refusals the server sends before any handler runs
/// (bad parameters, no or wrong token, a locked-out address, a failed database), each in the error envelope.
#[test]
fn every_admin_operation_documents_its_refusals() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/admin.json"))
            .unwrap(),
    )
    .unwrap();
    let ops: Vec<(&String, &Value)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().values().map(move |op| (path, op)))
        .collect();
    assert_eq!(ops.len(), 8);
    for (path, op) in ops {
        let responses = &op["responses"];
        assert!(responses["200"].is_object(), "{path}: 200");
        for status in ["400", "401", "429", "503"] {
            assert_eq!(
                responses[status]["content"]["application/json; charset=utf-8"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{path}: {status}"
            );
        }
        assert!(
            responses["401"]["headers"]["WWW-AUTHENTICATE"].is_object(),
            "{path}"
        );
        assert!(
            responses["429"]["headers"]["RETRY-AFTER"].is_object(),
            "{path}"
        );
        assert_eq!(op["security"][0]["AdminAuth"], json!([]), "{path}");
    }
    assert!(
        doc["paths"]["/billing/export.csv"]["get"]["responses"]["200"]["content"]
            ["text/csv; charset=utf-8"]
            .is_object()
    );
    assert_eq!(
        doc["paths"]["/verifications/{certify_id}"]["get"]["responses"]["404"]["content"]
            ["application/json; charset=utf-8"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
}
