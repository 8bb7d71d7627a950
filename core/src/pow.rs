//! Proof of work at join: a bot pays CPU per account and drop, an honest browser a moment.
//! A solution to a challenge `nonce` is a `counter` such that
//! SHA-256(nonce ‖ account ‖ drop ‖ counter) starts with `difficulty` zero bits, every part
//! written as text (nonce in hex, account as its UUID, drop and counter in decimal), so a
//! page can compute it with `crypto.subtle` and nothing else.

mod pressure;

pub use pressure::{difficulty, read, record, Bounds, Pressure};

use crate::domain::{DropId, UserId};
use sha2::{Digest, Sha256};

/// The hash a solution is judged by.
pub fn digest(nonce: &str, account: UserId, drop: DropId, counter: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(nonce.as_bytes());
    h.update(account.0.to_string().as_bytes());
    h.update(drop.get().to_string().as_bytes());
    h.update(counter.to_string().as_bytes());
    h.finalize().into()
}

pub fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut n = 0;
    for b in hash {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

pub fn is_solution(nonce: &str, account: UserId, drop: DropId, counter: u64, bits: u32) -> bool {
    leading_zero_bits(&digest(nonce, account, drop, counter)) >= bits
}

/// The first counter that solves the challenge (what the load generator and tests run).
/// The hash state after the fixed prefix is kept and cloned per counter, and the counter
/// is written into a stack buffer: a crowd's generator solves thousands of these on the
/// cores the server runs on.
pub fn solve(nonce: &str, account: UserId, drop: DropId, bits: u32) -> u64 {
    let mut prefix = Sha256::new();
    prefix.update(nonce.as_bytes());
    prefix.update(account.0.to_string().as_bytes());
    prefix.update(drop.get().to_string().as_bytes());
    let mut digits = [0u8; 20];
    (0..)
        .find(|c| {
            let mut h = prefix.clone();
            h.update(decimal(*c, &mut digits));
            leading_zero_bits(&h.finalize()) >= bits
        })
        .expect("some counter solves it")
}

/// `n` in decimal, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_writes_what_to_string_does() {
        let mut b = [0u8; 20];
        for n in [0, 7, 10, 99, 12_345, u64::MAX] {
            assert_eq!(decimal(n, &mut b), n.to_string().as_bytes());
        }
    }

    #[test]
    fn a_solution_has_the_leading_zero_bits_and_binds_account_and_drop() {
        assert_eq!(leading_zero_bits(&[0, 0x0f, 0xff]), 12);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        let (a, b) = (UserId(uuid::Uuid::new_v4()), UserId(uuid::Uuid::new_v4()));
        let d = DropId::new(7).unwrap();
        let c = solve("abcd", a, d, 10);
        assert!(is_solution("abcd", a, d, c, 10));
        let elsewhere = is_solution("abcd", b, d, c, 10)
            && is_solution("abcd", a, DropId::new(8).unwrap(), c, 10);
        assert!(
            !elsewhere,
            "a solution does not carry over to another account and drop"
        );
    }
}
