//! The routes: `POST /sessions` (CreateSession, see [`super::session_route`]), `POST /`
//! (STS), `POST /_emulator/faults` and `GET /_emulator/received` (test control, loopback
//! peers only).

use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::{Method, Request, StatusCode};

use super::answer::{Answer, DropConnection, error_answer, respond};
use super::errors::ErrorKind;
use super::faults::FaultOrder;
use super::ids::request_id;
use super::session_route::sessions;
use super::state::State;
use super::sts;
use crate::httpd::Peer;
use crate::sigv4x509;

/// The largest request body and header block read.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Answers one request; `Err` closes the connection without an answer (the `drop` fault).
pub async fn route(
    state: &State,
    peer: Peer,
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
                &state.trust,
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

/// The control routes change the emulator's behaviour: only loopback peers may use them.
fn refuse_remote(peer: Peer, rid: &str) -> Option<Answer> {
    (!peer.is_loopback()).then(|| {
        error_answer(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "control routes answer loopback peers only",
            None,
            rid,
        )
    })
}

fn control_faults(state: &State, peer: Peer, body: &[u8], rid: &str) -> Answer {
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

fn control_received(state: &State, peer: Peer, rid: &str) -> Answer {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_routes_refuse_remote_peers() {
        let remote = Peer::Tcp("192.0.2.1:5000".parse().unwrap());
        let refusal = refuse_remote(remote, "r").unwrap();
        assert_eq!(refusal.status(), StatusCode::FORBIDDEN);
        assert!(refuse_remote(Peer::Tcp("[::1]:5000".parse().unwrap()), "r").is_none());
        assert!(refuse_remote(Peer::Unix, "r").is_none());
    }
}
