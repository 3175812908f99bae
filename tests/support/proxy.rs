//! A fault-injecting TCP proxy for Redis connections: forwards bytes both ways until armed, then
//! lets the next request that contains a marker reach Redis but drops its reply and closes the
//! connection, the way a broken pipe or a partition loses a reply after Redis ran the command.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// What the proxy threads share.
#[derive(Default)]
struct Faults {
    /// The marker of the next request whose reply is dropped; `None` when disarmed.
    armed: Mutex<Option<Vec<u8>>>,
    /// Replies dropped so far.
    kills: AtomicUsize,
}

/// A proxy in front of one Redis; stops accepting when dropped (open connections die with the
/// test process).
pub struct FaultProxy {
    /// Where clients connect.
    pub port: u16,
    faults: Arc<Faults>,
}

impl FaultProxy {
    /// Listen on a free port and forward every connection to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let faults = Arc::new(Faults::default());
        let shared = faults.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) {
                    pipe_pair(client, server, shared.clone());
                }
            }
        });
        FaultProxy { port, faults }
    }

    /// `redis://` URL through the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Drop the reply of the next request containing `marker` (and close that connection).
    pub fn arm(&self, marker: &str) {
        *self.faults.armed.lock().expect("proxy lock") = Some(marker.as_bytes().to_vec());
    }

    /// Replies dropped so far.
    pub fn kills(&self) -> usize {
        self.faults.kills.load(Ordering::SeqCst)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Forward both directions of one connection on two threads.
fn pipe_pair(client: TcpStream, server: TcpStream, faults: Arc<Faults>) {
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    // Set by the request direction when it forwarded a marked request: the reply must die.
    let doomed = Arc::new(AtomicBool::new(false));
    let doomed_up = doomed.clone();
    thread::spawn(move || requests(client, server, faults, doomed_up));
    thread::spawn(move || replies(s2, c2, doomed));
}

fn requests(mut from: TcpStream, mut to: TcpStream, faults: Arc<Faults>, doomed: Arc<AtomicBool>) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        let mut armed = faults.armed.lock().expect("proxy lock");
        if armed.as_ref().is_some_and(|m| contains(chunk, m)) {
            *armed = None;
            doomed.store(true, Ordering::SeqCst);
            faults.kills.fetch_add(1, Ordering::SeqCst);
        }
        drop(armed);
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

fn replies(mut from: TcpStream, mut to: TcpStream, doomed: Arc<AtomicBool>) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || doomed.load(Ordering::SeqCst) {
            break;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
