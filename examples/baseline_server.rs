//! Baseline for `bench/serve.sh`: the least an HTTP/1.1 server on the same stack as
//! `serve` (tokio's single-threaded runtime, hyper 1, keep-alive, TCP_NODELAY) can do to
//! answer a request with the bytes `serve` returns. It reads nothing from the request and
//! checks nothing.
//!
//!   cargo run --release --example baseline_server -- PORT BODY_FILE [CONTENT_TYPE]
//!
//! PORT 0 picks a free port. Once listening it prints `listening on 127.0.0.1:PORT` on
//! stderr. CONTENT_TYPE defaults to `text/plain`; the benchmark passes the one `serve` sent.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 || args.len() > 4 {
        eprintln!("usage: baseline_server PORT BODY_FILE [CONTENT_TYPE]");
        std::process::exit(2);
    }
    let port: u16 = args[1].parse()?;
    let body = Bytes::from(std::fs::read(&args[2])?);
    let content_type = HeaderValue::from_str(args.get(3).map_or("text/plain", String::as_str))?;

    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(port, body, content_type))
}

async fn run(
    port: u16,
    body: Bytes,
    content_type: HeaderValue,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of descriptors, for instance: report it and let some close.
                eprintln!("accept: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (body, content_type) = (body.clone(), content_type.clone());
        tokio::spawn(async move {
            let service = service_fn(move |_: Request<hyper::body::Incoming>| {
                let mut response = Response::new(Full::new(body.clone()));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, content_type.clone());
                async move { Ok::<_, Infallible>(response) }
            });
            // Keep-alive is hyper's default; a client closing the connection is not an error
            // worth reporting here.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
