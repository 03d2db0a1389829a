//! The five TPM commands this helper sends (TPM 2.0 Part 3): CreatePrimary, Load, Sign,
//! ReadPublic and FlushContext, each with a password session where the command needs an
//! authorisation.

use super::device::Device;
use super::error::TpmError;
use super::public::{self, TpmPublic};
use super::wire::{Command, Malformed, Reader};
use crate::secret::Secret;

const CC_CREATE_PRIMARY: u32 = 0x0000_0131;
const CC_LOAD: u32 = 0x0000_0157;
const CC_SIGN: u32 = 0x0000_015D;
const CC_FLUSH_CONTEXT: u32 = 0x0000_0165;
const CC_READ_PUBLIC: u32 = 0x0000_0173;
/// `TPM_ST_HASHCHECK`, the tag of the (null) validation ticket of Sign.
const ST_HASHCHECK: u16 = 0x8024;
/// `TPM_RH_NULL`.
pub const RH_NULL: u32 = 0x4000_0007;

fn empty() -> Secret {
    Secret::from(String::new())
}

fn malformed(device: &Device, problem: Malformed) -> TpmError {
    TpmError::Malformed {
        device: device.describe(),
        problem,
    }
}

/// Creates the standard storage primary key under `hierarchy` (empty hierarchy
/// password) and returns its transient handle.
pub fn create_primary(device: &mut Device, hierarchy: u32) -> Result<u32, TpmError> {
    let command = Command::new(CC_CREATE_PRIMARY, &[hierarchy])
        .password(empty())
        // inSensitive: a TPM2B of an empty userAuth and empty data.
        .sized(&[0, 0, 0, 0])
        .sized(&public::storage_primary_template())
        .sized(&[]) // outsideInfo
        .u32(0); // creationPCR: no PCRs
    let response = device.run("CreatePrimary", &command, 1)?;
    Ok(response.handles[0])
}

/// Loads a key's public and private blobs (each a `TPM2B`, size included) under
/// `parent` (a persistent key without a password, or a primary just made).
pub fn load(
    device: &mut Device,
    parent: u32,
    private: &[u8],
    public: &[u8],
) -> Result<u32, TpmError> {
    let command = Command::new(CC_LOAD, &[parent])
        .password(empty())
        .raw(private)
        .raw(public);
    let response = device.run("Load", &command, 1)?;
    Ok(response.handles[0])
}

/// The public area of a loaded or persistent key.
pub fn read_public(device: &mut Device, handle: u32) -> Result<TpmPublic, TpmError> {
    let response = device.run("ReadPublic", &Command::new(CC_READ_PUBLIC, &[handle]), 0)?;
    let mut r = Reader::new(&response.params);
    let area = r
        .sized("ReadPublic outPublic")
        .map_err(|e| malformed(device, e))?;
    public::parse(area).map_err(|e| match e {
        public::PublicError::Malformed(m) => malformed(device, m),
        public::PublicError::Unsupported(what) => TpmError::Malformed {
            device: device.describe(),
            problem: Malformed(if what.starts_with("ECC") {
                "the key's curve is not supported"
            } else {
                "the key is neither RSA nor ECC"
            }),
        },
    })
}

/// A signature as the TPM returns it.
pub enum Signature {
    /// RSASSA: the signature, as long as the modulus.
    Rsa(Vec<u8>),
    /// ECDSA: the two scalars, big-endian.
    Ecdsa { r: Vec<u8>, s: Vec<u8> },
}

/// Signs `digest` (made on the host) with the key at `handle`, authorised with
/// `password`, with `scheme` (RSASSA or ECDSA) and the hash `hash` the digest is
/// labelled with. The validation ticket is the null ticket: the key is not restricted.
pub fn sign(
    device: &mut Device,
    handle: u32,
    password: Secret,
    digest: &[u8],
    scheme: u16,
    hash: u16,
) -> Result<Signature, TpmError> {
    let command = Command::new(CC_SIGN, &[handle])
        .password(password)
        .sized(digest)
        .u16(scheme)
        .u16(hash)
        .u16(ST_HASHCHECK)
        .u32(RH_NULL)
        .sized(&[]);
    let response = device.run("Sign", &command, 0)?;
    let mut r = Reader::new(&response.params);
    let parse = |r: &mut Reader<'_>| -> Result<Signature, Malformed> {
        let alg = r.u16("signature algorithm")?;
        let _hash = r.u16("signature hash")?;
        match alg {
            public::ALG_RSASSA => Ok(Signature::Rsa(r.sized("RSA signature")?.to_vec())),
            public::ALG_ECDSA => Ok(Signature::Ecdsa {
                r: r.sized("ECDSA r")?.to_vec(),
                s: r.sized("ECDSA s")?.to_vec(),
            }),
            _ => Err(Malformed("a signature of another scheme")),
        }
    };
    parse(&mut r).map_err(|e| malformed(device, e))
}

/// Flushes a transient object. Failures are logged, not returned: the signature is made
/// by then, and the kernel's resource manager flushes at close anyway.
pub fn flush(device: &mut Device, handle: u32) {
    let command = Command::new(CC_FLUSH_CONTEXT, &[]).u32(handle);
    if let Err(e) = device.run("FlushContext", &command, 0) {
        tracing::warn!(handle = format!("0x{handle:08x}"), error = %e, "cannot flush a TPM object");
    }
}
