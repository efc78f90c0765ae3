//! `blob/{hash}/raw`: an image blob's bytes, for the previews of added and changed images.
//!
//! Only raster formats recognised by their first bytes are answered, never by the file's name:
//! the bytes are the repository's, so SVG, HTML and anything else a browser could run are
//! refused, and what is answered carries its own type, `nosniff` and a sandboxing policy.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use gitcore::odb::{ObjectKind, OdbError};

use crate::routes::repo_param::RepoObject;
use crate::routes::{AppState, snapshot};
use gitvista_errors::ApiError;

use super::{not_here, not_modified, parse_hash};

/// Largest image answered: a preview, not a download.
const MAX_IMAGE_BYTES: u64 = 10 << 20;

/// The media type of an image by its first bytes, for the raster formats browsers show.
pub(crate) fn image_type(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, ..] => Some("image/png"),
        [0xff, 0xd8, 0xff, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        [0, 0, 1, 0, n, _, ..] if *n > 0 => Some("image/x-icon"),
        _ => None,
    }
}

/// An image blob as the image it is (PNG, JPEG, GIF, WebP or ICO, at most 10 MiB): 400
/// `not_an_image` for any other blob, 400 `image_too_large` past the size.
#[get("/api/repos/{id}/blob/{hash}/raw")]
pub async fn raw_image(
    req: HttpRequest,
    state: web::Data<AppState>,
    object: RepoObject,
) -> Result<HttpResponse, ApiError> {
    let RepoObject { id, hash } = object;
    let oid = parse_hash(&hash)?;
    // A blob never changes: its id is its ETag.
    let etag = format!("\"img-{oid}\"");
    let fresh = not_modified(&req, &etag);
    let snap = snapshot(&state, &id).await?;
    if fresh && snap.repo.odb().contains(&oid) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .finish());
    }
    let (bytes, media) = web::block(move || {
        let mut reader = snap.repo.odb().reader();
        let missing = |e: OdbError| match e {
            OdbError::Missing(m) => not_here(&snap, m),
            other => ApiError::Unavailable(other.to_string()),
        };
        let (kind, size) = reader.read_header(&oid).map_err(missing)?;
        if kind != ObjectKind::Blob {
            return Err(ApiError::NotFound(format!("{oid} is not a blob")));
        }
        if size > MAX_IMAGE_BYTES {
            return Err(ApiError::bad_request(
                format!("{oid} is {size} bytes: previews stop at 10 MiB"),
                "image_too_large",
            ));
        }
        let mut buf = Vec::new();
        reader
            .read_kind(&oid, ObjectKind::Blob, &mut buf)
            .map_err(missing)?;
        let media = image_type(&buf).ok_or_else(|| {
            ApiError::bad_request(
                format!("{oid} is not an image this page previews (PNG, JPEG, GIF, WebP, ICO)"),
                "not_an_image",
            )
        })?;
        Ok((buf, media))
    })
    .await
    .map_err(|e| ApiError::Unavailable(e.to_string()))??;
    Ok(HttpResponse::Ok()
        .content_type(media)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        ))
        .insert_header((
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable",
        ))
        .insert_header((header::ETAG, etag))
        .body(bytes))
}

#[cfg(test)]
mod tests {
    use super::image_type;

    #[test]
    fn images_are_known_by_their_first_bytes_and_nothing_else_is() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_type(b"\xff\xd8\xff\xe0...."), Some("image/jpeg"));
        assert_eq!(image_type(b"GIF89a...."), Some("image/gif"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"\0\0\x01\0\x01\0"), Some("image/x-icon"));
        for not in [
            &b"<svg xmlns='http://www.w3.org/2000/svg'/>"[..],
            b"<html>",
            b"GIF",
            b"",
            b"RIFF\0\0\0\0WAVE",
        ] {
            assert_eq!(image_type(not), None, "{not:?}");
        }
    }
}
