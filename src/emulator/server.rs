//! The listener and the routes: `POST /sessions` (CreateSession), `POST /` (STS),
//! `POST /_emulator/faults` and `GET /_emulator/received` (test control, loopback peers only).
//! The faults of [`super::faults`] are applied here, on the CreateSession route.
//!
//! Limits keep a misbehaving client from exhausting the process: headers and bodies of at most
//! 64 KiB, 1024 connections at once, 30 s to send the request headers, 10 s for the TLS
//! handshake. Shutdown is graceful: the listener closes, connections finish their current
//! request.

use std::convert::Infallible;
use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::create_session::create_session;
use super::errors::{ErrorKind, ServiceError};
use super::faults::{Fault, FaultOrder, INCOMPLETE_ACCESS_KEY_ID, INCOMPLETE_SECRET_ACCESS_KEY};
use super::state::{ReceivedRequest, State};
use super::verify::{Received, authenticate};
use super::{chain, sts};
use crate::sigv4x509;

/// The largest request body and header block read.
pub const MAX_REQUEST: usize = 64 * 1024;
const MAX_CONNECTIONS: usize = 1024;
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
const TLS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The error that makes hyper close a connection without answering (the `drop` fault).
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

type Answer = Response<AnswerBody>;

/// The body of an answer: sent whole, or (the `slow_body` fault) in two parts with a pause
/// between them. Its length is always announced in `Content-Length`, so a client can tell a
/// stalled body from a finished one.
struct AnswerBody {
    first: Option<Bytes>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    rest: Option<Bytes>,
    len: u64,
}

impl AnswerBody {
    fn whole(body: Bytes) -> Self {
        Self {
            len: body.len() as u64,
            first: Some(body),
            pause: None,
            rest: None,
        }
    }

    /// The same bytes, the second half of them after `pause`.
    fn stalled(self, pause: Duration) -> Self {
        let mut all = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        for part in [self.first, self.rest].into_iter().flatten() {
            all.extend_from_slice(&part);
        }
        let mut first = Bytes::from(all);
        let rest = first.split_off(first.len() / 2);
        Self {
            len: self.len,
            first: Some(first),
            pause: Some(Box::pin(tokio::time::sleep(pause))),
            rest: Some(rest),
        }
    }
}

impl Body for AnswerBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        Poll::Ready(self.rest.take().map(|rest| Ok(Frame::data(rest))))
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// Accepts connections until `shutdown` turns true, then drains them.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.changed() => break,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("emulator: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let state = Arc::clone(&state);
        let tls = tls.clone();
        let stop = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => connection(stream, peer, state, stop).await,
                        Ok(Err(e)) => {
                            tracing::debug!("emulator: TLS handshake with {peer} failed: {e}")
                        }
                        Err(_) => tracing::debug!("emulator: TLS handshake with {peer} timed out"),
                    }
                }
                None => connection(tcp, peer, state, stop).await,
            }
        });
        // Reap finished connections so the set does not grow with the number served.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

async fn connection<I>(io: I, peer: SocketAddr, state: Arc<State>, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let state = Arc::clone(&state);
        async move { route(&state, peer, req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_REQUEST)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!("emulator: connection with {peer} ended: {e}");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

async fn route(
    state: &State,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Answer, DropConnection> {
    let request_id = request_id();
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST as u64) {
        return Ok(too_large(&request_id));
    }
    let body = match Limited::new(body, MAX_REQUEST).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(too_large(&request_id)),
    };
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    match (&parts.method, path) {
        (&Method::POST, sigv4x509::SESSIONS_PATH) => {
            sessions(
                state,
                &parts.method,
                path,
                query,
                &parts.headers,
                &body,
                request_id,
            )
            .await
        }
        (&Method::POST, "/") | (&Method::GET, "/")
            if parts.headers.contains_key("authorization") =>
        {
            let answer = sts::handle(
                &state.sessions,
                parts.method.as_str(),
                path,
                query,
                &parts.headers,
                &body,
                state.now(),
                &request_id,
            );
            if let Some(code) = answer.code {
                tracing::info!("emulator: STS refused: {code}");
            }
            Ok(respond(
                answer.status,
                "text/xml",
                Bytes::from(answer.body),
                &request_id,
            ))
        }
        (&Method::POST, "/_emulator/faults") => Ok(control_faults(state, peer, &body, &request_id)),
        (&Method::GET, "/_emulator/received") => Ok(control_received(state, peer, &request_id)),
        _ => Ok(error_answer(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "Not Found",
            None,
            &request_id,
        )),
    }
}

async fn sessions(
    state: &State,
    method: &Method,
    path: &str,
    query: &str,
    headers: &hyper::HeaderMap,
    body: &Bytes,
    request_id: String,
) -> Result<Answer, DropConnection> {
    let (delay, fault) = state.faults.take();
    let mut entry = ReceivedRequest {
        serial: claimed_serial(state, headers),
        status: 0,
        error_type: None,
        reason: None,
        fault: None,
        query: query.to_owned(),
        body: String::from_utf8_lossy(body).into_owned(),
        signed_headers: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| sigv4x509::parse_authorization(v).ok())
            .map(|a| a.signed_headers)
            .unwrap_or_default(),
        chain_len: headers
            .get("x-amz-x509-chain")
            .and_then(|v| v.to_str().ok())
            .map_or(0, |v| v.split(',').filter(|s| !s.trim().is_empty()).count()),
        request_id: request_id.clone(),
        received_at: chain::rfc3339(time::OffsetDateTime::now_utc().unix_timestamp()),
    };
    if !delay.is_zero() {
        // A client that gives up during the delay closes the connection, and hyper drops
        // this future: the guard still logs the attempt, unanswered.
        let mut held = Unanswered {
            state,
            entry: Some(entry),
        };
        tokio::time::sleep(delay).await;
        entry = held.entry.take().expect("the entry is only taken here");
    }
    let answer = match fault {
        Some(Fault::Drop) => {
            entry.fault = Some("drop".into());
            state.record(entry);
            return Err(DropConnection);
        }
        Some(Fault::Fail {
            status,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let kind = ErrorKind::for_status(status.as_u16());
            entry.fault = Some("fail".into());
            entry.error_type = Some(kind.type_name().into());
            let mut answer = error_answer(
                status,
                kind.type_name(),
                "Injected fault",
                None,
                &request_id,
            );
            if let Some(secs) = retry_after {
                answer
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(secs));
            }
            answer
        }
        Some(Fault::Malformed) => {
            entry.fault = Some("malformed".into());
            respond(
                StatusCode::CREATED,
                "application/json",
                Bytes::from_static(b"{\"credentialSet\":[{\"credentials\":{\"accessKeyId\":"),
                &request_id,
            )
        }
        Some(Fault::Empty) => {
            entry.fault = Some("empty".into());
            respond(
                StatusCode::CREATED,
                "application/json",
                Bytes::from_static(b"{\"credentialSet\":[]}"),
                &request_id,
            )
        }
        Some(Fault::Incomplete) => {
            entry.fault = Some("incomplete".into());
            let body = serde_json::json!({
                "credentialSet": [{
                    "credentials": {
                        "accessKeyId": INCOMPLETE_ACCESS_KEY_ID,
                        "secretAccessKey": INCOMPLETE_SECRET_ACCESS_KEY,
                    },
                    "packedPolicySize": 0,
                }],
            });
            respond(
                StatusCode::CREATED,
                "application/json",
                Bytes::from(body.to_string()),
                &request_id,
            )
        }
        None => {
            let received = Received {
                method: method.as_str(),
                path,
                query,
                headers,
                body,
            };
            // The `skew` fault moves the clock the request time is checked against.
            let result = authenticate(
                &received,
                &state.region,
                state.now().saturating_add(state.faults.skew_seconds()),
                state.max_skew,
                &state.leaves,
            )
            .and_then(|auth| create_session(state, &auth, query, body));
            match result {
                Ok(json) => respond(
                    StatusCode::CREATED,
                    "application/json",
                    Bytes::from(json),
                    &request_id,
                ),
                Err(e) => {
                    tracing::info!("emulator: CreateSession refused: {e}");
                    entry.error_type = Some(e.kind.type_name().into());
                    entry.reason = Some(e.reason.clone());
                    service_error(&e, &request_id)
                }
            }
        }
    };
    entry.status = answer.status().as_u16();
    state.record(entry);
    let pause = state.faults.body_pause();
    if pause.is_zero() {
        return Ok(answer);
    }
    let (parts, body) = answer.into_parts();
    Ok(Response::from_parts(parts, body.stalled(pause)))
}

/// A request held back by the `delay` fault: logged with status 0 (no answer) and the fault
/// `delay` if it is dropped before the answer, because the client left.
struct Unanswered<'a> {
    state: &'a State,
    entry: Option<ReceivedRequest>,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(mut entry) = self.entry.take() {
            entry.fault = Some("delay".into());
            self.state.record(entry);
        }
    }
}

/// The serial of the `X-Amz-X509` certificate, or the one `Credential=` claims.
fn claimed_serial(state: &State, headers: &hyper::HeaderMap) -> Option<String> {
    let from_cert = headers
        .get("x-amz-x509")
        .and_then(|v| v.to_str().ok())
        .and_then(|b64| {
            state
                .leaves
                .get_or_try(b64.as_bytes(), || chain::Cert::from_base64(b64))
                .ok()
        })
        .map(|c| c.serial_decimal.clone());
    from_cert.or_else(|| {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| sigv4x509::parse_authorization(v).ok())
            .map(|a| a.serial)
    })
}

/// The control routes change the emulator's behaviour: only loopback peers may use them.
fn refuse_remote(peer: SocketAddr, rid: &str) -> Option<Answer> {
    (!peer.ip().is_loopback()).then(|| {
        error_answer(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "control routes answer loopback peers only",
            None,
            rid,
        )
    })
}

fn control_faults(state: &State, peer: SocketAddr, body: &[u8], rid: &str) -> Answer {
    if let Some(refusal) = refuse_remote(peer, rid) {
        return refusal;
    }
    let order: FaultOrder = match serde_json::from_slice(body) {
        Ok(o) => o,
        Err(e) => {
            return error_answer(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                &format!("fault order: {e}"),
                None,
                rid,
            );
        }
    };
    match state.faults.apply(order) {
        Ok(()) => respond(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(b"{}"),
            rid,
        ),
        Err(e) => error_answer(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            &e,
            None,
            rid,
        ),
    }
}

fn control_received(state: &State, peer: SocketAddr, rid: &str) -> Answer {
    if let Some(refusal) = refuse_remote(peer, rid) {
        return refusal;
    }
    let json = serde_json::to_vec(&state.received()).unwrap_or_else(|_| b"[]".to_vec());
    respond(StatusCode::OK, "application/json", Bytes::from(json), rid)
}

fn too_large(rid: &str) -> Answer {
    error_answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::PayloadTooLarge.type_name(),
        &format!("The request body is larger than {MAX_REQUEST} bytes"),
        None,
        rid,
    )
}

fn service_error(e: &ServiceError, rid: &str) -> Answer {
    error_answer(
        e.kind.status(),
        e.kind.type_name(),
        &e.message,
        Some(&e.reason),
        rid,
    )
}

/// A restJson1 error: `X-Amzn-ErrorType`, `{"message": ...}`, and the detailed reason in
/// `X-Emulator-Reason` when it adds something.
fn error_answer(
    status: StatusCode,
    error_type: &str,
    message: &str,
    reason: Option<&str>,
    rid: &str,
) -> Answer {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut answer = respond(status, "application/json", Bytes::from(body), rid);
    if let Ok(v) = HeaderValue::from_str(error_type) {
        answer.headers_mut().insert("x-amzn-errortype", v);
    }
    if let Some(reason) = reason.filter(|r| *r != message) {
        // Header values must be visible ASCII; keep the reason readable when it is not.
        let clean: String = reason
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&clean) {
            answer.headers_mut().insert("x-emulator-reason", v);
        }
    }
    answer
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes, rid: &str) -> Answer {
    let mut answer = Response::new(AnswerBody::whole(body));
    *answer.status_mut() = status;
    let headers = answer.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(rid) {
        headers.insert("x-amzn-requestid", v);
    }
    answer
}

/// A UUID-shaped request id.
fn request_id() -> String {
    let bytes = super::sessions::random_bytes(16).unwrap_or_else(|_| vec![0; 16]);
    uuid_shaped(&bytes)
}

/// 16 bytes written as `8-4-4-4-12` lowercase hex, the shape of AWS request and subject ids.
pub(super) fn uuid_shaped(bytes: &[u8]) -> String {
    let h = hex::encode(bytes);
    let part = |r: std::ops::Range<usize>| h.get(r).unwrap_or_default().to_owned();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}
