//! `POST /sessions`: the faults of [`super::faults`] are applied here, then the request is
//! authenticated and answered by [`super::create_session`], and every attempt is logged.

use bytes::Bytes;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Method, Response, StatusCode};

use super::answer::{Answer, DropConnection, error_answer, respond, service_error};
use super::chain;
use super::create_session::create_session;
use super::errors::ErrorKind;
use super::faults::{Fault, INCOMPLETE_ACCESS_KEY_ID, INCOMPLETE_SECRET_ACCESS_KEY};
use super::state::{ReceivedRequest, State, VerifiedSignature};
use super::verify::{Received, authenticate};
use crate::sigv4x509;

/// Answers one CreateSession request, or (the `drop` fault) none.
pub async fn sessions(
    state: &State,
    method: &Method,
    path: &str,
    query: &str,
    headers: &hyper::HeaderMap,
    body: &Bytes,
    request_id: String,
) -> Result<Answer, DropConnection> {
    // The quota comes before any fault, as the service's front end does.
    let throttled = state
        .throttle
        .admit(&super::throttle::account_of(query, body));
    let (delay, fault) = match throttled {
        Ok(()) => state.faults.take(),
        Err(retry_after) => (
            std::time::Duration::ZERO,
            Some(Fault::Throttled { retry_after }),
        ),
    };
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
        verified: None,
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
            refusal(
                status,
                kind.type_name(),
                "Injected fault",
                retry_after,
                &request_id,
            )
        }
        Some(Fault::Throttled { retry_after }) => {
            entry.fault = Some("throttled".into());
            entry.error_type = Some("ThrottlingException".into());
            refusal(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Rate exceeded",
                retry_after,
                &request_id,
            )
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
            .and_then(|auth| {
                entry.verified = Some(VerifiedSignature {
                    string_to_sign: auth.string_to_sign.clone(),
                    signature_hex: hex::encode(&auth.signature),
                });
                create_session(state, &auth, query, body)
            });
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

/// A refusal of the service's shape, with `Retry-After` when one is given.
fn refusal(
    status: StatusCode,
    error_type: &str,
    message: &str,
    retry_after: Option<u32>,
    request_id: &str,
) -> Answer {
    let mut answer = error_answer(status, error_type, message, None, request_id);
    if let Some(secs) = retry_after {
        answer
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    answer
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
