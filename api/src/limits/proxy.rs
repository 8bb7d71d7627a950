//! The client address rate limits are keyed by. `X-Forwarded-For` is believed only when
//! the peer is a configured trusted proxy (`http.trusted_proxies`); from anyone else it
//! is ignored, since a client could otherwise pick a fresh bucket per request.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use vq_core::config::TrustedProxies;

/// IPv6 clients are keyed by their /64, since one subscriber usually owns a whole /64
/// and could otherwise rotate addresses freely.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let ip = client_of(peer, &parts.headers, &st.limits.trusted);
        Ok(ClientIp(bucket_of(ip)))
    }
}

/// Walks `X-Forwarded-For` from the right (the hop our proxy appended) past trusted
/// proxies; the first address not trusted is the client. A hop that does not parse ends
/// the walk at the last address a trusted proxy vouched for.
fn client_of(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    if !trusted.trusts(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted.trusts(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

fn bucket_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_and_mapped_v4_is_v4() {
        let a = ip("2001:db8:1:2:aaaa::1");
        assert_eq!(bucket_of(a), bucket_of(ip("2001:db8:1:2:bbbb::9")));
        assert_ne!(bucket_of(a), bucket_of(ip("2001:db8:1:3::1")));
        assert_eq!(bucket_of(ip("::ffff:10.0.0.7")), ip("10.0.0.7"));
        assert_eq!(bucket_of(ip("127.0.0.2")), ip("127.0.0.2"));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.9".parse().unwrap(),
        );
        // From the proxy: skip trusted hops, the first untrusted one is the client
        // (6.6.6.6 was written by the client itself and is ignored).
        assert_eq!(client_of(ip("10.1.1.1"), &h, &trusted), ip("1.2.3.4"));
        // From anyone else the header is ignored.
        assert_eq!(client_of(ip("5.5.5.5"), &h, &trusted), ip("5.5.5.5"));
        assert_eq!(
            client_of(ip("10.1.1.1"), &h, &TrustedProxies::default()),
            ip("10.1.1.1")
        );
        h.insert("x-forwarded-for", "garbage, 10.0.0.3".parse().unwrap());
        assert_eq!(client_of(ip("10.1.1.1"), &h, &trusted), ip("10.0.0.3"));
        assert_eq!(
            client_of(ip("10.1.1.1"), &HeaderMap::new(), &trusted),
            ip("10.1.1.1")
        );
    }
}
