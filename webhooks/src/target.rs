//! Where a webhook may be sent. A URL must be https (http only where private targets are
//! allowed, i.e. tests), carry no credentials, and resolve to public addresses only
//! (SSRF: no loopback, private, link-local, shared, documentation or reserved ranges).
//! The check runs at registration and again at every delivery, where [`PublicOnly`] is the
//! HTTP client's resolver: the address connected to is the address checked, so a name that
//! re-resolves to 127.0.0.1 after registration (DNS rebinding) is refused too.

use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const MAX_URL_LEN: usize = 2048;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("is not a valid absolute URL")]
    Invalid,
    #[error("must use https")]
    Scheme,
    #[error("must not carry credentials")]
    Credentials,
    #[error("must be at most 2048 characters")]
    TooLong,
    #[error("does not resolve")]
    Unresolvable,
    #[error("resolves to a loopback, private or link-local address ({0}), which is refused")]
    Private(IpAddr),
}

/// Parses and checks a URL's form (no lookup).
pub fn parse(raw: &str, allow_private: bool) -> Result<Url, TargetError> {
    if raw.len() > MAX_URL_LEN {
        return Err(TargetError::TooLong);
    }
    let url = Url::parse(raw).map_err(|_| TargetError::Invalid)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(TargetError::Scheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    if url.host().is_none() {
        return Err(TargetError::Invalid);
    }
    Ok(url)
}

/// Parses the URL and resolves its host: every address must be public (unless allowed).
pub async fn check(raw: &str, allow_private: bool) -> Result<Url, TargetError> {
    let url = parse(raw, allow_private)?;
    let host = url.host_str().ok_or(TargetError::Invalid)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| TargetError::Unresolvable)?
        .collect();
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable);
    }
    if !allow_private {
        if let Some(bad) = addrs.iter().map(|a| a.ip()).find(|ip| !is_public(*ip)) {
            return Err(TargetError::Private(bad));
        }
    }
    Ok(url)
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // shared (carrier NAT)
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))) // benchmarking
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64: may embed a private IPv4
        || s[0] == 0x2002) // 6to4: likewise
}

/// The delivery client's resolver: only public addresses come out (unless allowed).
pub struct PublicOnly {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let ok: Vec<SocketAddr> = found.filter(|a| allow || is_public(a.ip())).collect();
            if ok.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> =
                    format!("{} resolves to no public address", name.as_str()).into();
                return Err(e);
            }
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_need_https_and_no_credentials() {
        assert_eq!(
            parse("http://example.com/x", false),
            Err(TargetError::Scheme)
        );
        assert!(parse("http://127.0.0.1:1/x", true).is_ok());
        assert_eq!(
            parse("https://u:p@example.com/", false),
            Err(TargetError::Credentials)
        );
        assert_eq!(parse("not a url", false), Err(TargetError::Invalid));
        assert_eq!(parse("ftp://example.com/", false), Err(TargetError::Scheme));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(parse(&long, false), Err(TargetError::TooLong));
    }

    #[tokio::test]
    async fn loopback_targets_are_refused_unless_allowed() {
        for url in [
            "https://127.0.0.1/hook",
            "https://localhost/hook",
            "https://[::1]/hook",
            "https://169.254.169.254/latest",
        ] {
            assert!(
                matches!(check(url, false).await, Err(TargetError::Private(_))),
                "{url}"
            );
        }
        assert!(check("http://127.0.0.1:9/hook", true).await.is_ok());
    }

    #[tokio::test]
    async fn the_delivery_resolver_drops_private_answers() {
        use reqwest::dns::Resolve;
        let name = || "localhost".parse::<reqwest::dns::Name>().unwrap();
        let strict = PublicOnly {
            allow_private: false,
        };
        assert!(strict.resolve(name()).await.is_err());
        let lax = PublicOnly {
            allow_private: true,
        };
        assert!(lax.resolve(name()).await.unwrap().next().is_some());
    }
}
