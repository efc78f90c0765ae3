//! TCP forwarders and hostile remotes on loopback, for tests that need a remote that is slow,
//! held back on purpose, or never finishes.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A hostile remote on 127.0.0.1: every connection gets the start of a long pkt-line and then
/// one byte of it a second, so git keeps waiting (until the low-speed limit stops it). Stops
/// sending after `secs`; answers its port.
pub fn dripping_remote(secs: u64) -> u16 {
    use std::io::Write;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        while let Ok((mut s, _)) = listener.accept() {
            std::thread::spawn(move || {
                if s.write_all(b"fff0").is_err() {
                    return;
                }
                while started.elapsed() < Duration::from_secs(secs) && s.write_all(b"a").is_ok() {
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
            if started.elapsed() > Duration::from_secs(secs) {
                return;
            }
        }
    });
    port
}

/// A TCP forwarder on 127.0.0.1 to `target_port` that holds every connection `delay` before
/// passing anything either way (a remote slow to answer: a clone through it stays running that
/// long). Answers its port; runs until the process ends.
pub fn delayed_proxy(target_port: u16, delay: Duration) -> u16 {
    throttled_proxy(target_port, delay, None)
}

/// [`delayed_proxy`] that also passes the server's answer at most `rate.0` bytes every
/// `rate.1` (a slow link: a fetch through it arrives piece by piece).
pub fn throttled_proxy(target_port: u16, delay: Duration, rate: Option<(usize, Duration)>) -> u16 {
    forward(target_port, move || std::thread::sleep(delay), rate)
}

/// Whether a [`gated_proxy`] lets connections through; a connection that arrives while the
/// gate is shut waits (its client sees a remote that has not answered yet) until it opens.
#[derive(Debug, Clone)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// Holds every new connection until [`Gate::open`].
    pub fn shut(&self) {
        *self.0.0.lock().expect("gate") = false;
    }

    /// Lets the waiting connections and every later one through.
    pub fn open(&self) {
        *self.0.0.lock().expect("gate") = true;
        self.0.1.notify_all();
    }

    fn wait_open(&self) {
        let (open, changed) = &*self.0;
        let guard = open.lock().expect("gate");
        drop(changed.wait_while(guard, |open| !*open).expect("gate"));
    }
}

/// A TCP forwarder on 127.0.0.1 to `target_port` whose connections pass only while its
/// [`Gate`] is open (it starts open): a test shuts it to hold a fetch at the remote for exactly
/// as long as it needs, whatever the machine's speed. Answers its port and the gate.
pub fn gated_proxy(target_port: u16) -> (u16, Gate) {
    let gate = Gate(Arc::new((Mutex::new(true), Condvar::new())));
    let held = gate.clone();
    (forward(target_port, move || held.wait_open(), None), gate)
}

/// Accepts on a free loopback port; for each connection runs `before` and then pipes it to
/// `target_port`, the answers at most `rate.0` bytes every `rate.1`.
fn forward(
    target_port: u16,
    before: impl Fn() + Send + Sync + Clone + 'static,
    rate: Option<(usize, Duration)>,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        while let Ok((client, _)) = listener.accept() {
            let before = before.clone();
            std::thread::spawn(move || {
                before();
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    return;
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    return;
                };
                let up = pipe(client, server, None);
                let down = pipe(s2, c2, rate);
                let _ = up.join();
                let _ = down.join();
            });
        }
    });
    port
}

/// Copies `from` into `to` on a thread of its own, at most `rate.0` bytes every `rate.1`, then
/// closes `to`'s writing side.
fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    rate: Option<(usize, Duration)>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        match rate {
            None => {
                let _ = std::io::copy(&mut from, &mut to);
            }
            Some((bytes, every)) => {
                use std::io::{Read, Write};
                let mut buf = vec![0u8; bytes.max(1)];
                loop {
                    match from.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            std::thread::sleep(every);
                        }
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    })
}
