//! Test support: a real `shiren` process on a fresh database (SQLite file or a new PostgreSQL database),
//! merchant keys, and the official SDK clients installed by `tests/sdk/install.sh`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use shiren::protocol::alipay::SigningKey;

/// The database a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MariaDb,
}

/// PostgreSQL server used by the tests (trust auth); override with `SHIREN_TEST_POSTGRES_URL`.
pub fn postgres_base() -> String {
    std::env::var("SHIREN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// MariaDB (or MySQL) server used by the tests (root, no password); override with `SHIREN_TEST_MYSQL_URL`.
pub fn mysql_base() -> String {
    std::env::var("SHIREN_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh, empty database for one test; PostgreSQL databases are dropped again when this is dropped.
pub struct TestDb {
    pub url: String,
    server: Option<(Backend, String)>,
}

/// The base URL of a database server and the database to connect to for creating and dropping others.
fn server_of(backend: Backend) -> (String, &'static str) {
    match backend {
        Backend::MariaDb => (mysql_base(), "test"),
        _ => (postgres_base(), "postgres"),
    }
}

impl TestDb {
    pub fn new(backend: Backend, dir: &Path) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb {
                url: format!("sqlite://{}?mode=rwc", dir.join("shiren.sqlite").display()),
                server: None,
            },
            Backend::Postgres | Backend::MariaDb => {
                let name = format!("shiren_test_{}", hex::encode(rand::random::<[u8; 6]>()));
                let (base, admin_db) = server_of(backend);
                runtime().block_on(async {
                    use sea_orm::ConnectionTrait;
                    let admin = shiren::db::connect(&format!("{base}/{admin_db}"))
                        .await
                        .unwrap_or_else(|e| panic!("the test database server {base} must be reachable (SHIREN_TEST_POSTGRES_URL, SHIREN_TEST_MYSQL_URL): {e}"));
                    admin
                        .execute_unprepared(&format!("CREATE DATABASE {name}"))
                        .await
                        .unwrap();
                });
                TestDb {
                    url: format!("{base}/{name}"),
                    server: Some((backend, name)),
                }
            }
        }
    }

    /// Runs `f` with a connection, inside one runtime that outlives the connection's pool (a pool must not outlive
    /// the runtime it was made on).
    pub fn with<T, F, Fut>(&self, f: F) -> T
    where
        F: FnOnce(sea_orm::DatabaseConnection) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        runtime().block_on(async {
            let db = shiren::db::connect(&self.url).await.unwrap();
            f(db).await
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((backend, name)) = &self.server {
            let (base, admin_db) = server_of(*backend);
            let drop = match backend {
                Backend::MariaDb => format!("DROP DATABASE IF EXISTS {name}"),
                _ => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            };
            runtime().block_on(async {
                use sea_orm::ConnectionTrait;
                if let Ok(admin) = shiren::db::connect(&format!("{base}/{admin_db}")).await {
                    let _ = admin.execute_unprepared(&drop).await;
                }
            });
        }
    }
}

/// A data dir, a database and the environment that points `shiren` at them.
pub struct Instance {
    pub dir: tempfile::TempDir,
    pub db: TestDb,
    pub env: Vec<(String, String)>,
}

impl Instance {
    pub fn new(backend: Backend) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(backend, dir.path());
        let env = vec![
            (
                "SHIREN_DATA_DIR".to_string(),
                dir.path().join("data").display().to_string(),
            ),
            ("SHIREN_DATABASE_URL".to_string(), db.url.clone()),
            ("RUST_LOG".to_string(), "warn".to_string()),
        ];
        Instance { dir, db, env }
    }

    /// The object store of this instance's data dir, sealing with its data key (created when the server has not).
    pub fn store(&self) -> shiren::storage::ObjectStore {
        store_at(&self.dir.path().join("data"))
    }

    /// A `shiren` command with this instance's environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_shiren"));
        c.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("SHIREN_CONFIG");
        c
    }

    /// Runs a `shiren` command and returns its stdout; panics with its stderr on failure.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "shiren {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Writes a file into the instance's temp dir and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Asserts that nothing personal lies in clear in the instance's database (the SQLite files, or a `pg_dump` of the
    /// PostgreSQL database) and object store: no ID number (any 18-character number with its check character), none
    /// of `names`, and no JPEG, PNG or WebP (by their magic bytes, raw or base64). Returns how many bytes it looked at.
    pub fn assert_nothing_personal_in_clear(&self, names: &[&str]) -> usize {
        let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
        match &self.db.server {
            None => {
                for suffix in ["", "-wal", "-shm"] {
                    let p = self.dir.path().join(format!("shiren.sqlite{suffix}"));
                    if let Ok(b) = std::fs::read(&p) {
                        blobs.push((p.display().to_string(), b));
                    }
                }
            }
            Some((backend, name)) => {
                let mut dump = match backend {
                    Backend::MariaDb => {
                        let mut c = Command::new("mariadb-dump");
                        c.args(["--no-create-info", "-h", "127.0.0.1", "-u", "root", name]);
                        c
                    }
                    _ => {
                        let mut c = Command::new("pg_dump");
                        c.args(["--data-only", "--dbname", &self.db.url]);
                        c
                    }
                };
                let out = dump
                    .output()
                    .expect("pg_dump (postgresql-client) and mariadb-dump (mariadb-client) must be installed");
                assert!(
                    out.status.success(),
                    "{dump:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                blobs.push((format!("{dump:?}"), out.stdout));
            }
        }
        let objects = self.dir.path().join("data").join("objects");
        let mut stack = vec![objects];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    blobs.push((p.display().to_string(), std::fs::read(&p).unwrap()));
                }
            }
        }
        assert!(!blobs.is_empty(), "nothing to scan");
        // Distinctive markers of each format, wherever they sit, raw or base64 (the sealed text's alphabet is
        // base64url, which has no '/'); objects must not start with an image's first bytes either.
        let markers: [&[u8]; 8] = [
            b"JFIF\x00",
            b"Exif\x00",
            b"\x89PNG\r\n\x1a\n",
            b"WEBPVP8",
            b"/9j/4",
            b"iVBORw0KGgo",
            b"UklGR",
            b"SUkqA",
        ];
        let starts: [&[u8]; 3] = [b"\xff\xd8\xff", b"\x89PNG", b"RIFF"];
        let mut scanned = 0;
        for (what, b) in &blobs {
            scanned += b.len();
            if let Some(at) = id_number_at(b) {
                // The test's own numbers are synthetic: show where it sits, to tell a leak from a chance match.
                let around = &b[at.saturating_sub(120)..(at + 140).min(b.len())];
                panic!(
                    "{what}: an ID number in clear at byte {at}: {:?}",
                    String::from_utf8_lossy(around)
                );
            }
            for n in names {
                assert!(
                    !b.windows(n.len()).any(|w| w == n.as_bytes()),
                    "{what}: a name in clear"
                );
            }
            for m in markers {
                assert!(
                    !b.windows(m.len()).any(|w| w == m),
                    "{what}: image bytes in clear ({m:?})"
                );
            }
            if what.contains("objects") {
                for m in starts {
                    assert!(!b.starts_with(m), "{what}: an image in clear");
                }
            }
        }
        scanned
    }

    /// Starts `shiren serve` on `bind` and waits until it prints its address.
    pub fn serve(&self, bind: SocketAddr) -> Server {
        self.serve_with(bind, &[])
    }

    /// Starts `shiren serve` with extra environment variables.
    pub fn serve_with(&self, bind: SocketAddr, extra: &[(&str, &str)]) -> Server {
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        serve_env(&self.env, &extra, bind)
    }
}

/// Starts `shiren serve` on `bind` with the environment `env` then `extra` (which wins), and waits until it prints
/// its address. Its log (stderr) is kept in the `Server` and passed on to the test's output.
pub fn serve_env(env: &[(String, String)], extra: &[(String, String)], bind: SocketAddr) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shiren"))
        .arg("serve")
        .env_remove("SHIREN_CONFIG")
        .envs(env.iter().chain(extra).map(|(k, v)| (k, v)))
        .env("SHIREN_BIND", bind.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    std::thread::spawn({
        let log = log.clone();
        move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                if log.len() < 4 << 20 {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        }
    });
    let addr = listening_address(&mut child);
    Server { child, addr, log }
}

/// Waits until a starting `shiren serve` (stdout piped) prints the address it listens on; kills it and panics when it
/// has not within 120 s.
pub fn listening_address(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("the server's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(a) => a,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            let status = child.wait();
            panic!("shiren serve stopped before it listened ({status:?}); its log is above");
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            panic!("shiren serve did not start within 120 s");
        }
    }
}

/// A running `shiren serve`, stopped when dropped.
pub struct Server {
    child: Child,
    /// `http://ip:port` as printed by the server.
    pub addr: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// The public base URL the server derives from its bound address (port 80 omitted).
    pub fn public_url(&self) -> String {
        self.addr.trim_end_matches(":80").to_string()
    }

    /// What the server has logged so far (its first 4 MiB).
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it has not exited, aborted or been killed).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The server's resident memory now, in MiB (Linux `/proc`).
    pub fn rss_mib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:") / 1024
    }

    /// The server's peak resident memory so far, in MiB (Linux `/proc`).
    pub fn peak_rss_mib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:") / 1024
    }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback address whose port 80 is free: the Python SDK ignores ports, so each test gets its own address.
pub fn loopback_port_80() -> SocketAddr {
    for _ in 0..200 {
        let b: [u8; 3] = rand::random();
        let ip = IpAddr::V4(Ipv4Addr::new(127, b[0].max(1), b[1], b[2].clamp(2, 254)));
        let addr = SocketAddr::new(ip, 80);
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free loopback address with port 80 (the tests must run as root to bind port 80)");
}

/// How the tests of the one suite process share the machine's two cores. A browser test's capture runs in real time
/// and shares the cores with the server deciding: it must not run beside another browser test or beside a test that
/// keeps the cores busy for minutes (face inference in this process or in a server, bursts of decisions). Those
/// heavy tests may run beside each other and beside everything else.
static CORES: RwLock<()> = RwLock::new(());

/// Held by a test while it drives headless Chromium: one browser at a time, and no heavy test meanwhile.
pub fn browser() -> CoreLease<RwLockWriteGuard<'static, ()>> {
    let asked = Instant::now();
    CoreLease::new(
        "browser",
        asked,
        CORES.write().unwrap_or_else(|e| e.into_inner()),
    )
}

/// Held for its whole run by a test that keeps the cores busy for long (take it once, at the start of the test).
pub fn heavy() -> CoreLease<RwLockReadGuard<'static, ()>> {
    let asked = Instant::now();
    CoreLease::new(
        "heavy",
        asked,
        CORES.read().unwrap_or_else(|e| e.into_inner()),
    )
}

/// A held share of the cores. With `SHIREN_TEST_LOCK_LOG=FILE`, each lease appends `test kind waited_s held_s` to
/// FILE when it ends, which shows where the suite's schedule leaves a core idle.
pub struct CoreLease<G> {
    kind: &'static str,
    asked: Instant,
    got: Instant,
    _guard: G,
}

impl<G> CoreLease<G> {
    fn new(kind: &'static str, asked: Instant, guard: G) -> Self {
        CoreLease {
            kind,
            asked,
            got: Instant::now(),
            _guard: guard,
        }
    }
}

impl<G> Drop for CoreLease<G> {
    fn drop(&mut self) {
        let Some(log) = std::env::var_os("SHIREN_TEST_LOCK_LOG") else {
            return;
        };
        let line = format!(
            "{} {} {:.1} {:.1}\n",
            std::thread::current().name().unwrap_or("?"),
            self.kind,
            (self.got - self.asked).as_secs_f64(),
            self.got.elapsed().as_secs_f64()
        );
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log);
        if let Ok(mut file) = file {
            let _ = std::io::Write::write_all(&mut file, line.as_bytes());
        }
    }
}

/// Merchant key pairs are slow to generate in debug builds of dependencies; share a few in the suite.
pub fn merchant_key(i: usize) -> &'static SigningKey {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    &KEYS.get_or_init(|| (0..3).map(|_| SigningKey::generate().unwrap()).collect())[i]
}

/// The directory with the installed SDK clients (`node/node_modules`, `python/bin/python`).
pub fn sdk_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/install.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "tests/sdk/install.sh failed");
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

/// A valid ID number (check digit computed) for test identities.
pub fn test_cert_no() -> String {
    shiren::domain::idcard::with_check_char("11010519900307123")
}

/// The provisioned models (runtime and ONNX files), installed on first use like `serve` does.
pub fn installed_models() -> &'static shiren::face::models::provision::Installed {
    use shiren::face::models::provision::{default_dir, ensure, Manifest, StderrProgress};
    static I: OnceLock<shiren::face::models::provision::Installed> = OnceLock::new();
    I.get_or_init(|| {
        ensure(&default_dir(), &Manifest::builtin(), &StderrProgress).expect("models install")
    })
}

/// The real face engine with default settings, loaded once and shared by the whole suite.
pub fn face_engine() -> &'static shiren::face::engine::OnnxEngine {
    use shiren::face::engine::{EngineSettings, OnnxEngine};
    static E: OnceLock<OnnxEngine> = OnceLock::new();
    E.get_or_init(|| {
        OnnxEngine::load(installed_models(), EngineSettings::default()).expect("engine loads")
    })
}

/// A path under `../shared/data` when it exists (tests read it when it is there, and say so when it is not).
pub fn shared_data(relative: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(relative);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("{} is not here: skipped", p.display());
        None
    }
}

/// Runs ffmpeg (Debian package) quietly, overwriting outputs; panics when it fails.
pub fn ffmpeg(args: &[&str]) {
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg (Debian package) is installed");
    assert!(st.success(), "ffmpeg {args:?}");
}

/// 52 frames (8 fps, 6.5 s) of d3 in which the fixed challenge turn-left, open-mouth is performed in its windows
/// (opening 0–1.5 s, turn 1.5–4 s, mouth 4–6.5 s), and a frame of d3 as her registered photo.
pub fn d3_challenge_material(dir: &Path) -> Option<(Vec<Vec<u8>>, PathBuf)> {
    let d3 = shared_data("videos/d3.mp4")?;
    let frames_dir = dir.join("frames");
    std::fs::create_dir_all(&frames_dir).unwrap();
    ffmpeg(&[
        "-ss",
        "5.5",
        "-t",
        "6.5",
        "-i",
        d3.to_str().unwrap(),
        "-an",
        "-vf",
        "fps=8,scale='min(480,iw)':-2",
        "-q:v",
        "4",
        frames_dir.join("%03d.jpg").to_str().unwrap(),
    ]);
    let mut files: Vec<_> = std::fs::read_dir(&frames_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files.truncate(52);
    let photo = dir.join("a.png");
    ffmpeg(&[
        "-ss",
        "1.5",
        "-i",
        d3.to_str().unwrap(),
        "-frames:v",
        "1",
        photo.to_str().unwrap(),
    ]);
    Some((
        files.iter().map(|f| std::fs::read(f).unwrap()).collect(),
        photo,
    ))
}

/// The object store of a data dir, sealing with the data key of its key file (as `shiren serve` on that dir does).
pub fn store_at(data_dir: &Path) -> shiren::storage::ObjectStore {
    shiren::storage::ObjectStore::new(
        data_dir.join("objects"),
        shiren::privacy::DataKeys::from_file(&data_dir.join(shiren::privacy::keys::KEY_FILE))
            .unwrap(),
    )
}

/// Where the first ID number lies: 17 digits and a check character (a digit or `X`) that is right under GB 11643,
/// standing alone (no letter or digit on either side, so that runs of digits inside hex strings and base64 do not
/// count).
pub fn id_number_at(b: &[u8]) -> Option<usize> {
    let alone = |i: usize| b.get(i).is_none_or(|c| !c.is_ascii_alphanumeric());
    (0..b.len().saturating_sub(17)).find(|&i| {
        let cand = &b[i..i + 18];
        (i == 0 || alone(i - 1))
            && alone(i + 18)
            && cand[..17].iter().all(u8::is_ascii_digit)
            && (cand[17].is_ascii_digit() || cand[17] == b'X' || cand[17] == b'x')
            && plausible_birth_date(&cand[6..14])
            && std::str::from_utf8(cand).is_ok_and(|s| {
                shiren::domain::idcard::with_check_char(&s[..17]).eq_ignore_ascii_case(s)
            })
    })
}

/// Whether eight digits read as a birth date between 1900 and 2099: a chance run of digits in a database file (a
/// day written next to a record number, say) seldom does, a citizen ID number always does.
fn plausible_birth_date(d: &[u8]) -> bool {
    std::str::from_utf8(d)
        .ok()
        .and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y%m%d").ok())
        .is_some_and(|date| (1900..2100).contains(&chrono::Datelike::year(&date)))
}

/// The body of a first challenge request of a verification that names a person (FACE, ID_PRO): the consent the page
/// sends once the person agrees.
pub fn consent() -> serde_json::Value {
    serde_json::json!({"consent_version": shiren::domain::consent::ConsentText::Identity.version()})
}
