//! Identifiers in the shape AWS gives them: request ids and subject ids.

/// A random UUID-shaped request id.
pub fn request_id() -> String {
    let bytes = super::sessions::random_bytes(16).unwrap_or_else(|_| vec![0; 16]);
    uuid_shaped(&bytes)
}

/// 16 bytes written as `8-4-4-4-12` lowercase hex, the shape of AWS request and subject ids.
pub fn uuid_shaped(bytes: &[u8]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_uuid_shape() {
        assert_eq!(
            uuid_shaped(&(0..16).collect::<Vec<u8>>()),
            "00010203-0405-0607-0809-0a0b0c0d0e0f"
        );
        let id = request_id();
        let lengths: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12], "{id}");
        assert_ne!(request_id(), id);
    }
}
