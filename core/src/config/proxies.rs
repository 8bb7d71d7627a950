//! `http.trusted_proxies`: the reverse proxies whose `X-Forwarded-For` is believed. Any
//! other peer could write whatever it likes there and pick its own rate-limit bucket.

use serde::{Deserialize, Deserializer};
use std::net::IpAddr;

/// One network, e.g. `10.0.0.0/8` or `2001:db8::/32`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP network"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("{s:?} has a bad prefix length"))?,
        };
        Ok(Cidr { net, len })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), 32, self.len)
                    == masked(u32::from(a).into(), 32, self.len)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), 128, self.len) == masked(u128::from(a), 128, self.len)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, width: u8, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        bits >> (width - len)
    }
}

/// The configured proxy networks: a TOML list, or one comma-separated string (which is
/// what an environment variable such as `VQ_HTTP__TRUSTED_PROXIES=10.0.0.0/8` gives).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn parse(list: &[&str]) -> Result<TrustedProxies, String> {
        list.iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Cidr::parse(s))
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let items: Vec<String> = match Raw::deserialize(d)? {
            Raw::One(s) => s.split(',').map(str::to_string).collect(),
            Raw::Many(v) => v,
        };
        let refs: Vec<&str> = items.iter().map(String::as_str).collect();
        TrustedProxies::parse(&refs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let t = TrustedProxies::parse(&["10.0.0.0/8", " 192.168.1.7", "2001:db8::/32"]).unwrap();
        assert!(t.trusts(ip("10.200.3.4")));
        assert!(t.trusts(ip("::ffff:10.0.0.1")));
        assert!(!t.trusts(ip("11.0.0.1")));
        assert!(t.trusts(ip("192.168.1.7")));
        assert!(!t.trusts(ip("192.168.1.8")));
        assert!(t.trusts(ip("2001:db8:ffff::1")));
        assert!(!t.trusts(ip("2001:db9::1")));
        assert!(TrustedProxies::parse(&["0.0.0.0/0"])
            .unwrap()
            .trusts(ip("8.8.8.8")));
        assert!(TrustedProxies::default().is_empty());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("proxy.local").is_err());
    }

    #[test]
    fn a_comma_separated_string_or_a_list_deserializes() {
        let one: TrustedProxies = serde_json::from_str("\"10.0.0.0/8, 127.0.0.1\"").unwrap();
        let many: TrustedProxies = serde_json::from_str("[\"10.0.0.0/8\",\"127.0.0.1\"]").unwrap();
        assert_eq!(one, many);
        assert!(serde_json::from_str::<TrustedProxies>("\"nope\"").is_err());
        let none: TrustedProxies = serde_json::from_str("\"\"").unwrap();
        assert!(none.is_empty());
    }
}
