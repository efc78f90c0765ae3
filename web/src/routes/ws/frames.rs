//! Inbound frames checked at their headers: a browser announcing a frame or message over
//! [`MAX_FRAME`] is cut off before its payload is buffered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{HttpRequest, web};

/// Largest frame accepted from a browser (it only sends pings and small commands).
pub(super) const MAX_FRAME: usize = 64 * 1024;

/// Wraps a WebSocket's inbound bytes so that a frame header, or the running total of a
/// fragmented message, announcing more than [`MAX_FRAME`] ends the stream at once, before its
/// payload is buffered (actix-ws checks the size only once the whole frame is in memory, so a
/// header declaring 2^40 bytes followed by a stream of payload would grow the server without
/// bound). Answers the wrapped payload and the flag set when that happened.
pub(super) async fn limit_frames(
    req: &HttpRequest,
    body: web::Payload,
) -> Result<(web::Payload, Arc<AtomicBool>), actix_web::Error> {
    use actix_web::FromRequest;
    let oversize = Arc::new(AtomicBool::new(false));
    let limited = FrameLimit {
        inner: body,
        scan: FrameScan::default(),
        oversize: Arc::clone(&oversize),
        ended: false,
    };
    let boxed: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>>,
    > = Box::pin(limited);
    let mut payload = actix_web::dev::Payload::Stream { payload: boxed };
    let body = web::Payload::from_request(req, &mut payload).await?;
    Ok((body, oversize))
}

/// Where a scan of client-to-server frames stands (RFC 6455 section 5.2).
#[derive(Debug, Default)]
struct FrameScan {
    /// The current frame header's bytes so far (at most 14).
    header: [u8; 14],
    /// How many of them there are.
    have: usize,
    /// Payload bytes of the current frame still to pass.
    payload_left: u64,
    /// Bytes of the data message being received (its frames so far).
    message: u64,
}

impl FrameScan {
    /// Passes `bytes`; `Err` as soon as a header or a message's total exceeds `max`.
    fn feed(&mut self, mut bytes: &[u8], max: u64) -> Result<(), ()> {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let n = (self.payload_left.min(bytes.len() as u64)) as usize;
                self.payload_left -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have < 2 {
                continue;
            }
            let len7 = self.header[1] & 0x7f;
            let ext = match len7 {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
            if self.have < 2 + ext + mask {
                continue;
            }
            let len = match ext {
                2 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
                8 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&self.header[2..10]);
                    u64::from_be_bytes(b)
                }
                _ => u64::from(len7),
            };
            let fin = self.header[0] & 0x80 != 0;
            let opcode = self.header[0] & 0x0f;
            self.have = 0;
            if len > max {
                return Err(());
            }
            if opcode < 8 {
                // Text, binary or a continuation: count the message they build.
                self.message = if opcode == 0 { self.message + len } else { len };
                if self.message > max {
                    return Err(());
                }
                if fin {
                    self.message = 0;
                }
            }
            self.payload_left = len;
        }
        Ok(())
    }
}

/// The stream [`limit_frames`] wraps around a socket's payload.
struct FrameLimit {
    inner: web::Payload,
    scan: FrameScan,
    oversize: Arc<AtomicBool>,
    ended: bool,
}

impl futures_util::Stream for FrameLimit {
    type Item = Result<web::Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match std::pin::Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                if this.scan.feed(&bytes, MAX_FRAME as u64).is_err() {
                    this.ended = true;
                    this.oversize.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(actix_web::error::PayloadError::Overflow)));
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            other => other,
        }
    }
}
