//! Fast content encoding for the large JSON answers (graph windows, diffs, search results).
//!
//! actix-web's `Compress` middleware encodes at default levels and moves every chunk over a
//! kilobyte to the blocking pool; on a 77 KB graph window that cost 10-50 ms per request under
//! load (see docs/benchmarks.md). The hot routes encode whole bodies here instead, at levels
//! chosen for speed, and set `Content-Encoding` so the middleware passes them through. Server
//! preference when the client accepts several: zstd, then brotli, then gzip.

use std::io::Write;

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

/// Bodies smaller than this are sent as they are.
const MIN_SIZE: usize = 1024;

/// A content coding the server can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// zstd, level 1.
    Zstd,
    /// brotli, quality 3.
    Brotli,
    /// gzip, level 1.
    Gzip,
    /// As is.
    Identity,
}

impl Coding {
    fn token(self) -> &'static str {
        match self {
            Coding::Zstd => "zstd",
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
            Coding::Identity => "identity",
        }
    }
}

/// The coding to use for an `Accept-Encoding` header: the client's highest q-value, ties going
/// to the server's preference (zstd, br, gzip); identity when none is acceptable.
pub fn negotiate(accept: Option<&str>) -> Coding {
    let Some(accept) = accept else {
        return Coding::Identity;
    };
    let mut best = (0.0f32, Coding::Identity);
    for part in accept.split(',') {
        let mut fields = part.split(';');
        let name = fields.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = fields
            .find_map(|f| f.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let candidates: &[Coding] = match name.as_str() {
            "zstd" => &[Coding::Zstd],
            "br" => &[Coding::Brotli],
            "gzip" | "x-gzip" => &[Coding::Gzip],
            "*" => &[Coding::Zstd, Coding::Brotli, Coding::Gzip],
            _ => &[],
        };
        for &c in candidates {
            let rank = |c: Coding| match c {
                Coding::Zstd => 3,
                Coding::Brotli => 2,
                Coding::Gzip => 1,
                Coding::Identity => 0,
            };
            if q > 0.0 && (q > best.0 || (q == best.0 && rank(c) > rank(best.1))) {
                best = (q, c);
            }
        }
    }
    best.1
}

thread_local! {
    static ZSTD: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Compressor::new(1).ok());
}

/// `data` encoded with `coding` (`None` for identity or on an encoder error).
pub fn encode(coding: Coding, data: &[u8]) -> Option<Vec<u8>> {
    match coding {
        Coding::Identity => None,
        // A compressor per thread, kept: making one allocates and clears its tables, which
        // cost as much as compressing a graph window.
        Coding::Zstd => ZSTD.with(|z| z.borrow_mut().as_mut()?.compress(data).ok()),
        Coding::Brotli => {
            let mut out = Vec::with_capacity(data.len() / 4);
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 3, 20);
                w.write_all(data).ok()?;
            }
            Some(out)
        }
        Coding::Gzip => {
            let mut w = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 4),
                flate2::Compression::fast(),
            );
            w.write_all(data).ok()?;
            w.finish().ok()
        }
    }
}

/// Finishes `builder` with a JSON `body`, encoded as the request accepts.
pub fn json(req: &HttpRequest, mut builder: HttpResponseBuilder, body: Bytes) -> HttpResponse {
    builder
        .content_type("application/json")
        .insert_header((header::VARY, HeaderValue::from_static("accept-encoding")));
    if body.len() >= MIN_SIZE {
        let accept = req
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let coding = negotiate(accept);
        if let Some(encoded) = encode(coding, &body) {
            return builder
                .insert_header((header::CONTENT_ENCODING, coding.token()))
                .body(encoded);
        }
    }
    // Small bodies (and codings only the middleware knows) are left to the middleware.
    builder.body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_q_values_then_server_preference() {
        assert_eq!(negotiate(None), Coding::Identity);
        assert_eq!(negotiate(Some("gzip, deflate, br, zstd")), Coding::Zstd);
        assert_eq!(negotiate(Some("gzip, deflate, br")), Coding::Brotli);
        assert_eq!(negotiate(Some("gzip;q=1, br;q=0.5")), Coding::Gzip);
        assert_eq!(negotiate(Some("zstd;q=0, gzip")), Coding::Gzip);
        assert_eq!(negotiate(Some("*")), Coding::Zstd);
        assert_eq!(negotiate(Some("deflate")), Coding::Identity);
        assert_eq!(negotiate(Some("identity")), Coding::Identity);
    }

    #[test]
    fn every_coding_round_trips() {
        let data = br#"{"rows":[{"hash":"0123456789abcdef"}]}"#.repeat(200);
        let z = encode(Coding::Zstd, &data).expect("zstd");
        assert_eq!(
            zstd::bulk::decompress(&z, data.len()).expect("unzstd"),
            data
        );
        let b = encode(Coding::Brotli, &data).expect("br");
        let mut back = Vec::new();
        brotli::BrotliDecompress(&mut &b[..], &mut back).expect("unbr");
        assert_eq!(back, data);
        let g = encode(Coding::Gzip, &data).expect("gzip");
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&g[..]), &mut back)
            .expect("gunzip");
        assert_eq!(back, data);
        assert!(z.len() < data.len() / 4 && b.len() < data.len() / 4 && g.len() < data.len() / 4);
    }
}
