//! A viewer as its session holds it: something events are handed to without waiting.
//!
//! A broadcast reaches thousands of viewers, so what a session does per viewer is the cost of
//! every change. The web layer's sockets take an event straight into their bounded outbound
//! queue (no mailbox of their own in between), sharing one encoded message ([`EventMessage`]);
//! anything else that watches a session (a test, a tool) can be an actor's
//! [`actix::Recipient`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use actix::prelude::*;
use bytes::Bytes;

use crate::events::{ViewerEvent, event_message};

/// What became of an event handed to a viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// It has it (or will be told to read everything again: its own policy).
    Taken,
    /// Its queue was full; it stays subscribed.
    Full,
    /// It is gone: the session forgets it.
    Gone,
}

/// One viewer of a session.
pub trait ViewerSink: fmt::Debug + Send + Sync + 'static {
    /// Hands `event` over without waiting. `message` is its WebSocket message, encoded once for
    /// all the viewers of one broadcast.
    fn deliver(&self, event: &ViewerEvent, message: &EventMessage<'_>) -> Delivery;
}

/// A session's handle on one viewer.
pub type Viewer = Arc<dyn ViewerSink>;

/// An actor's mailbox as a viewer: it gets each event as a message.
impl ViewerSink for Recipient<ViewerEvent> {
    fn deliver(&self, event: &ViewerEvent, _: &EventMessage<'_>) -> Delivery {
        match self.try_send(event.clone()) {
            Ok(()) => Delivery::Taken,
            Err(SendError::Full(_)) => Delivery::Full,
            Err(SendError::Closed(_)) => Delivery::Gone,
        }
    }
}

/// An event's WebSocket message, encoded by the first viewer that needs it and shared (a clone
/// of it is a reference count) by the others.
#[derive(Debug)]
pub struct EventMessage<'a> {
    event: &'a ViewerEvent,
    encoded: OnceLock<Option<Bytes>>,
}

impl<'a> EventMessage<'a> {
    /// `event`'s message, not encoded yet.
    pub fn new(event: &'a ViewerEvent) -> EventMessage<'a> {
        EventMessage {
            event,
            encoded: OnceLock::new(),
        }
    }

    /// The message; `None` for an event that is no message (a close, an access check).
    pub fn bytes(&self) -> Option<&Bytes> {
        self.encoded
            .get_or_init(|| event_message(self.event))
            .as_ref()
    }
}
