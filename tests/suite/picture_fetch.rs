//! Fetching a merchant's picture by URL against a real HTTP server on loopback: private addresses refused
//! (literal, by name, and behind a redirect) unless the test-only loopback switch is on, the allow-list, the total
//! timeout, the size limit with and without `Content-Length`, redirects, and error texts that never echo a query.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shiren::net::{FetchError, FetchPolicy, PictureFetcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIB: usize = 1024 * 1024;

/// A tiny HTTP/1.1 server whose answers are chosen by path; counts the requests it got.
struct Server {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(answer(sock, addr));
            }
        });
        Server { addr, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn picture(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

async fn answer(mut sock: TcpStream, addr: SocketAddr) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let path = target.split('?').next().unwrap_or("/").to_string();
    let port = addr.port();
    let redirect = |to: String| {
        format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .into_bytes()
    };
    let ok = |body: &[u8]| {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    let response = match path.as_str() {
        "/ok" => ok(&picture(5000)),
        "/exact" => ok(&picture(MIB)),
        "/empty" => ok(b""),
        "/missing" => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            ok(&picture(10))
        }
        "/dribble" => {
            // Headers at once, then a byte a second: only a total timeout stops this.
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n")
                .await;
            for _ in 0..100 {
                if sock.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            return;
        }
        "/big-length" => {
            let _ = sock
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        2 * MIB
                    )
                    .as_bytes(),
                )
                .await;
            let _ = sock.write_all(&picture(2 * MIB)).await;
            return;
        }
        "/big-chunked" => {
            let _ = sock
                .write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                )
                .await;
            let chunk = picture(64 * 1024);
            for _ in 0..64 {
                let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
                c.extend_from_slice(&chunk);
                c.extend_from_slice(b"\r\n");
                if sock.write_all(&c).await.is_err() {
                    return;
                }
            }
            let _ = sock.write_all(b"0\r\n\r\n").await;
            return;
        }
        "/big-unannounced" => {
            // No length at all: the body ends when the connection closes.
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                .await;
            let _ = sock.write_all(&picture(3 * MIB)).await;
            return;
        }
        "/to-ok" => redirect("/ok".into()),
        "/to-metadata" => redirect("http://169.254.169.254/latest/meta-data/".into()),
        "/to-private" => redirect("http://10.1.2.3/p.jpg".into()),
        "/to-localhost" => redirect(format!("http://localhost:{port}/ok")),
        "/loop" => redirect("/loop".into()),
        _ => b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    };
    let _ = sock.write_all(&response).await;
    let _ = sock.shutdown().await;
}

fn policy(hosts: &[&str], allow_loopback: bool) -> FetchPolicy {
    FetchPolicy {
        allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        max_bytes: MIB,
        timeout: Duration::from_millis(3000),
        max_redirects: 3,
        allow_loopback,
    }
}

fn code(r: Result<Vec<u8>, FetchError>) -> &'static str {
    match r {
        Ok(_) => "OK",
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn private_addresses_are_refused_without_the_test_switch() {
    let server = Server::start().await;
    let port = server.addr.port();
    let fetcher = PictureFetcher::new(policy(&["*"], false));
    let mut cases = vec![
        server.url("/ok"),
        format!("http://10.0.0.1:{port}/ok"),
        format!("http://[::1]:{port}/ok"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        format!("http://0x7f.1:{port}/ok"),
        // A name that resolves to 127.0.0.1: refused after resolution, before any connection.
        format!("http://localhost:{port}/ok"),
    ];
    // The machine's own name, where it resolves to a loopback address.
    if let Ok(name) = std::fs::read_to_string("/etc/hostname") {
        let name = name.trim().to_string();
        let loopback = tokio::net::lookup_host((name.as_str(), port))
            .await
            .map(|mut a| a.all(|a| a.ip().is_loopback()))
            .unwrap_or(false);
        if !name.is_empty() && loopback {
            cases.push(format!("http://{name}:{port}/ok"));
        }
    }
    for url in &cases {
        let r = fetcher.fetch(url).await;
        assert_eq!(code(r), "PRIVATE_ADDRESS", "{url}");
    }
    assert_eq!(server.hits(), 0, "no refused URL may reach the server");
    // The same URLs that point at the test server work once the switch is on.
    let fetcher = PictureFetcher::new(policy(&["*"], true));
    assert_eq!(
        fetcher.fetch(&server.url("/ok")).await.unwrap(),
        picture(5000)
    );
    let by_name = fetcher
        .fetch(&format!("http://localhost:{port}/ok"))
        .await
        .unwrap();
    assert_eq!(by_name.len(), 5000);
    // The switch opens loopback only: other private ranges stay closed.
    for url in [
        format!("http://10.0.0.1:{port}/ok"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://192.168.0.1/p.jpg".to_string(),
    ] {
        assert_eq!(code(fetcher.fetch(&url).await), "PRIVATE_ADDRESS", "{url}");
    }
}

#[tokio::test]
async fn the_allow_list_decides_which_hosts() {
    let server = Server::start().await;
    let off = PictureFetcher::new(policy(&[], true));
    let e = off.fetch(&server.url("/ok")).await.unwrap_err();
    assert_eq!(e.code(), "URL_NOT_ALLOWED");
    assert!(e.to_string().contains("switched off"), "{e}");
    let only = PictureFetcher::new(policy(&["pics.example", "*.oss.example"], true));
    assert_eq!(
        code(only.fetch(&server.url("/ok")).await),
        "URL_NOT_ALLOWED"
    );
    assert_eq!(
        code(only.fetch("ftp://pics.example/p.jpg").await),
        "URL_NOT_ALLOWED"
    );
    assert_eq!(code(only.fetch("pics.example/p.jpg").await), "BAD_URL");
    assert_eq!(server.hits(), 0);
    let exact = PictureFetcher::new(policy(&["127.0.0.1"], true));
    assert_eq!(code(exact.fetch(&server.url("/ok")).await), "OK");
    // A redirect to a host outside the list is refused, though it is loopback too.
    assert_eq!(
        code(exact.fetch(&server.url("/to-localhost")).await),
        "URL_NOT_ALLOWED"
    );
    assert!(exact.check_url(&server.url("/ok")).is_ok());
    assert!(exact.check_url("http://localhost/ok").is_err());
}

#[tokio::test]
async fn redirects_are_checked_hop_by_hop() {
    let server = Server::start().await;
    let fetcher = PictureFetcher::new(policy(&["*"], true));
    assert_eq!(
        fetcher.fetch(&server.url("/to-ok")).await.unwrap(),
        picture(5000)
    );
    assert_eq!(
        code(fetcher.fetch(&server.url("/to-metadata")).await),
        "PRIVATE_ADDRESS"
    );
    assert_eq!(
        code(fetcher.fetch(&server.url("/to-private")).await),
        "PRIVATE_ADDRESS"
    );
    assert_eq!(
        code(fetcher.fetch(&server.url("/loop")).await),
        "TOO_MANY_REDIRECTS"
    );
    let hits = server.hits();
    assert_eq!(
        code(fetcher.fetch(&server.url("/loop")).await),
        "TOO_MANY_REDIRECTS"
    );
    assert_eq!(server.hits() - hits, 4, "the URL and 3 redirects");
    let none = PictureFetcher::new(FetchPolicy {
        max_redirects: 0,
        ..policy(&["*"], true)
    });
    assert_eq!(
        code(none.fetch(&server.url("/to-ok")).await),
        "TOO_MANY_REDIRECTS"
    );
}

#[tokio::test]
async fn size_limit_with_and_without_content_length() {
    let server = Server::start().await;
    let fetcher = PictureFetcher::new(policy(&["*"], true));
    assert_eq!(
        fetcher.fetch(&server.url("/exact")).await.unwrap().len(),
        MIB,
        "exactly the limit is accepted"
    );
    for path in ["/big-length", "/big-chunked", "/big-unannounced"] {
        let t = Instant::now();
        let e = fetcher.fetch(&server.url(path)).await.unwrap_err();
        assert_eq!(e, FetchError::TooLarge(MIB), "{path}");
        assert_eq!(shiren::protocol::aliyun::codes::fetch_code(&e), "421");
        println!("{path}: refused in {:?}", t.elapsed());
    }
}

#[tokio::test]
async fn the_whole_fetch_has_one_deadline() {
    let server = Server::start().await;
    let fetcher = PictureFetcher::new(FetchPolicy {
        timeout: Duration::from_millis(400),
        ..policy(&["*"], true)
    });
    for path in ["/slow", "/dribble"] {
        let t = Instant::now();
        let e = fetcher.fetch(&server.url(path)).await.unwrap_err();
        let took = t.elapsed();
        assert_eq!(e.code(), "TIMEOUT", "{path}");
        assert_eq!(shiren::protocol::aliyun::codes::fetch_code(&e), "422");
        assert!(took < Duration::from_millis(1500), "{path} took {took:?}");
        println!("{path}: timed out after {took:?}");
    }
}

#[tokio::test]
async fn failures_are_typed_and_never_echo_the_query() {
    let server = Server::start().await;
    let fetcher = PictureFetcher::new(policy(&["*"], true));
    let e = fetcher
        .fetch(&server.url("/missing?Signature=s3cr3t&Expires=1"))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        FetchError::HttpStatus {
            host: "127.0.0.1".into(),
            status: 404
        }
    );
    assert_eq!(shiren::protocol::aliyun::codes::fetch_code(&e), "419");
    assert_eq!(code(fetcher.fetch(&server.url("/empty")).await), "EMPTY");
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = fetcher
        .fetch(&format!("http://127.0.0.1:{closed}/p.jpg?token=s3cr3t"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "UNREACHABLE");
    let e2 = fetcher
        .fetch("http://no-such-host.invalid/p.jpg?token=s3cr3t")
        .await
        .unwrap_err();
    assert_eq!(e2.code(), "UNREACHABLE");
    let e3 = PictureFetcher::new(policy(&["*"], false))
        .fetch(&server.url("/ok?token=s3cr3t"))
        .await
        .unwrap_err();
    for e in [e, e2, e3] {
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("/p.jpg"),
            "{text}"
        );
        println!("{}: {e}", e.code());
    }
}
