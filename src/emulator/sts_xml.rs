//! The STS query protocol's XML answers, shared by the STS actions: the error shape
//! (`ErrorResponse/Error/{Type,Code,Message}`) and text escaping.

use hyper::StatusCode;

pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// An STS answer: status and XML body.
pub struct StsAnswer {
    pub status: StatusCode,
    pub body: String,
    /// The error code, for the log.
    pub code: Option<&'static str>,
}

/// STS's error answer.
pub fn error(status: StatusCode, code: &'static str, message: &str, request_id: &str) -> StsAnswer {
    let kind = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    StsAnswer {
        status,
        body: format!(
            "<ErrorResponse xmlns=\"{NAMESPACE}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
            xml_escape(message)
        ),
        code: Some(code),
    }
}

pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
