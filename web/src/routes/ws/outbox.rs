//! A socket's outbound side as its session sees it: a queue bounded in frames and bytes, the
//! falling-behind policy (drop, owe a `resync`, cut off), and the [`SocketViewer`] a session
//! hands events to straight into that queue, without a mailbox hop through the socket's actor.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use actix_web::web::Bytes;
use actix_ws::CloseReason;
use gitvista_actors::ViewerEvent;
use gitvista_actors::viewer::{Delivery, EventMessage, ViewerSink};
use tokio::sync::mpsc;

/// An event larger than this is not sent: the viewer is told to `resync` (re-fetch its windows)
/// instead, which bounds what one connection can hold in the socket's frame channel.
pub(super) const MAX_EVENT: usize = 256 * 1024;

/// A frame for the writer task.
#[derive(Debug)]
pub(super) enum Frame {
    /// A message every viewer of a broadcast shares.
    Text(Bytes),
    Ping,
    Pong(actix_web::web::Bytes),
    Close(CloseReason),
}

/// What happened to an event offered to a viewer's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued for the browser.
    Queued,
    /// The queue was full: dropped, and the viewer now owes a `resync`.
    Dropped,
    /// The queue was still full after a drop (or the writer is gone): disconnect the viewer.
    Disconnect,
}

/// A viewer's outbound queue, bounded in frames and in bytes, and its falling-behind policy, apart
/// from the actor so the policy can be tested on its own.
#[derive(Debug)]
pub(super) struct Outbox {
    /// Frames to the writer task.
    pub(super) tx: mpsc::Sender<Frame>,
    /// Text bytes queued and not yet handed to the socket (the writer subtracts what it sends).
    pub(super) queued: Arc<AtomicUsize>,
    /// Most text bytes queued at once.
    max_bytes: usize,
    /// Events were dropped: a `resync` is owed.
    pub(super) behind: bool,
}

impl Outbox {
    pub(super) fn new(tx: mpsc::Sender<Frame>, max_bytes: usize) -> Outbox {
        Outbox {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            max_bytes,
            behind: false,
        }
    }

    /// Offers a delta or other event; skipped while a resync is owed (the browser re-fetches
    /// everything then).
    pub(super) fn offer(&mut self, text: Bytes) -> Offer {
        if self.behind {
            return self.try_resync();
        }
        let len = text.len();
        if self.queued.load(Ordering::Relaxed) + len > self.max_bytes {
            if self.tx.is_closed() {
                return Offer::Disconnect;
            }
            self.behind = true;
            return Offer::Dropped;
        }
        match self.tx.try_send(Frame::Text(text)) {
            Ok(()) => {
                self.queued.fetch_add(len, Ordering::Relaxed);
                Offer::Queued
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.behind = true;
                metrics::counter!("gitvista_ws_resyncs_total").increment(1);
                Offer::Dropped
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Disconnect,
        }
    }

    /// Sends the owed `resync` if there is room now; a viewer that still has no room is dropped.
    pub(super) fn try_resync(&mut self) -> Offer {
        const RESYNC: &str = r#"{"type":"resync"}"#;
        if self.queued.load(Ordering::Relaxed) + RESYNC.len() > self.max_bytes {
            return Offer::Disconnect;
        }
        match self
            .tx
            .try_send(Frame::Text(Bytes::from_static(RESYNC.as_bytes())))
        {
            Ok(()) => {
                self.queued.fetch_add(RESYNC.len(), Ordering::Relaxed);
                self.behind = false;
                Offer::Queued
            }
            Err(_) => Offer::Disconnect,
        }
    }

    /// The socket's actor stopped: the writer ends once it has sent what is queued, though the
    /// session may hold this viewer a moment longer (until it reads the unsubscription).
    pub(super) fn close(&mut self) {
        self.tx = mpsc::channel(1).0;
    }

    /// Control frames skip the policy: losing a ping is harmless.
    pub(super) fn control(&self, frame: Frame) {
        let _ = self.tx.try_send(frame);
    }
}

/// A socket as its session holds it. A broadcast takes each event straight into the socket's
/// queue (one shared message, no copy and no actor mailbox per viewer); controls (a close, an
/// access check) and a cut-off go to the socket's actor.
#[derive(Debug)]
pub(super) struct SocketViewer {
    /// The queue to the socket's writer.
    out: Mutex<Outbox>,
    /// The socket's actor, for the events that are no message (a close, an access check).
    controls: Recipient<ViewerEvent>,
    /// The socket's actor, to stop when its queue stayed full.
    cut_off: Recipient<CutOff>,
}

/// Stop: the viewer's queue stayed full (it stopped reading).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct CutOff;

impl SocketViewer {
    pub(super) fn new(
        out: Outbox,
        controls: Recipient<ViewerEvent>,
        cut_off: Recipient<CutOff>,
    ) -> SocketViewer {
        SocketViewer {
            out: Mutex::new(out),
            controls,
            cut_off,
        }
    }

    /// The queue, for the socket's own messages (its first summary, controls, an owed resync).
    pub(super) fn out(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers a message by the falling-behind policy: one over [`MAX_EVENT`] becomes a
    /// `resync`.
    pub(super) fn offer(&self, message: &Bytes) -> Offer {
        const TOO_LARGE: &str = r#"{"type":"resync","reason":"too_large"}"#;
        let message = if message.len() > MAX_EVENT {
            Bytes::from_static(TOO_LARGE.as_bytes())
        } else {
            message.clone()
        };
        self.out().offer(message)
    }
}

impl ViewerSink for SocketViewer {
    fn deliver(&self, event: &ViewerEvent, message: &EventMessage<'_>) -> Delivery {
        if matches!(event, ViewerEvent::AccessChanged | ViewerEvent::Closing) {
            return match self.controls.try_send(event.clone()) {
                Ok(()) => Delivery::Taken,
                Err(SendError::Full(_)) => Delivery::Full,
                Err(SendError::Closed(_)) => Delivery::Gone,
            };
        }
        let Some(bytes) = message.bytes() else {
            return Delivery::Taken;
        };
        match self.offer(bytes) {
            Offer::Queued => Delivery::Taken,
            Offer::Dropped => Delivery::Full,
            Offer::Disconnect => {
                self.cut_off.do_send(CutOff);
                Delivery::Gone
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_then_resyncs_then_disconnects() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut out = Outbox::new(tx, 1 << 20);
        assert_eq!(out.offer("1".into()), Offer::Queued);
        assert_eq!(out.offer("2".into()), Offer::Queued);
        // The browser reads nothing: the third event is dropped and a resync is owed.
        assert_eq!(out.offer("3".into()), Offer::Dropped);
        assert!(out.behind);
        // Still no room for the resync: the viewer is cut off.
        assert_eq!(out.offer("4".into()), Offer::Disconnect);
        // A browser that catches up gets the resync instead of the events it missed.
        let _ = rx.try_recv();
        let _ = rx.try_recv();
        assert_eq!(out.offer("5".into()), Offer::Queued);
        assert!(!out.behind);
        match rx.try_recv() {
            Ok(Frame::Text(t)) => assert_eq!(&t[..], br#"{"type":"resync"}"#),
            other => panic!("expected the resync, got {other:?}"),
        }
        drop(rx);
        assert_eq!(out.offer("6".into()), Offer::Disconnect);
    }

    #[test]
    fn a_queue_over_its_byte_bound_counts_as_full() {
        let (tx, _rx) = mpsc::channel(100);
        let mut out = Outbox::new(tx, 10);
        assert_eq!(out.offer("12345".into()), Offer::Queued);
        assert_eq!(out.offer("12345".into()), Offer::Queued);
        assert_eq!(out.offer("1".into()), Offer::Dropped, "11 bytes > 10");
        // Still no byte room for the resync: cut off.
        assert_eq!(out.offer("2".into()), Offer::Disconnect);
        let (tx, _rx) = mpsc::channel(100);
        let mut out = Outbox::new(tx, 40);
        assert_eq!(out.offer("x".repeat(30).into()), Offer::Queued);
        assert_eq!(out.offer("x".repeat(30).into()), Offer::Dropped);
        // The writer sent the first: room again, and the resync goes first.
        out.queued.store(0, Ordering::Relaxed);
        assert_eq!(out.offer("x".into()), Offer::Queued);
        assert!(!out.behind);
        assert_eq!(
            out.queued.load(Ordering::Relaxed),
            r#"{"type":"resync"}"#.len()
        );
    }
}
