//! The verifiable pre-queue draw (commit and reveal).
//!
//! A drop's secret 32-byte seed is drawn when the drop is created and only its commitment,
//! hex SHA-256(seed), is published until the drop starts; the seed is revealed afterwards.
//! Every buyer has a per-drop pseudonym (HMAC of a server key over drop id and account id,
//! truncated to 16 bytes, hex) that cannot be turned back into the account. A pre-queue
//! joiner's queue score is the first 52 bits of HMAC-SHA256(seed, pseudonym as its ASCII
//! hex text) as a fraction in [0, 1): exactly representable in a double, so the Redis ZSET
//! order equals the order anyone recomputes here. Ties (odds about n²/2⁵³) fall back to
//! the pseudonym's byte order, which is also how Redis orders equal scores.
//!
//! Because the seed is fixed before anyone joins and the pseudonyms are fixed by the
//! accounts, the server cannot choose the order after seeing who joined without breaking
//! the commitment; `verify` checks exactly that from public data alone.

use crate::domain::{DropId, UserId};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// Bytes in a seed.
pub const SEED_BYTES: usize = 32;
/// Bytes of the HMAC kept in a pseudonym (shown as twice as many hex characters).
pub const PSEUDONYM_BYTES: usize = 16;
/// Bits of the HMAC used for the score: a double holds them exactly.
const SCORE_BITS: u32 = 52;

/// A drop's secret draw seed.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed([u8; SEED_BYTES]);

impl Seed {
    /// A fresh seed from the operating system's random source.
    pub fn random() -> Seed {
        use rand::RngCore;
        let mut b = [0u8; SEED_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut b);
        Seed(b)
    }

    pub fn from_bytes(b: &[u8]) -> Option<Seed> {
        b.try_into().ok().map(Seed)
    }

    pub fn from_hex(s: &str) -> Option<Seed> {
        hex::decode(s).ok().and_then(|b| Seed::from_bytes(&b))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The published commitment: hex SHA-256 of the seed.
    pub fn commitment(&self) -> String {
        hex::encode(Sha256::digest(self.0))
    }

    /// The draw key of a pseudonym: the first 52 bits of HMAC-SHA256(seed, pseudonym).
    pub fn draw_key(&self, pseudonym: &str) -> u64 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("any key length");
        mac.update(pseudonym.as_bytes());
        let out = mac.finalize().into_bytes();
        let first: [u8; 8] = out[..8].try_into().expect("8 bytes");
        u64::from_be_bytes(first) >> (64 - SCORE_BITS)
    }

    /// The queue score of a pre-queue joiner, in [0, 1), exact in a double.
    pub fn score(&self, pseudonym: &str) -> f64 {
        self.draw_key(pseudonym) as f64 / (1u64 << SCORE_BITS) as f64
    }

    /// The pseudonyms in draw order: by draw key, ties by pseudonym.
    pub fn order(&self, pseudonyms: &[String]) -> Vec<String> {
        let mut keyed: Vec<(u64, &String)> =
            pseudonyms.iter().map(|p| (self.draw_key(p), p)).collect();
        keyed.sort();
        keyed.into_iter().map(|(_, p)| p.clone()).collect()
    }
}

/// For reading the seed from its BYTEA column (`#[sqlx(try_from = "Vec<u8>")]`).
impl TryFrom<Vec<u8>> for Seed {
    type Error = String;

    fn try_from(b: Vec<u8>) -> Result<Seed, String> {
        Seed::from_bytes(&b).ok_or_else(|| format!("a seed is {SEED_BYTES} bytes, not {}", b.len()))
    }
}

impl fmt::Debug for Seed {
    /// Never prints the secret (it would leak through logs before the start).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seed(commitment {})", self.commitment())
    }
}

/// A buyer's per-drop pseudonym: hex of HMAC-SHA256(key, drop id (8 bytes, big endian) ||
/// account id (16 bytes)) truncated to 16 bytes. Different for every drop, so two drops'
/// lists cannot be joined on it.
pub fn pseudonym(key: &[u8], drop: DropId, user: UserId) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(&drop.get().to_be_bytes());
    mac.update(user.0.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..PSEUDONYM_BYTES])
}

/// The pseudonym key from a server secret, with a label so it never equals a key that
/// secret already serves (e-mail hashes, tokens).
pub fn pseudonym_key(secret: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(secret).expect("any key length");
    mac.update(b"vitaqueue pre-queue pseudonym v1");
    mac.finalize().into_bytes().into()
}

/// The pre-queue score and pseudonym a join passes to lua/join.lua.
#[derive(Debug, Clone, Copy)]
pub struct Draw<'a> {
    pub score: f64,
    pub pseudonym: &'a str,
}

/// What the fairness endpoint publishes after the start.
#[derive(Debug, Clone)]
pub struct PublishedDraw {
    pub commitment: String,
    pub seed_hex: String,
    /// The pre-queue joiners in the published order.
    pub pseudonyms: Vec<String>,
}

/// Why a published draw does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("the seed is not {SEED_BYTES} bytes of hex")]
    BadSeed,
    #[error("SHA-256(seed) = {actual} but the commitment is {published}")]
    BadCommitment { published: String, actual: String },
    #[error("entry {index} is not a pseudonym ({PSEUDONYM_BYTES} bytes of lowercase hex)")]
    BadPseudonym { index: usize },
    #[error("pseudonym {pseudonym} is listed twice")]
    Duplicate { pseudonym: String },
    #[error("position {index}: the list has {listed} but the seed puts {expected} there")]
    OutOfOrder {
        index: usize,
        listed: String,
        expected: String,
    },
}

/// A draw that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub joiners: usize,
    pub commitment: String,
}

/// Checks a published draw from public data alone: the seed matches the commitment, every
/// entry is a well-formed distinct pseudonym, and the list is in the order the seed gives.
pub fn verify(d: &PublishedDraw) -> Result<Verified, Mismatch> {
    let seed = Seed::from_hex(&d.seed_hex).ok_or(Mismatch::BadSeed)?;
    let actual = seed.commitment();
    if !actual.eq_ignore_ascii_case(d.commitment.trim()) {
        return Err(Mismatch::BadCommitment {
            published: d.commitment.clone(),
            actual,
        });
    }
    let mut seen = std::collections::HashSet::new();
    for (index, p) in d.pseudonyms.iter().enumerate() {
        if !is_pseudonym(p) {
            return Err(Mismatch::BadPseudonym { index });
        }
        if !seen.insert(p.as_str()) {
            return Err(Mismatch::Duplicate {
                pseudonym: p.clone(),
            });
        }
    }
    let expected = seed.order(&d.pseudonyms);
    if let Some(index) = (0..expected.len()).find(|&i| expected[i] != d.pseudonyms[i]) {
        return Err(Mismatch::OutOfOrder {
            index,
            listed: d.pseudonyms[index].clone(),
            expected: expected[index].clone(),
        });
    }
    Ok(Verified {
        joiners: d.pseudonyms.len(),
        commitment: actual,
    })
}

/// 16 bytes of lowercase hex: the form `pseudonym` produces.
pub fn is_pseudonym(p: &str) -> bool {
    p.len() == PSEUDONYM_BYTES * 2 && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
#[path = "fairness_tests.rs"]
mod tests;
