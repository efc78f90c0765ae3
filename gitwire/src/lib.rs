//! Git's wire protocol, version 2, as a client: what GitVista needs to read a repository from
//! its remote without a clone on disk. gitcore never touches the network; this crate does, and
//! hands the pack it receives to gitcore's pack reader.
//!
//! - [`pktline`]: the framing every message uses (`0005a`, flush `0000`, delimiter `0001`,
//!   response end `0002`), decoded incrementally from whatever the socket gives, with every
//!   length checked (at most 65,520 bytes a packet), and side-band-64k demultiplexing (pack
//!   data, progress, the server's fatal error).
//! - [`v2`]: the capability advertisement, `ls-refs` (symrefs, peeled tags, prefixes) and
//!   `fetch` (wants, `filter`, `deepen`, `deepen-since`) requests, and the fetch response's
//!   sections (`shallow-info`, then the side-band `packfile`).
//!
//! - [`daemon`]: the git:// transport, blocking, with every read, the whole exchange and the
//!   bytes received bounded.
//! - [`http`]: smart HTTP (async, reqwest with rustls), the same bounds, redirects never
//!   followed, the host's address pinned by the caller.
//! - [`history`]: a remote's whole history streamed into memory (refs, then every branch and
//!   tag's commits with `filter tree:0`), shown as it grows and bounded in objects and bytes.
//! - [`held`]: how that history is held: compressed in blocks, about a hundred bytes a commit.
//!
//! Every error is typed and names where the stream went wrong (the byte offset in it); a
//! hostile server (a length that is not hex, a packet over the limit, a stream that ends inside
//! a packet, an `ERR` packet, an unknown band) gets an error, never a panic or an unbounded
//! buffer.

pub mod daemon;
pub mod held;
pub mod history;
pub mod http;
pub mod pktline;
pub mod v2;
