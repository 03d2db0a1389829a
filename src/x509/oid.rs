//! Object identifiers of the key algorithms and curves this crate meets, and their common
//! names for error messages.

pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
pub const RSA_PSS: &str = "1.2.840.113549.1.1.10";
pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
pub const ED25519: &str = "1.3.101.112";
pub const P256: &str = "1.2.840.10045.3.1.7";
pub const P384: &str = "1.3.132.0.34";
pub const P521: &str = "1.3.132.0.35";
pub const SECP256K1: &str = "1.3.132.0.10";
pub const P224: &str = "1.3.132.0.33";
pub const ML_DSA_44: &str = "2.16.840.1.101.3.4.3.17";
pub const ML_DSA_65: &str = "2.16.840.1.101.3.4.3.18";
pub const ML_DSA_87: &str = "2.16.840.1.101.3.4.3.19";

/// The common name of a curve OID, for error messages.
pub fn curve_name(oid: &str) -> &str {
    match oid {
        P256 => "P-256",
        P384 => "P-384",
        P521 => "P-521",
        SECP256K1 => "secp256k1",
        P224 => "P-224",
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1",
        "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1",
        "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1",
        other => other,
    }
}

/// The common name of a key algorithm OID, for error messages.
pub fn algorithm_name(oid: &str) -> &str {
    match oid {
        RSA_ENCRYPTION => "RSA",
        RSA_PSS => "RSA-PSS",
        EC_PUBLIC_KEY => "EC",
        ED25519 => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.3.101.110" => "X25519",
        "1.2.840.10040.4.1" => "DSA",
        ML_DSA_44 => "ML-DSA-44",
        ML_DSA_65 => "ML-DSA-65",
        ML_DSA_87 => "ML-DSA-87",
        other => other,
    }
}
