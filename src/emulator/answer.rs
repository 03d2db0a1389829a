//! The answers the emulator sends: a body sent whole or (the `slow_body` fault) with a
//! pause in the middle, and the restJson1 error shape of the real service.

use std::convert::Infallible;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use hyper::StatusCode;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{CONTENT_TYPE, HeaderValue};

use super::errors::ServiceError;

pub type Answer = Response<AnswerBody>;

/// The error that makes hyper close a connection without answering (the `drop` fault).
#[derive(Debug)]
pub struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

/// The body of an answer: sent whole, or (the `slow_body` fault) in two parts with a pause
/// between them. Its length is always announced in `Content-Length`, so a client can tell a
/// stalled body from a finished one.
pub struct AnswerBody {
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
    pub fn stalled(self, pause: Duration) -> Self {
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

/// The answer to a refused CreateSession or STS request.
pub fn service_error(e: &ServiceError, rid: &str) -> Answer {
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
pub fn error_answer(
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

/// An answer with its content type and `x-amzn-RequestId`.
pub fn respond(status: StatusCode, content_type: &'static str, body: Bytes, rid: &str) -> Answer {
    let mut answer = Response::new(AnswerBody::whole(body));
    *answer.status_mut() = status;
    let headers = answer.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(rid) {
        headers.insert("x-amzn-requestid", v);
    }
    answer
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    #[tokio::test]
    async fn a_stalled_body_holds_back_its_second_half() {
        let answer = respond(
            StatusCode::OK,
            "text/plain",
            Bytes::from_static(b"0123456789"),
            "r",
        );
        let mut body = answer.into_body().stalled(Duration::from_millis(300));
        assert_eq!(body.size_hint().exact(), Some(10));
        let started = std::time::Instant::now();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"01234");
        assert!(started.elapsed() < Duration::from_millis(250));
        let rest = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&rest[..], b"56789");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(body.is_end_stream());
    }

    #[test]
    fn errors_carry_type_message_and_a_readable_reason() {
        let answer = error_answer(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "Untrusted",
            Some("chain\nbroken é"),
            "rid-1",
        );
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
        let h = answer.headers();
        assert_eq!(h["x-amzn-errortype"], "AccessDeniedException");
        assert_eq!(h["x-emulator-reason"], "chain?broken ?");
        assert_eq!(h["x-amzn-requestid"], "rid-1");
        let same = error_answer(StatusCode::FORBIDDEN, "T", "m", Some("m"), "r");
        assert!(!same.headers().contains_key("x-emulator-reason"));
    }
}
