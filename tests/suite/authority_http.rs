//! The HTTP authority adapter against a local authority server started by the test: answers, signatures both ways
//! (bound to the request's nonce), replayed answers, timeouts, server errors and oversized or malformed answers.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use poem::web::Data;
use poem::{handler, listener::TcpListener, post, EndpointExt, Request, Response, Route, Server};
use shiren::authority::http::{sign, HttpAuthority};
use shiren::authority::{Authority, AuthorityError, Lookup, ReferenceFace};

const SECRET: &str = "test-secret-0123456789";
const NO_A: &str = "110101199003070015";

/// ID numbers the stand-in answers in a special way.
const NO_REPLAY: &str = "110101199003070082";
const NO_HUGE_STREAM: &str = "110101199003070090";

/// A signed answer as it went over the wire.
#[derive(Clone)]
struct Recorded {
    timestamp: String,
    body: String,
    signature: String,
}

#[derive(Default)]
struct Seen {
    calls: AtomicUsize,
    bad_signatures: AtomicUsize,
    nonces: Mutex<Vec<String>>,
    /// The last "match" answered, as an eavesdropper on the authority's link would have recorded it.
    last_match: Mutex<Option<Recorded>>,
    /// Replays sent within the second of the recorded answer (the same timestamp: only the nonce differs).
    same_second_replays: AtomicUsize,
}

/// A stand-in authority: verifies the request signature (timestamp, nonce, body), then answers by ID number.
#[handler]
async fn authority(req: &Request, body: Vec<u8>, Data(seen): Data<&Arc<Seen>>) -> Response {
    seen.calls.fetch_add(1, Ordering::SeqCst);
    let ts = req.header("x-shiren-timestamp").unwrap_or("").to_string();
    let nonce = req.header("x-shiren-nonce").unwrap_or("").to_string();
    assert!(
        nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit()),
        "{nonce:?}"
    );
    seen.nonces.lock().unwrap().push(nonce.clone());
    if req.header("x-shiren-signature")
        != Some(sign(SECRET.as_bytes(), &ts, &nonce, &body).as_str())
    {
        seen.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(poem::http::StatusCode::UNAUTHORIZED)
            .body("bad signature");
    }
    let q: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let no = q["cert_no"].as_str().unwrap().to_string();
    let name = q["cert_name"].as_str().unwrap().to_string();
    let answer = match no.as_str() {
        NO_A if name == "张三" => {
            let answer = serde_json::json!({"result": "match", "photo": base64::engine::general_purpose::STANDARD.encode(b"\xff\xd8\xffphoto")}).to_string();
            let signature = sign(SECRET.as_bytes(), &ts, &nonce, answer.as_bytes());
            *seen.last_match.lock().unwrap() = Some(Recorded {
                timestamp: ts.clone(),
                body: answer.clone(),
                signature: signature.clone(),
            });
            return Response::builder()
                .content_type("application/json")
                .header("x-shiren-signature", signature)
                .body(answer);
        }
        NO_REPLAY => {
            // An attacker between shiren and the authority answers this request with the recorded "match" of
            // another person: a genuine signature by the authority, but over another request's nonce.
            let recorded = seen
                .last_match
                .lock()
                .unwrap()
                .clone()
                .expect("a match was recorded");
            if recorded.timestamp == ts {
                seen.same_second_replays.fetch_add(1, Ordering::SeqCst);
            }
            return Response::builder()
                .content_type("application/json")
                .header("x-shiren-signature", recorded.signature)
                .body(recorded.body);
        }
        NO_HUGE_STREAM => {
            // 5 MiB, chunked: no Content-Length to refuse it by.
            use tokio::io::AsyncReadExt;
            let answer = sign(SECRET.as_bytes(), &ts, &nonce, b"");
            return Response::builder()
                .content_type("application/json")
                .header("x-shiren-signature", answer)
                .body(poem::Body::from_async_read(
                    tokio::io::repeat(b' ').take(5 << 20),
                ));
        }
        NO_A => serde_json::json!({"result": "name_mismatch"}).to_string(),
        "110101199003070023" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            serde_json::json!({"result": "not_found"}).to_string()
        }
        "110101199003070031" => {
            return Response::builder()
                .status(poem::http::StatusCode::BAD_GATEWAY)
                .body("upstream down")
        }
        "110101199003070040" => "{not json".to_string(),
        "110101199003070058" => {
            // A forged answer: signed with another secret.
            let body = serde_json::json!({"result": "match", "photo": "AAAA"}).to_string();
            return Response::builder()
                .header(
                    "x-shiren-signature",
                    sign(b"another-secret-000000", &ts, &nonce, body.as_bytes()),
                )
                .body(body);
        }
        "110101199003070066" => serde_json::json!({"result": "match"}).to_string(),
        _ => serde_json::json!({"result": "not_found"}).to_string(),
    };
    Response::builder()
        .content_type("application/json")
        .header(
            "x-shiren-signature",
            sign(SECRET.as_bytes(), &ts, &nonce, answer.as_bytes()),
        )
        .body(answer)
}

#[tokio::test]
async fn http_authority_against_a_local_server() {
    let seen = Arc::new(Seen::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let app = Route::new()
        .at("/lookup", post(authority))
        .data(seen.clone());
    tokio::spawn(Server::new(TcpListener::bind(addr.to_string())).run(app));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = format!("http://{addr}/lookup");
    // Plain http only under the test setting.
    assert!(matches!(
        HttpAuthority::new(url.clone(), SECRET, Duration::from_millis(1500), false),
        Err(AuthorityError::Misconfigured(_))
    ));
    let a = HttpAuthority::new(url.clone(), SECRET, Duration::from_millis(1500), true).unwrap();
    assert_eq!(a.kind(), "http");

    match a.lookup(NO_A, "张三").await.unwrap() {
        Lookup::Match(ReferenceFace::Photo(p)) => {
            assert_eq!(p.expose().as_slice(), b"\xff\xd8\xffphoto")
        }
        _ => panic!("expected a match with a photo"),
    }
    assert!(matches!(
        a.lookup(NO_A, "李四").await.unwrap(),
        Lookup::NameMismatch
    ));
    assert!(matches!(
        a.lookup("110101199003070074", "张三").await.unwrap(),
        Lookup::NotFound
    ));

    // Too slow: unavailable, within the timeout.
    let t = Instant::now();
    let e = a.lookup("110101199003070023", "张三").await.err().unwrap();
    assert!(matches!(e, AuthorityError::Unavailable(_)), "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    // A server error is "unavailable", not a verdict about the person.
    assert!(matches!(
        a.lookup("110101199003070031", "张三").await,
        Err(AuthorityError::Unavailable(_))
    ));
    // Malformed, forged, or photo-less answers are rejected.
    for no in [
        "110101199003070040",
        "110101199003070058",
        "110101199003070066",
    ] {
        let e = a.lookup(no, "张三").await.err().unwrap();
        assert!(matches!(e, AuthorityError::BadAnswer(_)), "{no}: {e}");
    }
    // A recorded "match" replayed as the answer to another request is refused, even within the same second (same
    // timestamp): the signature covers the request's nonce.
    for _ in 0..20 {
        assert!(matches!(
            a.lookup(NO_A, "张三").await.unwrap(),
            Lookup::Match(_)
        ));
        let e = a.lookup(NO_REPLAY, "王五").await.err().unwrap();
        assert!(
            matches!(&e, AuthorityError::BadAnswer(m) if m.contains("signature")),
            "{e}"
        );
        if seen.same_second_replays.load(Ordering::SeqCst) > 0 {
            break;
        }
    }
    assert!(
        seen.same_second_replays.load(Ordering::SeqCst) > 0,
        "no replay landed within the recorded answer's second"
    );
    // An endless answer without Content-Length is cut off at the cap, not read whole.
    let e = a.lookup(NO_HUGE_STREAM, "张三").await.err().unwrap();
    assert!(
        matches!(&e, AuthorityError::BadAnswer(m) if m.contains("too large")),
        "{e}"
    );
    // Every request had its own nonce.
    let nonces = seen.nonces.lock().unwrap().clone();
    let distinct: std::collections::HashSet<_> = nonces.iter().collect();
    assert_eq!(distinct.len(), nonces.len());
    assert_eq!(seen.bad_signatures.load(Ordering::SeqCst), 0);
    // A client with the wrong secret is refused by the authority.
    let wrong = HttpAuthority::new(
        url,
        "wrong-secret-0123456789",
        Duration::from_millis(1500),
        true,
    )
    .unwrap();
    assert!(matches!(
        wrong.lookup(NO_A, "张三").await,
        Err(AuthorityError::BadAnswer(_))
    ));
    assert_eq!(seen.bad_signatures.load(Ordering::SeqCst), 1);
    // Nothing listens: unavailable.
    let gone = HttpAuthority::new(
        "http://127.0.0.1:9/lookup".into(),
        SECRET,
        Duration::from_millis(500),
        true,
    )
    .unwrap();
    assert!(matches!(
        gone.lookup(NO_A, "张三").await,
        Err(AuthorityError::Unavailable(_))
    ));
}
