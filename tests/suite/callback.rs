//! Callback delivery on SQLite and PostgreSQL against a real receiver on loopback: retried with backoff until the
//! receiver answers 200, carried over a restart, given up after the last attempt, never duplicated by two
//! dispatchers sharing the database, written only with the transaction that enqueues it, and refused at delivery
//! time for a private address when the test-only switch is off.
use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Backend, Instance, TestDb};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Query};
use poem::{get, handler, http::StatusCode, EndpointExt, Route};
use sea_orm::{DatabaseConnection, TransactionTrait};
use shiren::callback::{CallbackDispatcher, CallbackSettings};
use shiren::db::callbacks::{self, DeliveryStatus};

/// The receiver's memory: every query it got, and how many requests fail before it answers 200.
#[derive(Default)]
struct Seen {
    queries: Vec<HashMap<String, String>>,
    fail_first: usize,
}

#[handler]
fn receive(Query(q): Query<HashMap<String, String>>, seen: Data<&Arc<Mutex<Seen>>>) -> StatusCode {
    let mut s = seen.lock().unwrap();
    s.queries.push(q);
    if s.queries.len() <= s.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// Starts a receiver on 127.0.0.1 that fails the first `fail_first` requests; returns its `/cb` URL.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen {
        queries: Vec::new(),
        fail_first,
    }));
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let app = Route::new().at("/cb", get(receive)).data(seen.clone());
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    (format!("http://127.0.0.1:{}/cb", addr.port()), seen)
}

/// Short backoff so a test runs in well under a second; loopback and http allowed (test-only).
fn settings() -> CallbackSettings {
    CallbackSettings {
        timeout: Duration::from_secs(2),
        max_attempts: 4,
        backoff_initial: Duration::from_millis(40),
        backoff_max: Duration::from_millis(200),
        poll_interval: Duration::from_secs(30),
        lease: Duration::from_secs(10),
        batch: 32,
        max_redirects: 2,
        allow_loopback: true,
        allow_http: true,
    }
}

/// Runs `f` on a freshly migrated database of `backend` (with the database URL, for a second connection).
fn on_db<F, Fut>(backend: Backend, f: F)
where
    F: FnOnce(DatabaseConnection, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(backend, dir.path());
    let url = db.url.clone();
    db.with(|conn| async move {
        shiren::db::migrate(&conn).await.unwrap();
        f(conn, url).await
    });
}

/// Waits until the delivery of `certify_id` is no longer pending.
async fn settled(conn: &DatabaseConnection, certify_id: &str) -> callbacks::Delivery {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = callbacks::find(conn, certify_id).await.unwrap().unwrap();
        if d.status != DeliveryStatus::Pending {
            return d;
        }
        assert!(Instant::now() < deadline, "still pending: {d:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn retries_until_delivered(conn: DatabaseConnection, _url: String) {
    let (cb, seen) = receiver(2).await;
    // The dispatcher runs first and sleeps (30 s poll): the enqueue's wake-up is what starts the delivery.
    let dispatcher = CallbackDispatcher::new(conn.clone(), settings());
    let wake = dispatcher.waker();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(dispatcher.run_until(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    let txn = conn.begin().await.unwrap();
    assert!(callbacks::enqueue(
        &txn,
        "cid-retry",
        &format!("{cb}?shop=7&x=a%20b"),
        Some("tok-1 &=?"),
        "200"
    )
    .await
    .unwrap());
    txn.commit().await.unwrap();
    wake.notify_one();
    let d = settled(&conn, "cid-retry").await;
    let took = t.elapsed();
    println!("delivered on attempt {} after {took:?}", d.attempts);
    assert_eq!(d.status, DeliveryStatus::Delivered, "{d:?}");
    assert_eq!(d.attempts, 3);
    assert_eq!(d.last_status, Some(200));
    assert_eq!(d.last_error, None);
    assert!(d.delivered_at_ms.is_some());
    // Two waits of the backoff (40 ms, 80 ms) and no 30 s poll in between.
    assert!(took >= Duration::from_millis(120), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    {
        let s = seen.lock().unwrap();
        assert_eq!(s.queries.len(), 3, "{:?}", s.queries);
        for q in &s.queries {
            assert_eq!(q["certifyId"], "cid-retry");
            assert_eq!(q["passed"], "200");
            assert_eq!(q["callbackToken"], "tok-1 &=?");
            assert_eq!(q["shop"], "7", "the URL's own query is kept");
            assert_eq!(q["x"], "a b");
        }
    }
    // A failed verification without a token: `passed` carries the SubCode, no callbackToken.
    let seen_before = seen.lock().unwrap().queries.len();
    assert!(callbacks::enqueue(&conn, "cid-205", &cb, None, "205")
        .await
        .unwrap());
    wake.notify_one();
    let d = settled(&conn, "cid-205").await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 1));
    {
        let s = seen.lock().unwrap();
        let q = &s.queries[seen_before];
        assert_eq!(q["passed"], "205");
        assert!(!q.contains_key("callbackToken"));
    }
    stop.send(()).unwrap();
    task.await.unwrap();
}

async fn survives_a_restart(conn: DatabaseConnection, url: String) {
    let (cb, seen) = receiver(1).await;
    callbacks::enqueue(&conn, "cid-restart", &cb, Some("t"), "200")
        .await
        .unwrap();
    // The first instance makes one (failing) attempt, then goes away.
    let first = CallbackDispatcher::new(conn.clone(), settings());
    assert_eq!(first.run_once().await.unwrap(), 1);
    drop(first);
    let d = callbacks::find(&conn, "cid-restart")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.status, d.attempts, d.last_status),
        (DeliveryStatus::Pending, 1, Some(500))
    );
    assert!(
        d.last_error.as_deref().unwrap().contains("HTTP 500"),
        "{d:?}"
    );
    assert!(!d.last_error.as_deref().unwrap().contains("cid-restart"));
    // A new instance on its own connection to the same database finishes the job.
    let conn2 = shiren::db::connect(&url).await.unwrap();
    let second = CallbackDispatcher::new(conn2.clone(), settings());
    let task = second.spawn();
    let d = settled(&conn, "cid-restart").await;
    task.abort();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 2));
    assert_eq!(seen.lock().unwrap().queries.len(), 2);
}

async fn gives_up_after_max_attempts(conn: DatabaseConnection, _url: String) {
    let (cb, seen) = receiver(usize::MAX).await;
    callbacks::enqueue(&conn, "cid-never", &cb, Some("secret-token"), "200")
        .await
        .unwrap();
    let task = CallbackDispatcher::new(conn.clone(), settings()).spawn();
    let d = settled(&conn, "cid-never").await;
    task.abort();
    assert_eq!(d.status, DeliveryStatus::Failed, "{d:?}");
    assert_eq!(d.attempts, 4);
    assert_eq!(d.last_status, Some(500));
    assert_eq!(d.delivered_at_ms, None);
    let err = d.last_error.clone().unwrap();
    assert!(
        !err.contains("secret-token") && !err.contains("/cb"),
        "{err}"
    );
    assert!(!format!("{d:?}").contains("secret-token"));
    // Given up means given up: no further attempts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.lock().unwrap().queries.len(), 4);
    assert!(callbacks::due(&conn, i64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn two_dispatchers_never_deliver_twice(conn: DatabaseConnection, url: String) {
    let (cb, seen) = receiver(0).await;
    for i in 0..20 {
        callbacks::enqueue(&conn, &format!("cid-{i:02}"), &cb, None, "200")
            .await
            .unwrap();
    }
    let conn2 = shiren::db::connect(&url).await.unwrap();
    let a = CallbackDispatcher::new(conn.clone(), settings());
    let b = CallbackDispatcher::new(conn2, settings());
    let (na, nb) = tokio::join!(a.run_once(), b.run_once());
    let (na, nb) = (na.unwrap(), nb.unwrap());
    println!("instance a attempted {na}, instance b {nb}");
    assert_eq!(na + nb, 20);
    let mut ids: Vec<String> = seen
        .lock()
        .unwrap()
        .queries
        .iter()
        .map(|q| q["certifyId"].clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    assert_eq!(seen.lock().unwrap().queries.len(), 20, "no duplicate");
    for i in 0..20 {
        let d = callbacks::find(&conn, &format!("cid-{i:02}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 1));
    }
}

async fn enqueue_belongs_to_its_transaction(conn: DatabaseConnection, _url: String) {
    let txn = conn.begin().await.unwrap();
    callbacks::enqueue(&txn, "cid-rolled-back", "https://m.example/cb", None, "200")
        .await
        .unwrap();
    txn.rollback().await.unwrap();
    assert!(callbacks::find(&conn, "cid-rolled-back")
        .await
        .unwrap()
        .is_none());
    let txn = conn.begin().await.unwrap();
    assert!(
        callbacks::enqueue(&txn, "cid-kept", "https://m.example/cb", Some("t"), "200")
            .await
            .unwrap()
    );
    txn.commit().await.unwrap();
    // Once per verification: a second enqueue changes nothing.
    assert!(
        !callbacks::enqueue(&conn, "cid-kept", "https://other.example/", None, "205")
            .await
            .unwrap()
    );
    let d = callbacks::find(&conn, "cid-kept").await.unwrap().unwrap();
    assert_eq!(
        (d.url.as_str(), d.passed.as_str(), d.attempts),
        ("https://m.example/cb", "200", 0)
    );
    assert_eq!(d.status, DeliveryStatus::Pending);
}

async fn private_address_refused_at_delivery(conn: DatabaseConnection, _url: String) {
    let (cb, seen) = receiver(0).await;
    callbacks::enqueue(&conn, "cid-private", &cb, None, "200")
        .await
        .unwrap();
    let production_rule = CallbackSettings {
        allow_loopback: false,
        max_attempts: 2,
        ..settings()
    };
    let task = CallbackDispatcher::new(conn.clone(), production_rule).spawn();
    let d = settled(&conn, "cid-private").await;
    task.abort();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 2));
    assert!(
        d.last_error
            .as_deref()
            .unwrap()
            .contains("not a public address"),
        "{d:?}"
    );
    assert!(seen.lock().unwrap().queries.is_empty());
}

/// A receiver on its own thread and runtime, for tests that drive a real `shiren serve` process.
fn receiver_thread(fail_first: usize) -> (String, Arc<Mutex<Seen>>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            tx.send(receiver(fail_first).await).unwrap();
            std::future::pending::<()>().await
        })
    });
    rx.recv().unwrap()
}

/// A real `shiren serve` delivers what its database holds, and after being killed between two attempts, the next
/// process finishes the delivery.
fn served_process_delivers_across_a_restart(backend: Backend) {
    let (cb, seen) = receiver_thread(1);
    let inst = Instance::new(backend);
    inst.run(&["migrate"]);
    let env = [
        ("SHIREN_TEST_ALLOW_LOOPBACK_URLS", "1"),
        ("SHIREN_TEST_ALLOW_HTTP_CALLBACKS", "1"),
        ("SHIREN_CALLBACK_BACKOFF_INITIAL_MS", "1500"),
        ("SHIREN_CALLBACK_POLL_MS", "100"),
    ];
    let bind: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut server = inst.serve_with(bind, &env);
    let url = cb.clone();
    inst.db.with(|conn| async move {
        callbacks::enqueue(&conn, "cid-served", &url, Some("tok"), "200")
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let d = callbacks::find(&conn, "cid-served").await.unwrap().unwrap();
            if d.attempts == 1 {
                assert_eq!(d.status, DeliveryStatus::Pending);
                break;
            }
            assert!(Instant::now() < deadline, "no attempt: {d:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    server.kill();
    let t = Instant::now();
    let _server = inst.serve_with(bind, &env);
    println!("restarted in {:?}", t.elapsed());
    let d = inst
        .db
        .with(|conn| async move { settled(&conn, "cid-served").await });
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 2));
    let s = seen.lock().unwrap();
    assert_eq!(s.queries.len(), 2);
    assert_eq!(s.queries[1]["callbackToken"], "tok");
}

#[test]
fn served_process_sqlite() {
    served_process_delivers_across_a_restart(Backend::Sqlite);
}

#[test]
fn served_process_postgres() {
    served_process_delivers_across_a_restart(Backend::Postgres);
}

#[test]
fn served_process_mariadb() {
    served_process_delivers_across_a_restart(Backend::MariaDb);
}

macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::on_db(super::Backend::Sqlite, super::$name);
            }
            #[test]
            fn postgres() {
                super::on_db(super::Backend::Postgres, super::$name);
            }
        }
    };
}

on_both!(retries_until_delivered);
on_both!(survives_a_restart);
on_both!(gives_up_after_max_attempts);
on_both!(two_dispatchers_never_deliver_twice);
on_both!(enqueue_belongs_to_its_transaction);
on_both!(private_address_refused_at_delivery);
