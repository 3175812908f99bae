//! Build the Redis client from [`RedisSettings`]: plain TCP, or TLS (rustls) with the system
//! roots, a private CA (`REDIS_CA_FILE`), a client certificate for mutual TLS, or, only when asked
//! for, no certificate check at all.

use redis::{ConnectionAddr, IntoConnectionInfo, RedisError};

use super::QueueError;
use crate::config::{RedisSettings, RedisTls};

/// The client every connection of the store is opened from.
pub fn client(settings: &RedisSettings) -> Result<redis::Client, QueueError> {
    let info = settings.url.expose().into_connection_info()?;
    client_at(settings, info)
}

/// The client for `info` (the URL's address, or a master a Sentinel named) with the TLS options.
pub fn client_at(
    settings: &RedisSettings,
    mut info: redis::ConnectionInfo,
) -> Result<redis::Client, QueueError> {
    install_crypto_provider();
    let Some(tls) = &settings.tls else {
        return Ok(redis::Client::open(info)?);
    };
    if tls.insecure
        && let ConnectionAddr::TcpTls {
            host,
            port,
            tls_params,
            ..
        } = info.addr().clone()
    {
        info = info.set_addr(ConnectionAddr::TcpTls {
            host,
            port,
            insecure: true,
            tls_params,
        });
    }
    if tls.ca.is_none() && tls.client.is_none() {
        return Ok(redis::Client::open(info)?);
    }
    Ok(redis::Client::build_with_tls(info, certificates(tls))?)
}

/// rustls needs one process-wide crypto provider, and the dependency tree enables two (ring and
/// aws-lc-rs), so none is chosen by default: pick ring. Installing twice is harmless.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The PEM material in the form the client takes.
pub(super) fn certificates(tls: &RedisTls) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: tls
            .client
            .as_ref()
            .map(|(cert, key)| redis::ClientTlsConfig {
                client_cert: cert.bytes.clone(),
                client_key: key.expose().as_bytes().to_vec(),
            }),
        root_cert: tls.ca.as_ref().map(|ca| ca.bytes.clone()),
    }
}

/// What a TLS failure means, in words an operator can act on; `None` when `e` is not one.
pub fn explain_tls_error(e: &RedisError) -> Option<&'static str> {
    let text = format!("{e:?} {e}")
        .to_ascii_lowercase()
        .replace([' ', '_'], "");
    TLS_FAILURES
        .iter()
        .find(|(needles, _)| needles.iter().any(|n| text.contains(n)))
        .map(|(_, meaning)| *meaning)
}

/// Fragments of rustls' and the server's error texts (lower case, without spaces), and what they
/// mean. The first match wins, so the specific ones come first.
const TLS_FAILURES: [(&[&str], &str); 7] = [
    (
        &["expired", "notvalidyet"],
        "the server's certificate has expired (or is not valid yet): renew it",
    ),
    (
        &["notvalidforname", "notvalidforhost"],
        "the server's certificate is not valid for the host in REDIS_URL: connect by a name the certificate lists",
    ),
    (
        &["unknownissuer"],
        "the server's certificate is signed by a CA this machine does not trust: set REDIS_CA_FILE to that CA",
    ),
    (
        &["certificaterequired", "handshakefailure"],
        "the server requires a client certificate: set REDIS_CLIENT_CERT and REDIS_CLIENT_KEY",
    ),
    (
        &["unknownca", "badcertificate", "decrypterror"],
        "the server does not accept the client certificate (REDIS_CLIENT_CERT): use one its CA signed",
    ),
    (
        &["corruptmessage", "invalidcontenttype", "wrongversion"],
        "the server does not speak TLS on this port: use redis:// or the server's TLS port",
    ),
    (
        &["invalidcertificate", "invalidpeercertificate"],
        "the server's certificate was rejected",
    ),
];
