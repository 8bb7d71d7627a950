//! Each page and asset prepared once per process: its bytes as they are, gzipped and
//! brotli-compressed (at the strongest levels, since it happens once, not per request),
//! each form with its own strong ETag, and a page's CSP. A request picks the best form its
//! Accept-Encoding allows; an If-None-Match naming that form's ETag gets a bodiless 304.
//!
//! Why each form has its own ETag: a strong validator names exact bytes, and the gzip form
//! is other bytes than the plain one (RFC 9110 §8.8.3). Why `Cache-Control: no-cache` on
//! assets too: their names carry no content hash, so a browser that kept an old `app.js`
//! for minutes would run it against a new page; revalidating costs one 304.

use super::{headers, Kind, FILES};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::LazyLock;

/// A content coding this module serves, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    Brotli,
    Gzip,
    Identity,
}

impl Coding {
    fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
            Coding::Identity => "identity",
        }
    }
}

/// One form of a file: its coding, bytes and ETag.
struct Variant {
    coding: Coding,
    body: Bytes,
    etag: HeaderValue,
}

/// A row of `FILES`, ready to answer: content type, page CSP and its forms, best first.
pub struct Ready {
    content_type: HeaderValue,
    csp: Option<HeaderValue>,
    variants: Vec<Variant>,
}

static PREPARED: LazyLock<Vec<Ready>> = LazyLock::new(|| FILES.iter().map(prepare).collect());

/// Every row of `FILES`, in order, prepared on first use (the router forces it at build).
pub fn prepared() -> &'static [Ready] {
    &PREPARED
}

fn prepare(file: &super::File) -> Ready {
    let plain = file.text.as_bytes();
    let hash = hex::encode(&Sha256::digest(plain)[..12]);
    let etag = |suffix: &str| {
        HeaderValue::from_str(&format!("\"{hash}{suffix}\"")).expect("hex is a valid ETag")
    };
    let mut variants = Vec::with_capacity(3);
    for (coding, bytes, suffix) in [
        (Coding::Brotli, brotli(plain), "-br"),
        (Coding::Gzip, gzip(plain), "-gz"),
    ] {
        // A form no smaller than the plain bytes is not worth a decoder's time.
        if bytes.len() < plain.len() {
            let (body, etag) = (Bytes::from(bytes), etag(suffix));
            variants.push(Variant { coding, body, etag });
        }
    }
    variants.push(Variant {
        coding: Coding::Identity,
        body: Bytes::from_static(plain),
        etag: etag(""),
    });
    let (content_type, csp) = match file.kind {
        Kind::Page => (
            HeaderValue::from_static("text/html; charset=utf-8"),
            Some(headers::page_csp(file.text)),
        ),
        Kind::Asset(t) => (HeaderValue::from_static(t), None),
    };
    Ready {
        content_type,
        csp,
        variants,
    }
}

impl Ready {
    /// The best form the request accepts, or a 304 if the client already holds it.
    pub fn respond(&self, req: &HeaderMap) -> Response<Body> {
        let v = self
            .variants
            .iter()
            .find(|v| accepts(req, v.coding))
            .unwrap_or_else(|| self.variants.last().expect("identity is always there"));
        let fresh = if_none_match(req, &v.etag);
        let mut res = Response::new(match fresh {
            true => Body::empty(),
            false => Body::from(v.body.clone()),
        });
        let h = res.headers_mut();
        h.insert(header::ETAG, v.etag.clone());
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if let Some(csp) = &self.csp {
            h.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
        }
        if fresh {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            return res;
        }
        h.insert(header::CONTENT_TYPE, self.content_type.clone());
        if v.coding != Coding::Identity {
            h.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(v.coding.token()),
            );
        }
        res
    }
}

/// Whether Accept-Encoding allows `coding` (q > 0, by name or by `*`); identity always is.
fn accepts(req: &HeaderMap, coding: Coding) -> bool {
    if coding == Coding::Identity {
        return true;
    }
    let mut wildcard = false;
    for item in list(req, header::ACCEPT_ENCODING) {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding.token()) {
            return q > 0.0;
        }
        if name == "*" {
            wildcard = q > 0.0;
        }
    }
    wildcard
}

/// Whether If-None-Match names `etag` or is `*` (weak comparison, as RFC 9110 §13.1.2 asks).
fn if_none_match(req: &HeaderMap, etag: &HeaderValue) -> bool {
    let etag = etag.to_str().unwrap_or("");
    list(req, header::IF_NONE_MATCH).any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

/// The comma-separated items of every value of header `name`, trimmed.
fn list(req: &HeaderMap, name: header::HeaderName) -> impl Iterator<Item = &str> {
    req.get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

fn gzip(plain: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    w.write_all(plain).expect("writing to memory");
    w.finish().expect("writing to memory")
}

fn brotli(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        w.write_all(plain).expect("writing to memory");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(n.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn accept_encoding_honours_q_values_and_the_wildcard() {
        let ae = header::ACCEPT_ENCODING;
        let h = req(&[(ae.clone(), "gzip, br;q=0")]);
        assert!(accepts(&h, Coding::Gzip) && !accepts(&h, Coding::Brotli));
        let h = req(&[(ae.clone(), "*;q=0.5, gzip;q=0")]);
        assert!(accepts(&h, Coding::Brotli) && !accepts(&h, Coding::Gzip));
        let h = req(&[]);
        assert!(!accepts(&h, Coding::Gzip) && accepts(&h, Coding::Identity));
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_star() {
        let tag = HeaderValue::from_static("\"abc-br\"");
        let inm = header::IF_NONE_MATCH;
        assert!(if_none_match(
            &req(&[(inm.clone(), "\"x\", W/\"abc-br\"")]),
            &tag
        ));
        assert!(if_none_match(&req(&[(inm.clone(), "*")]), &tag));
        assert!(!if_none_match(&req(&[(inm.clone(), "\"abc\"")]), &tag));
    }

    #[test]
    fn every_file_round_trips_through_each_of_its_forms() {
        for (file, ready) in FILES.iter().zip(prepared()) {
            for v in &ready.variants {
                let plain = match v.coding {
                    Coding::Identity => v.body.to_vec(),
                    Coding::Gzip => {
                        let mut d = flate2::read::GzDecoder::new(&v.body[..]);
                        let mut out = Vec::new();
                        std::io::Read::read_to_end(&mut d, &mut out).unwrap();
                        out
                    }
                    Coding::Brotli => {
                        let mut out = Vec::new();
                        brotli::BrotliDecompress(&mut &v.body[..], &mut out).unwrap();
                        out
                    }
                };
                assert_eq!(plain, file.text.as_bytes(), "{} {:?}", file.route, v.coding);
            }
        }
    }
}
