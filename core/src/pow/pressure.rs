//! How hard a join's puzzle is. A quiet drop asks nothing of anyone; the work rises with
//! the pressure a join comes under, read from counters every api node shares in the drop's
//! Redis slot:
//! - the drop's joins per second (a flood from many addresses),
//! - the joins from the caller's address in the last minute (a flood from one host; the
//!   calm level is high, so thousands of phones behind one carrier-NAT address pay a few
//!   milliseconds, not seconds),
//! - the account's age (fresh accounts, what a bot farm signs up, pay more, but only
//!   while some pressure is on).
//!
//! Past calm, each doubling of a pressure adds bits (one for the drop's rate, two for an
//! address), from `first_bits`, up to the drop's cap; the drop's fixed floor
//! (`pow_difficulty`) always holds.

use crate::config::Pow;
use crate::keys::DropKeys;
use redis::aio::ConnectionLike;
use std::net::IpAddr;

/// The counters one join was judged by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    /// The drop's joins in the busier of this second and the one before.
    pub drop_per_s: u64,
    /// This address's joins in the busier of this minute and the one before.
    pub address_per_min: u64,
}

/// What a drop asks of its joins: the manager's floor and cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounds {
    pub floor: u32,
    pub cap: u32,
}

/// Bits for a pressure `n` against its calm level: 0 up to calm, then `first` plus
/// `per_doubling` for each whole doubling past it.
fn bits_for(n: u64, calm: u32, first: u32, per_doubling: u32) -> u32 {
    if calm == 0 || n <= calm as u64 {
        return 0;
    }
    let doublings = (n / calm as u64).ilog2();
    first + per_doubling * doublings
}

/// The difficulty in force for one join. `account_age_s` is `None` when the token does
/// not say (tokens the server issued without an account, such as a manager's tools).
pub fn difficulty(p: Pressure, policy: &Pow, b: Bounds, account_age_s: Option<i64>) -> u32 {
    let by_drop = bits_for(p.drop_per_s, policy.calm_joins_per_s, policy.first_bits, 1);
    let by_address = bits_for(
        p.address_per_min,
        policy.calm_joins_per_address_min,
        policy.first_bits,
        2,
    );
    let mut bits = by_drop.max(by_address);
    let young = account_age_s.is_some_and(|a| a < policy.young_account.as_secs() as i64);
    if bits > 0 && young {
        bits += policy.young_bits;
    }
    bits.min(b.cap).max(b.floor)
}

/// The drop's floor and cap and the pressure a join comes under, in one round trip with
/// the join itself (`count`: this call is a join attempt, counted fleet-wide) or without
/// (a challenge is priced at the pressure now). A drop without a mirror asks no work.
async fn query<C: ConnectionLike + Send>(
    conn: &mut C,
    k: &DropKeys,
    ip: IpAddr,
    now_ms: i64,
    count: bool,
) -> redis::RedisResult<(Bounds, Pressure)> {
    let (sec, min) = (now_ms.div_euclid(1000), now_ms.div_euclid(60_000));
    let (now_s, now_a) = (k.join_rate(sec), k.join_addr(min, ip));
    let mut p = redis::pipe();
    p.hget(k.cfg(), &["pow", "pow_max"]);
    if count {
        p.incr(&now_s, 1).expire(&now_s, 3).ignore();
        p.incr(&now_a, 1).expire(&now_a, 120).ignore();
    } else {
        p.get(&now_s).get(&now_a);
    }
    p.get(k.join_rate(sec - 1)).get(k.join_addr(min - 1, ip));
    type Reply = (
        (Option<u32>, Option<u32>),
        Option<u64>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
    );
    let ((floor, cap), cur_s, cur_a, prev_s, prev_a): Reply = p.query_async(conn).await?;
    let m = |a: Option<u64>, b: Option<u64>| a.unwrap_or(0).max(b.unwrap_or(0));
    let bounds = Bounds {
        floor: floor.unwrap_or(0),
        cap: cap.unwrap_or(0),
    };
    let pressure = Pressure {
        drop_per_s: m(cur_s, prev_s),
        address_per_min: m(cur_a, prev_a),
    };
    Ok((bounds, pressure))
}

/// Counts this join and returns the drop's bounds and the pressure it came under.
pub async fn record<C: ConnectionLike + Send>(
    conn: &mut C,
    k: &DropKeys,
    ip: IpAddr,
    now_ms: i64,
) -> redis::RedisResult<(Bounds, Pressure)> {
    query(conn, k, ip, now_ms, true).await
}

/// The drop's bounds and the pressure now, without counting a join.
pub async fn read<C: ConnectionLike + Send>(
    conn: &mut C,
    k: &DropKeys,
    ip: IpAddr,
    now_ms: i64,
) -> redis::RedisResult<(Bounds, Pressure)> {
    query(conn, k, ip, now_ms, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Bounds = Bounds { floor: 0, cap: 20 };

    fn at(drop_per_s: u64, address_per_min: u64) -> Pressure {
        Pressure {
            drop_per_s,
            address_per_min,
        }
    }

    #[test]
    fn calm_costs_nothing_even_for_a_fresh_account() {
        let p = Pow::default();
        assert_eq!(difficulty(at(0, 0), &p, OPEN, Some(0)), 0);
        assert_eq!(
            difficulty(at(5_000, 1_000), &p, OPEN, Some(0)),
            0,
            "at calm"
        );
    }

    #[test]
    fn each_doubling_past_calm_adds_bits_up_to_the_cap() {
        let p = Pow::default();
        assert_eq!(difficulty(at(5_001, 0), &p, OPEN, None), 8);
        assert_eq!(difficulty(at(10_000, 0), &p, OPEN, None), 9);
        assert_eq!(difficulty(at(40_000, 0), &p, OPEN, None), 11);
        // An address: two bits a doubling, so one host's flood climbs fast.
        assert_eq!(difficulty(at(0, 2_000), &p, OPEN, None), 10);
        assert_eq!(difficulty(at(0, 64_000), &p, OPEN, None), 20);
        assert_eq!(difficulty(at(0, 1 << 30), &p, OPEN, None), 20, "capped");
        // The busier signal decides.
        assert_eq!(difficulty(at(10_000, 4_000), &p, OPEN, None), 12);
    }

    #[test]
    fn fresh_accounts_pay_more_only_under_pressure() {
        let p = Pow::default();
        let day = 86_400;
        assert_eq!(difficulty(at(10_000, 0), &p, OPEN, Some(60)), 13);
        assert_eq!(
            difficulty(at(10_000, 0), &p, OPEN, Some(day)),
            9,
            "a day old"
        );
        assert_eq!(difficulty(at(10_000, 0), &p, OPEN, None), 9, "age unknown");
    }

    #[test]
    fn the_floor_always_holds_and_a_zero_cap_switches_the_rise_off() {
        let p = Pow::default();
        let fixed = Bounds { floor: 12, cap: 0 };
        assert_eq!(difficulty(at(0, 0), &p, fixed, None), 12);
        assert_eq!(difficulty(at(1 << 30, 1 << 30), &p, fixed, Some(0)), 12);
        let off = Bounds { floor: 0, cap: 0 };
        assert_eq!(difficulty(at(1 << 30, 1 << 30), &p, off, Some(0)), 0);
    }
}
