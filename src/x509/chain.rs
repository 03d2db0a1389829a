//! The certificate chain sent beside the leaf in `X-Amz-X509-Chain`.

use super::certificate::Certificate;

/// The service's limit on `X-Amz-X509-Chain`.
pub const MAX_CHAIN: usize = 5;

/// Orders the chain to send: the leaf's issuer first, then its issuer, and so on; any
/// certificate off that path follows in the order given. Duplicates and copies of the
/// leaf are dropped, since they only lengthen the header.
pub fn order_chain(leaf: &Certificate, pool: Vec<Certificate>) -> Vec<Certificate> {
    let mut pool: Vec<Certificate> = pool.into_iter().fold(Vec::new(), |mut kept, c| {
        if c != *leaf && !kept.contains(&c) {
            kept.push(c);
        }
        kept
    });
    let mut ordered = Vec::with_capacity(pool.len());
    let mut current_issuer = leaf.issuer().to_owned();
    let mut current_subject = leaf.subject().to_owned();
    while current_issuer != current_subject {
        let Some(i) = pool.iter().position(|c| c.subject() == current_issuer) else {
            break;
        };
        let next = pool.remove(i);
        current_issuer = next.issuer().to_owned();
        current_subject = next.subject().to_owned();
        ordered.push(next);
    }
    ordered.extend(pool);
    ordered
}
