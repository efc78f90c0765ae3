//! Smart HTTP with protocol v2: `GET <repo>/info/refs?service=git-upload-pack` with
//! `Git-Protocol: version=2` for the capability advertisement, then each command as a `POST
//! <repo>/git-upload-pack`, its answer read as it streams. Redirects are never followed (a
//! redirect is how a server sends a client to an address it did not check), the caller may pin
//! the host's address, and every exchange is bounded in time and bytes.

use std::net::SocketAddr;

use crate::daemon::{Limits, WireError};
use crate::pktline::Decoder;
use crate::v2::{
    Capabilities, FetchEvent, FetchRequest, FetchResponse, ProtocolError, RemoteRef, fetch_request,
    ls_refs_request, read_ls_refs,
};

/// A repository served over smart HTTP, its capabilities read.
#[derive(Debug)]
pub struct HttpRemote {
    client: reqwest::Client,
    /// The repository's URL without a trailing slash.
    base: String,
    caps: Capabilities,
    limits: Limits,
}

fn unreachable(e: reqwest::Error) -> WireError {
    if e.is_timeout() {
        WireError::Timeout("no answer from the server")
    } else {
        // Without the URL: it may carry what the caller does not want in an error.
        WireError::Unreachable(e.without_url().to_string())
    }
}

impl HttpRemote {
    /// Reads the capabilities of the repository at `url` (`http://` or `https://`). With
    /// `pin`, the URL's host is connected at that address only (checked by the caller).
    pub async fn open(
        url: &str,
        pin: Option<SocketAddr>,
        limits: Limits,
    ) -> Result<HttpRemote, WireError> {
        let base = url.trim_end_matches('/').to_string();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(limits.connect)
            .read_timeout(limits.stall)
            .timeout(limits.total)
            .user_agent("git/2.47 (gitvista)");
        if let Some(addr) = pin {
            let host = reqwest::Url::parse(&base)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .ok_or_else(|| WireError::Unreachable("the URL has no host".into()))?;
            builder = builder.resolve(&host, addr);
        }
        let client = builder
            .build()
            .map_err(|e| WireError::Unreachable(e.to_string()))?;
        let resp = client
            .get(format!("{base}/info/refs?service=git-upload-pack"))
            .header("Git-Protocol", "version=2")
            .send()
            .await
            .map_err(unreachable)?;
        let mut remote = HttpRemote {
            client,
            base,
            caps: Capabilities::default(),
            limits,
        };
        let mut dec = Decoder::new();
        let mut caps = Capabilities::default();
        let mut resp = checked(resp)?;
        let mut received = 0u64;
        while !caps.read(&mut dec)? {
            let bytes = resp
                .chunk()
                .await
                .map_err(unreachable)?
                .ok_or(ProtocolError::Ended("capability advertisement"))?;
            if !remote.count(&mut received, bytes.len())? {
                return Err(WireError::TooLarge(remote.limits.max_bytes));
            }
            dec.push(&bytes);
        }
        remote.caps = caps;
        Ok(remote)
    }

    fn count(&self, received: &mut u64, n: usize) -> Result<bool, WireError> {
        *received += n as u64;
        Ok(*received <= self.limits.max_bytes)
    }

    /// What the server offers.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Posts a command request; answers the response to read.
    async fn post(&self, body: Vec<u8>) -> Result<reqwest::Response, WireError> {
        let resp = self
            .client
            .post(format!("{}/git-upload-pack", self.base))
            .header("Git-Protocol", "version=2")
            .header("Content-Type", "application/x-git-upload-pack-request")
            .header("Accept", "application/x-git-upload-pack-result")
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        checked(resp)
    }

    /// The refs under `prefixes` (all when empty), with symrefs and peeled tags.
    pub async fn ls_refs(&self, prefixes: &[&str]) -> Result<Vec<RemoteRef>, WireError> {
        let hash = self.caps.object_format()?;
        let mut resp = self.post(ls_refs_request(&self.caps, prefixes)).await?;
        let mut dec = Decoder::new();
        let mut refs = Vec::new();
        let mut received = 0u64;
        while read_ls_refs(&mut dec, hash, &mut refs)?.is_none() {
            let bytes = resp
                .chunk()
                .await
                .map_err(unreachable)?
                .ok_or(ProtocolError::Ended("ref listing"))?;
            if !self.count(&mut received, bytes.len())? {
                return Err(WireError::TooLarge(self.limits.max_bytes));
            }
            dec.push(&bytes);
        }
        Ok(refs)
    }

    /// Runs `req`, handing every event of the response to `on_event` as it arrives.
    pub async fn fetch(
        &self,
        req: &FetchRequest,
        mut on_event: impl FnMut(FetchEvent) -> Result<(), String>,
    ) -> Result<(), WireError> {
        let mut resp = self.post(fetch_request(&self.caps, req)?).await?;
        let mut dec = Decoder::new();
        let mut response = FetchResponse::new();
        let mut received = 0u64;
        let mut rate = crate::daemon::RateWindow::new();
        loop {
            match response.next_event(&mut dec)? {
                Some(FetchEvent::End) => return Ok(()),
                Some(e) => on_event(e).map_err(WireError::Refused)?,
                None => {
                    let bytes = resp
                        .chunk()
                        .await
                        .map_err(unreachable)?
                        .ok_or(ProtocolError::Ended("fetch response"))?;
                    rate.record(bytes.len(), &self.limits)?;
                    if !self.count(&mut received, bytes.len())? {
                        return Err(WireError::TooLarge(self.limits.max_bytes));
                    }
                    dec.push(&bytes);
                }
            }
        }
    }
}

/// The response if it is a success; a redirect or an error status as the error users get.
fn checked(resp: reqwest::Response) -> Result<reqwest::Response, WireError> {
    let status = resp.status();
    if status.is_redirection() {
        return Err(WireError::Unreachable(format!(
            "the server redirected ({status}); redirects are not followed"
        )));
    }
    if !status.is_success() {
        return Err(WireError::Status(status.as_u16()));
    }
    Ok(resp)
}
