//! The hardening issue's smaller faults against a real `shiren serve`: HSTS on an https deployment, `no-store` on
//! admin API answers, `nosniff` on picture links, the hosted page framable only by itself and configured origins,
//! `/metrics` behind an optional bearer token, console logout remembered across a restart, short admin tokens
//! refused at start, and private file modes after a real verification. (The external authority's nonce binding is
//! tested against a stand-in authority in tests/suite/authority_http.rs.)
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::common::{self, Backend, Instance, Server};

const ADMIN_TOKEN: &str = "hardening-admin-token-0123456789";
const METRICS_TOKEN: &str = "hardening-metrics-token-abcdef0123";
const APP_ID: &str = "2021000000000812";

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

fn header(r: &reqwest::blocking::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The `name=value` of the cookie `name` a response sets.
fn set_cookie(r: &reqwest::blocking::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// Runs `shiren serve` with `env`, expecting it to refuse to start; returns what it printed on stderr.
fn refused_at_start(inst: &Instance, env: &[(&str, &str)]) -> String {
    let mut child = inst
        .cmd(&["serve"])
        .env("SHIREN_BIND", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("shiren serve with {env:?} did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "exit {status:?}");
    assert!(!out.contains("listening on"), "{out}");
    err
}

#[test]
fn short_admin_token_and_plain_http_authority_refused_at_start() {
    let inst = Instance::new(Backend::Sqlite);
    let err = refused_at_start(&inst, &[("SHIREN_ADMIN_TOKEN", "short-token-15c")]);
    assert!(
        err.contains("SHIREN_ADMIN_TOKEN") && err.contains("at least 16 characters"),
        "{err}"
    );
    // Same from the config file.
    let file = inst.file("shiren.toml", "admin_token = \"0123456789\"\n");
    let err = refused_at_start(&inst, &[("SHIREN_CONFIG", file.to_str().unwrap())]);
    assert!(err.contains("at least 16 characters"), "{err}");
    let err = refused_at_start(&inst, &[("SHIREN_METRICS_TOKEN", "metrics")]);
    assert!(err.contains("SHIREN_METRICS_TOKEN"), "{err}");
    // Frame ancestors must be origins: `*` would reopen the page to every site.
    for bad in [
        "*",
        "https://bank.example/path",
        "https://a.example; script-src *",
    ] {
        let err = refused_at_start(&inst, &[("SHIREN_FRAME_ANCESTORS", bad)]);
        assert!(err.contains("SHIREN_FRAME_ANCESTORS"), "{bad}: {err}");
    }
    // An external authority over plain http is refused outside tests.
    let err = refused_at_start(
        &inst,
        &[
            ("SHIREN_AUTHORITY_URL", "http://127.0.0.1:9/lookup"),
            ("SHIREN_AUTHORITY_SECRET", "authority-secret-0123456789"),
        ],
    );
    assert!(err.contains("https"), "{err}");
    // 16 characters are enough.
    let srv = inst.serve_with(any_port(), &[("SHIREN_ADMIN_TOKEN", "sixteen-chars-ok")]);
    let r = client()
        .get(format!("{}/admin/api/scenes", srv.addr))
        .bearer_auth("sixteen-chars-ok")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn headers_on_an_https_deployment_and_the_metrics_token() {
    let inst = Instance::new(Backend::Sqlite);
    let srv = inst.serve_with(
        any_port(),
        &[
            ("SHIREN_PUBLIC_URL", "https://verify.bank.example"),
            ("SHIREN_ADMIN_TOKEN", ADMIN_TOKEN),
            ("SHIREN_METRICS_TOKEN", METRICS_TOKEN),
        ],
    );
    let c = client();
    let get = |path: &str, bearer: Option<&str>| {
        let mut r = c.get(format!("{}{path}", srv.addr));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        r.send().unwrap()
    };
    // HSTS on every response: pages, APIs, errors, unknown paths, refusals.
    let checks: Vec<(&str, Option<&str>, u16)> = vec![
        ("/healthz", None, 200),
        ("/readyz", None, 200),
        ("/metrics", None, 401),
        ("/metrics", Some(METRICS_TOKEN), 200),
        ("/admin/api/scenes", Some(ADMIN_TOKEN), 200),
        ("/admin/api/scenes", None, 401),
        ("/h5/certify/not-a-token", None, 404),
        ("/console/login", None, 200),
        ("/cloud/picture?token=nothing", None, 404),
        ("/no/such/path", None, 404),
    ];
    for (path, bearer, status) in checks {
        let r = get(path, bearer);
        // Some refusals differ in detail between paths (400/404); the point is the header.
        if status != 404 {
            assert_eq!(r.status().as_u16(), status, "{path}");
        }
        assert_eq!(
            header(&r, "strict-transport-security").as_deref(),
            Some("max-age=31536000"),
            "{path}"
        );
    }
    // The metrics token: missing, wrong, another scheme, the admin token: 401; the right one: the metrics.
    for bad in [
        None,
        Some("Bearer wrong-token-0000000000000000"),
        Some("Bearer "),
        Some("Basic aGFyZGVuaW5nOm1ldHJpY3M="),
        Some("Bearer hardening-admin-token-0123456789"),
    ] {
        let mut r = c.get(format!("{}/metrics", srv.addr));
        if let Some(b) = bad {
            r = r.header("authorization", b);
        }
        let r = r.send().unwrap();
        assert_eq!(r.status().as_u16(), 401, "{bad:?}");
        assert!(header(&r, "www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
        assert!(!r.text().unwrap().contains("shiren_http_requests_total"));
    }
    let r = get("/metrics", Some(METRICS_TOKEN));
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().unwrap().contains("shiren_http_requests_total"));
    // Admin API answers are never cached, errors included.
    for (bearer, status) in [(Some(ADMIN_TOKEN), 200), (None, 401)] {
        let r = get("/admin/api/scenes", bearer);
        assert_eq!(r.status().as_u16(), status);
        assert_eq!(
            header(&r, "cache-control").as_deref(),
            Some("no-store"),
            "{status}"
        );
    }
    let r = get("/admin/api/verifications/no-such-id", Some(ADMIN_TOKEN));
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
    // The hosted error page: framable by shiren itself only.
    let csp = header(
        &get("/h5/certify/not-a-token", None),
        "content-security-policy",
    )
    .unwrap();
    assert!(csp.contains("frame-ancestors 'self';"), "{csp}");
    drop(srv);

    // Plain http: no HSTS (browsers ignore it there, and it would pin a host that has no https). /metrics without a
    // token stays open. Configured frame ancestors join 'self'.
    let srv = inst.serve_with(
        any_port(),
        &[(
            "SHIREN_FRAME_ANCESTORS",
            "https://bank.example, https://*.bank.example",
        )],
    );
    for path in ["/healthz", "/metrics", "/h5/certify/not-a-token"] {
        let r = c.get(format!("{}{path}", srv.addr)).send().unwrap();
        assert!(header(&r, "strict-transport-security").is_none(), "{path}");
        if path == "/metrics" {
            assert_eq!(r.status().as_u16(), 200);
        }
        if path.starts_with("/h5") {
            let csp = header(&r, "content-security-policy").unwrap();
            assert!(
                csp.contains("frame-ancestors 'self' https://bank.example https://*.bank.example;"),
                "{csp}"
            );
        }
    }
}

/// Logs in to the console with the admin token; the session cookie (`name=value`).
fn console_login(c: &reqwest::blocking::Client, srv: &Server) -> String {
    let r = c
        .post(format!("{}/console/login", srv.addr))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    set_cookie(&r, "shiren_console").expect("a session cookie")
}

/// The overview with `cookie`: its CSRF token when the session is accepted, None when sent back to the login.
fn console_overview(c: &reqwest::blocking::Client, srv: &Server, cookie: &str) -> Option<String> {
    let r = c
        .get(format!("{}/console/overview", srv.addr))
        .header("cookie", cookie)
        .send()
        .unwrap();
    match r.status().as_u16() {
        200 => {
            let html = r.text().unwrap();
            let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
            Some(html[at..].split('"').next().unwrap().to_string())
        }
        303 => {
            assert_eq!(header(&r, "location").as_deref(), Some("/console/login"));
            None
        }
        s => panic!("overview: HTTP {s}"),
    }
}

fn logout_survives_a_restart(backend: Backend) {
    let inst = Instance::new(backend);
    let env = [("SHIREN_ADMIN_TOKEN", ADMIN_TOKEN)];
    let c = client();
    let srv = inst.serve_with(any_port(), &env);
    let gone = console_login(&c, &srv);
    let kept = console_login(&c, &srv);
    let csrf = console_overview(&c, &srv, &gone).expect("logged in");
    let r = c
        .post(format!("{}/console/logout", srv.addr))
        .header("cookie", &gone)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(console_overview(&c, &srv, &gone), None, "logged out");
    // A second instance on the same database refuses it too.
    let other = inst.serve_with(any_port(), &env);
    assert_eq!(
        console_overview(&c, &other, &gone),
        None,
        "on another instance"
    );
    assert!(console_overview(&c, &other, &kept).is_some());
    drop(other);
    // Restarted on the same database: the logged-out cookie stays refused; the other session still works (so the
    // refusal is the logout's, not the restart's).
    drop(srv);
    let srv = inst.serve_with(any_port(), &env);
    assert_eq!(console_overview(&c, &srv, &gone), None, "after the restart");
    let kept_csrf = console_overview(&c, &srv, &kept).expect("the other session survives");
    // Logging out the other one is remembered as well, and a form post with the dead cookie is refused.
    let r = c
        .post(format!("{}/console/logout", srv.addr))
        .header("cookie", &kept)
        .form(&[("csrf", kept_csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let r = c
        .post(format!("{}/console/apps/{APP_ID}/disable", srv.addr))
        .header("cookie", &kept)
        .form(&[("csrf", kept_csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // One row per logout, kept until the session would have expired.
    let rows: Vec<i64> = inst.db.with(|db| async move {
        use sea_orm::{ConnectionTrait, Statement};
        db.query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT expires_at FROM console_revoked_sessions",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<i64>("", "expires_at").unwrap())
        .collect()
    });
    let now = chrono::Utc::now().timestamp();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter().all(|e| *e > now && *e <= now + 8 * 3600),
        "{rows:?}"
    );
}

#[test]
fn console_logout_survives_a_restart_sqlite() {
    logout_survives_a_restart(Backend::Sqlite);
}

#[test]
fn console_logout_survives_a_restart_postgres() {
    logout_survives_a_restart(Backend::Postgres);
}

#[test]
fn console_logout_survives_a_restart_mariadb() {
    logout_survives_a_restart(Backend::MariaDb);
}

/// A signed gateway call's parameters (RSA2 with merchant key 0).
fn gateway_params(method: &str, biz_content: &str) -> BTreeMap<String, String> {
    let mut p: BTreeMap<String, String> = [
        ("app_id", APP_ID),
        ("method", method),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("version", "1.0"),
        ("biz_content", biz_content),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    p.insert(
        "timestamp".into(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
    );
    let content = shiren::protocol::alipay::params::sign_content(&p, false);
    let sign =
        common::merchant_key(0).sign(shiren::protocol::alipay::SignType::Rsa2, content.as_bytes());
    p.insert("sign".into(), sign);
    p
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn loosen(p: &Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn private_files_after_a_real_verification_and_the_page_headers() {
    let inst = Instance::new(Backend::Sqlite);
    let Some((jpegs, photo)) = common::d3_challenge_material(inst.dir.path()) else {
        return;
    };
    let data = inst.dir.path().join("data");
    // The test instance's SQLite file sits beside the data dir.
    let db_file = inst.dir.path().join("shiren.sqlite");
    let pub_file = inst.file("app.pem", &common::merchant_key(0).public_key().to_pem());
    inst.run(&[
        "app",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "hardening",
        "--public-key",
        pub_file.to_str().unwrap(),
    ]);
    let no = shiren::domain::idcard::with_check_char("11010119900307081");
    let csv = inst.file(
        "reg.csv",
        &format!(
            "cert_no,cert_name,photo\n{no},李四,{}\n",
            photo.file_name().unwrap().to_str().unwrap()
        ),
    );
    inst.run(&["identity", "import", "--csv", csv.to_str().unwrap()]);
    // Created by this version: private from the start.
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db_file), 0o600);
    // As an older version left them: world-readable. The server tightens what it owns at start.
    loosen(&data, 0o755);
    loosen(&db_file, 0o644);
    std::fs::create_dir_all(data.join("objects/contrast")).unwrap();
    loosen(&data.join("objects"), 0o755);
    loosen(&data.join("objects/contrast"), 0o755);
    for f in ["shiren.sqlite-wal", "shiren.sqlite-shm"] {
        let f = inst.dir.path().join(f);
        if f.exists() {
            loosen(&f, 0o644);
        }
    }

    let srv = inst.serve_with(
        any_port(),
        &[
            ("SHIREN_TEST_FIXED_CHALLENGE", "turn_left,open_mouth"),
            ("SHIREN_TEST_SKIP_COLOUR_CHECK", "1"),
        ],
    );
    let c = client();
    // A verification through the gateway, as a merchant's server makes it, keeping the face image.
    let biz = json!({
        "outer_order_no": format!("hardening-{}", hex::encode(rand::random::<[u8; 4]>())),
        "biz_code": "FACE",
        "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD", "cert_name": "李四", "cert_no": no},
        "merchant_config": {"return_url": "https://m.example/back", "face_reserve_strategy": "reserve"},
    })
    .to_string();
    let r: Value = c
        .post(format!("{}/gateway.do", srv.addr))
        .form(&gateway_params("alipay.user.certify.open.initialize", &biz))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let init = &r["alipay_user_certify_open_initialize_response"];
    assert_eq!(init["code"], "10000", "{r}");
    let certify_id = init["certify_id"].as_str().unwrap().to_string();
    let r = c
        .get(format!("{}/gateway.do", srv.addr))
        .query(&gateway_params(
            "alipay.user.certify.open.certify",
            &json!({"certify_id": certify_id}).to_string(),
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let location = header(&r, "location").unwrap();
    let page_path = &location[location.find("/h5/certify/").unwrap()..];
    // The hosted page: framable by shiren itself only, by default.
    let page = c.get(format!("{}{page_path}", srv.addr)).send().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csp = header(&page, "content-security-policy").unwrap();
    assert!(
        csp.contains("frame-ancestors 'self';") && !csp.contains("frame-ancestors *"),
        "{csp}"
    );
    assert!(header(&page, "strict-transport-security").is_none());
    let cookie = set_cookie(&page, "shiren_h5").unwrap();
    let ch: Value = c
        .post(format!("{}{page_path}/challenge", srv.addr))
        .header("cookie", &cookie)
        .json(&common::consent())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let frames: Vec<Value> = jpegs
        .iter()
        .enumerate()
        .map(|(i, j)| {
            json!({"t_ms": i * 125, "jpeg": base64::engine::general_purpose::STANDARD.encode(j)})
        })
        .collect();
    let r = c
        .post(format!("{}{page_path}/attempt", srv.addr))
        .header("cookie", &cookie)
        .json(&json!({"challenge_id": ch["challenge_id"], "frames": frames}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let verdict: Value = r.json().unwrap();
    assert_eq!(verdict["outcome"], "passed", "{verdict}");

    // Everything on disk is for the server's user only: tightened, or created so.
    let face = data.join("objects/faces").join(&certify_id);
    assert!(face.exists(), "the kept face image");
    for (path, want) in [
        (data.clone(), 0o700),
        (data.join("objects"), 0o700),
        (data.join("objects/contrast"), 0o700),
        (data.join("objects/faces"), 0o700),
        (face.clone(), 0o600),
        (db_file.clone(), 0o600),
        (inst.dir.path().join("shiren.sqlite-wal"), 0o600),
        (inst.dir.path().join("shiren.sqlite-shm"), 0o600),
        (data.join("gateway_key.pem"), 0o600),
        (data.join("cloud_secret.key"), 0o600),
    ] {
        assert_eq!(mode(&path), want, "{}", path.display());
    }
    for entry in std::fs::read_dir(data.join("objects")).unwrap().flatten() {
        assert_eq!(mode(&entry.path()), 0o700, "{}", entry.path().display());
        for f in std::fs::read_dir(entry.path()).unwrap().flatten() {
            // Every stored object (registry photos written by the CLI, the kept face written by the server).
            assert_eq!(mode(&f.path()) & 0o077, 0, "{}", f.path().display());
        }
    }

    // The kept image through a picture link (as DescribeFaceVerify's MaterialInfo hands them out): a JPEG that
    // browsers must not sniff into anything else.
    let secrets = shiren::access_keys::load_or_create(&data.join("cloud_secret.key")).unwrap();
    let link = secrets.seal(
        "cloud-picture-link",
        &shiren::access_keys::Secret::new(format!(
            "{certify_id}|{}",
            chrono::Utc::now().timestamp() + 600
        )),
    );
    let r = c
        .get(format!("{}/cloud/picture", srv.addr))
        .query(&[("token", link.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(&r, "content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(
        header(&r, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    // On disk the image is sealed; the link serves it opened.
    let served = r.bytes().unwrap();
    assert!(served.starts_with(b"\xff\xd8\xff"), "a JPEG is served");
    let stored = std::fs::read(&face).unwrap();
    assert!(stored.starts_with(b"SHS1") && !stored.starts_with(b"\xff\xd8"));
    assert_eq!(
        served.len() + 4 + 16 + 12 + 16,
        stored.len(),
        "the stored object is the image, sealed"
    );
}
