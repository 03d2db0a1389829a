//! STS answers are XML (the query protocol): `AssumeRoleResponse/AssumeRoleResult` on
//! success, `ErrorResponse/Error/{Code,Message}` on failure. Only the text of named leaf
//! elements is needed, so the answer is read with a tokenizer into `path -> text`, where a
//! path is the local element names joined by `/` (namespaces play no part in STS answers).

use std::collections::HashMap;

/// The deepest nesting read. STS's answers go four levels deep; a deeper document is not one
/// of them, and each leaf's path is as long as its depth, so a document of nothing but
/// nested elements would cost time and memory quadratic in its length.
const MAX_DEPTH: usize = 16;

/// The text of every leaf element of `xml`, by path, for example
/// `AssumeRoleResponse/AssumeRoleResult/Credentials/AccessKeyId`. `None` when `xml` is not
/// well-formed or nests deeper than [`MAX_DEPTH`].
pub fn leaf_texts(xml: &str) -> Option<HashMap<String, String>> {
    use xmlparser::{ElementEnd, Token};

    let mut stack: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut out = HashMap::new();
    let mut root_seen = false;
    for token in xmlparser::Tokenizer::from(xml) {
        match token.ok()? {
            Token::ElementStart { local, .. } => {
                if stack.is_empty() && root_seen {
                    return None;
                }
                root_seen = true;
                if stack.len() >= MAX_DEPTH {
                    return None;
                }
                stack.push(local.as_str().to_owned());
                text.clear();
            }
            Token::ElementEnd { end, .. } => match end {
                ElementEnd::Open => {}
                ElementEnd::Empty => {
                    out.entry(stack.join("/")).or_insert_with(String::new);
                    stack.pop();
                    text.clear();
                }
                ElementEnd::Close(_, local) => {
                    if stack.last().map(String::as_str) != Some(local.as_str()) {
                        return None;
                    }
                    out.entry(stack.join("/"))
                        .or_insert_with(|| std::mem::take(&mut text));
                    stack.pop();
                    text.clear();
                }
            },
            Token::Text { text: t } => text.push_str(&unescape(t.as_str())?),
            Token::Cdata { text: t, .. } => text.push_str(t.as_str()),
            _ => {}
        }
    }
    (stack.is_empty() && root_seen).then_some(out)
}

/// Replaces XML's five named entities and numeric character references.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after.find(';')?;
        let name = &after[..end];
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    name.strip_prefix('#')?.parse().ok()?
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_by_path_with_entities_and_cdata() {
        let xml = r#"<?xml version="1.0"?>
<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: a &amp; b &lt;c&gt; &#x41;&#66; <![CDATA[<raw>]]></Message>
    <Empty/>
  </Error>
  <RequestId>r-1</RequestId>
</ErrorResponse>"#;
        let leaves = leaf_texts(xml).unwrap();
        assert_eq!(leaves["ErrorResponse/Error/Code"], "AccessDenied");
        assert_eq!(
            leaves["ErrorResponse/Error/Message"],
            "User: a & b <c> AB <raw>"
        );
        assert_eq!(leaves["ErrorResponse/Error/Empty"], "");
        assert_eq!(leaves["ErrorResponse/RequestId"], "r-1");
    }

    #[test]
    fn malformed_documents_are_refused() {
        for bad in [
            "",
            "not xml",
            "<a><b></a></b>",
            "<a>",
            "<a>&bogus;</a>",
            "<a>&#xD800;</a>",
            "<a></a><b></b>",
        ] {
            assert!(leaf_texts(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_quickly() {
        let at = |depth: usize| format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        assert!(leaf_texts(&at(MAX_DEPTH)).is_some());
        assert!(leaf_texts(&at(MAX_DEPTH + 1)).is_none());
        // An answer of 256 KiB (the most the client reads) of nothing but nesting.
        let started = std::time::Instant::now();
        assert!(leaf_texts(&at(256 * 1024 / 7)).is_none());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
