//! The one line that reports an AWS service's refusal, the same for CreateSession and for STS:
//! what was refused, whether the service refused or failed (5xx and throttling "failed", since
//! they may pass), its code and message, what the user can do, how many attempts were made, and
//! the request id that AWS support asks for.

/// `"s"` for any count but one.
pub fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What a service answered, for [`line`].
pub struct Refusal<'a> {
    pub status: u16,
    pub code: &'a str,
    pub message: &'a str,
    pub hint: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub attempts: u32,
}

/// `"{what} refused (403 AccessDenied): message - hint (after 3 attempts) [request id …]"`.
pub fn line(what: &str, refusal: &Refusal<'_>) -> String {
    let status = refusal.status;
    let verb = if status >= 500 || status == 429 {
        "failed"
    } else {
        "refused"
    };
    let mut out = format!(
        "{what} {verb} ({status} {}): {}",
        refusal.code, refusal.message
    );
    if let Some(hint) = refusal.hint {
        out.push_str(" - ");
        out.push_str(hint);
    }
    if refusal.attempts > 1 {
        out.push_str(&format!(" (after {} attempts)", refusal.attempts));
    }
    if let Some(id) = refusal.request_id {
        out.push_str(&format!(" [request id {id}]"));
    }
    out
}
