//! Where a tokenless request comes from, for the loopback trust (`AUTH_TRUST_LOOPBACK`).
//!
//! A loopback peer is not proof of a local caller: a web page in the operator's browser reaches
//! `127.0.0.1` too, either directly (cross-site request forgery) or through a hostname of its own
//! that resolves to `127.0.0.1` (DNS rebinding); a reverse proxy on the same machine makes every
//! caller a loopback peer. So a tokenless request is trusted only when its `Host` is
//! `localhost`, `127.0.0.1` or `[::1]` (any port), its `Origin` (when sent) is that very
//! `http://host:port`, and its `Sec-Fetch-Site` (when sent) is `same-origin` or `none`.

use actix_web::http::header::{HOST, HeaderMap, ORIGIN};

/// Why the request looks like it comes from somewhere else, as the end of a sentence; `None`
/// when it looks local.
pub fn foreign(headers: &HeaderMap) -> Option<&'static str> {
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return Some("it has no readable Host header");
    };
    if !local_host(host) {
        return Some(
            "its Host header names another host (a page of another site reaching this port)",
        );
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or_default();
        if !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none")) {
            return Some("the browser says it was sent by a page of another site");
        }
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let own = format!("http://{host}");
        if !origin.to_str().is_ok_and(|o| o.eq_ignore_ascii_case(&own)) {
            return Some("it was sent by a page of another origin");
        }
    }
    None
}

/// `localhost`, `127.0.0.1` or `[::1]`, with an optional numeric port.
fn local_host(host: &str) -> bool {
    let (name, rest) = if host.starts_with('[') {
        match host.find(']') {
            Some(i) => host.split_at(i + 1),
            None => return false,
        }
    } else {
        host.find(':').map_or((host, ""), |i| host.split_at(i))
    };
    let port_ok = rest.is_empty()
        || rest
            .strip_prefix(':')
            .is_some_and(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && (name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn local_hosts_and_ports() {
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:65535",
        ] {
            assert!(local_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "127.0.0.2",
            "::1",
            "[127.0.0.1]",
            "localhost:",
            "localhost:80x",
            "localhost:8080:1",
            "[::1",
            "0.0.0.0:8080",
            "",
        ] {
            assert!(!local_host(bad), "{bad}");
        }
    }

    #[test]
    fn only_same_origin_pages_and_tools_look_local() {
        let local: &[u8] = b"127.0.0.1:8080";
        assert_eq!(foreign(&headers(&[("host", local)])), None);
        let same = headers(&[
            ("host", local),
            ("origin", b"http://127.0.0.1:8080"),
            ("sec-fetch-site", b"same-origin"),
        ]);
        assert_eq!(foreign(&same), None);
        let refused: [&[(&str, &[u8])]; 7] = [
            &[],
            &[("host", b"evil.example:8080")],
            &[("host", b"localhost\xff")],
            &[("host", local), ("origin", b"https://evil.example")],
            &[("host", local), ("origin", b"null")],
            &[("host", local), ("origin", b"http://localhost:8080")],
            &[("host", local), ("sec-fetch-site", b"cross-site")],
        ];
        for case in refused {
            assert!(foreign(&headers(case)).is_some(), "{case:?}");
        }
        let same_site = headers(&[("host", local), ("sec-fetch-site", b"same-site")]);
        assert!(foreign(&same_site).is_some());
    }
}
