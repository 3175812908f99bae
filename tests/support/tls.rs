//! Certificates for TLS tests, made with the `openssl` command line in a scratch directory: a test
//! CA, a server certificate for `localhost`/127.0.0.1, a client certificate, and the broken ones
//! (expired, wrong name, signed by an unknown CA).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::scratch_dir;

/// One certificate and its key.
#[derive(Clone, Debug)]
pub struct CertPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Every file a TLS test needs.
pub struct TlsFiles {
    pub dir: PathBuf,
    /// The CA that signs everything below except `unknown_ca_server`.
    pub ca: PathBuf,
    /// Valid for `localhost` and 127.0.0.1.
    pub server: CertPair,
    /// Valid for `localhost`, expired in 2021.
    pub expired_server: CertPair,
    /// Valid, but only for `other.example`.
    pub wrong_name_server: CertPair,
    /// For `localhost`, signed by a CA nobody trusts.
    pub unknown_ca_server: CertPair,
    /// A client certificate signed by the CA (mutual TLS).
    pub client: CertPair,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl ca` configuration: lets a test choose start and end dates (for the expired one).
const CA_CONFIG: &str = "[ca]\ndefault_ca = test\n[test]\ndir = .\ndatabase = index.txt\n\
new_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = any\ncopy_extensions = copy\n\
unique_subject = no\n[any]\ncommonName = supplied\n";

impl TlsFiles {
    /// Make a fresh set.
    pub fn generate() -> Self {
        let dir = scratch_dir("tls");
        std::fs::write(dir.join("ca.cnf"), CA_CONFIG).unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("serial"), "1000\n").unwrap();
        make_ca(&dir, "ca", "ops-worker test CA");
        make_ca(&dir, "rogue", "someone else's CA");
        let sign = |name: &str, cn: &str, san: &str, ca: &str, dates: Option<(&str, &str)>| {
            sign(&dir, name, cn, san, ca, dates)
        };
        let localhost = "DNS:localhost,IP:127.0.0.1";
        TlsFiles {
            ca: dir.join("ca.crt"),
            server: sign("server", "localhost", localhost, "ca", None),
            expired_server: sign(
                "expired",
                "localhost",
                localhost,
                "ca",
                Some(("20200101000000Z", "20210101000000Z")),
            ),
            wrong_name_server: sign(
                "wrongname",
                "other.example",
                "DNS:other.example",
                "ca",
                None,
            ),
            unknown_ca_server: sign("rogueserver", "localhost", localhost, "rogue", None),
            client: sign("client", "ops-worker", "DNS:ops-worker", "ca", None),
            dir,
        }
    }
}

fn make_ca(dir: &Path, name: &str, cn: &str) {
    let key = format!("{name}.key");
    let crt = format!("{name}.crt");
    openssl(dir, &["genrsa", "-out", &key, "2048"]);
    let subj = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req", "-x509", "-new", "-key", &key, "-sha256", "-days", "30", "-subj", &subj, "-out",
            &crt,
        ],
    );
}

/// A key and a certificate for `cn` with subject alternative names `san`, signed by `ca`.
fn sign(
    dir: &Path,
    name: &str,
    cn: &str,
    san: &str,
    ca: &str,
    dates: Option<(&str, &str)>,
) -> CertPair {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let crt = format!("{name}.crt");
    openssl(dir, &["genrsa", "-out", &key, "2048"]);
    let subj = format!("/CN={cn}");
    let ext = format!("subjectAltName={san}");
    openssl(
        dir,
        &[
            "req", "-new", "-key", &key, "-subj", &subj, "-addext", &ext, "-out", &csr,
        ],
    );
    let (start, end) = dates.unwrap_or(("20240101000000Z", "20991231000000Z"));
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            &ca_crt,
            "-keyfile",
            &ca_key,
            "-in",
            &csr,
            "-out",
            &crt,
            "-startdate",
            start,
            "-enddate",
            end,
            "-notext",
        ],
    );
    CertPair {
        cert: dir.join(crt),
        key: dir.join(key),
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
