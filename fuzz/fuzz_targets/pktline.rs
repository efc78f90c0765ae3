//! A hostile server's bytes as a protocol v2 stream: the capability advertisement, an
//! `ls-refs` answer and a fetch response (pkt-lines, sections, side-band), fed in chunks whose
//! sizes come from the input too. Nothing may panic, loop or hold more than the input.

#![no_main]

use gitwire::pktline::Decoder;
use gitwire::v2::{Capabilities, FetchEvent, FetchResponse, read_ls_refs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut caps = Capabilities::default();
    let mut dec = Decoder::new();
    let mut refs = Vec::new();
    let mut fetch = FetchResponse::new();
    let mut stage = 0;
    let mut pack = 0usize;
    'feed: for piece in data.chunks(chunk) {
        dec.push(piece);
        loop {
            let progressed = match stage {
                0 => match caps.read(&mut dec) {
                    Ok(true) => {
                        stage = 1;
                        true
                    }
                    Ok(false) => false,
                    Err(_) => break 'feed,
                },
                // Ids of the format the advertisement named (SHA-1 or SHA-256).
                1 => match caps
                    .object_format()
                    .and_then(|hash| read_ls_refs(&mut dec, hash, &mut refs))
                {
                    Ok(Some(())) => {
                        stage = 2;
                        true
                    }
                    Ok(None) => false,
                    Err(_) => break 'feed,
                },
                _ => match fetch.next_event(&mut dec) {
                    Ok(Some(FetchEvent::End)) => break 'feed,
                    Ok(Some(FetchEvent::Pack(b))) => {
                        pack += b.len();
                        true
                    }
                    Ok(Some(_)) => true,
                    Ok(None) => false,
                    Err(_) => break 'feed,
                },
            };
            if !progressed {
                break;
            }
        }
        assert!(dec.pending() <= data.len() + 1);
    }
    assert!(pack <= data.len());
});
