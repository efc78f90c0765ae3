//! Helpers shared by the actor tests (from gitvista-testkit).

pub use gitvista_testkit::{fixture, git};

use actix::prelude::*;
use gitvista_actors::ViewerEvent;
use tokio::sync::mpsc;

/// A viewer that forwards its events to the test.
pub struct Collector(pub mpsc::UnboundedSender<ViewerEvent>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<ViewerEvent> for Collector {
    type Result = ();
    fn handle(&mut self, msg: ViewerEvent, _: &mut Context<Self>) {
        let _ = self.0.send(msg);
    }
}
