//! The assets origin: `GET <assets origin>/<file_id>` streams a file's bytes (never buffering
//! them) with single-range requests, a strong ETag and If-None-Match, year-long immutable
//! caching, `nosniff`, a sandboxing CSP, and `attachment` for anything a browser would run or
//! render as a page. HEAD is answered from the same route. Optionally a redirect to a
//! presigned S3 URL instead of the bytes.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio_util::sync::CancellationToken;

use crate::{
    app::MediaApp,
    blob::{BlobError, Range, Served},
    sniff,
};

const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";
const CSP: &str =
    "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox";
const PRESIGNED_FOR: Duration = Duration::from_secs(600);

pub fn router(app: Arc<MediaApp>) -> Router {
    Router::new()
        .route("/{file_id}", get(serve))
        .with_state(app)
}

/// Serves until `shutdown`.
pub async fn run(
    listener: tokio::net::TcpListener,
    app: Arc<MediaApp>,
    shutdown: CancellationToken,
) {
    let served = axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(err) = served {
        tracing::error!(error = %err, "assets origin stopped");
    }
}

/// What a Range header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    Whole,
    Part(Range),
    Unsatisfiable,
}

/// One range (`bytes=a-b`, `bytes=a-`, `bytes=-n`); several ranges or anything malformed is
/// answered with the whole file, which RFC 9110 allows.
pub fn wanted(range: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Wanted::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    let range = match (first.is_empty(), last.is_empty()) {
        (true, false) => match parse(last) {
            Some(0) => return Wanted::Unsatisfiable,
            Some(n) => Range {
                start: size.saturating_sub(n),
                end: size,
            },
            None => return Wanted::Whole,
        },
        (false, true) => match parse(first) {
            Some(start) => Range { start, end: size },
            None => return Wanted::Whole,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(start), Some(last)) if start <= last => Range {
                start,
                end: last.saturating_add(1).min(size),
            },
            _ => return Wanted::Whole,
        },
        (true, true) => return Wanted::Whole,
    };
    if range.start >= size {
        Wanted::Unsatisfiable
    } else {
        Wanted::Part(range)
    }
}

/// `Content-Disposition` with the uploader's name, safely quoted (RFC 6266 and 8187).
fn disposition(kind: &str, file_name: &str) -> String {
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = file_name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    if file_name.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
    }
}

fn matches_etag(header: Option<&HeaderValue>, etag: &str) -> bool {
    header.and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*")
    })
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], text).into_response()
}

async fn serve(
    State(app): State<Arc<MediaApp>>,
    Path(file_id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let file = match app.served_file(&file_id).await {
        Ok(Some(file)) => file,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "no such file\n"),
        Err(err) => {
            tracing::warn!(error = %err, "assets: file lookup failed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "try again shortly\n");
        }
    };
    let etag = format!("\"{}\"", file.sha256);
    let size = file.size as u64;
    let mut response = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, CACHE_FOREVER)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header("cross-origin-resource-policy", "cross-origin")
        .header(header::ACCEPT_RANGES, "bytes");
    if matches_etag(headers.get(header::IF_NONE_MATCH), &etag) {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"));
    }
    let content_type = match file.content_type.as_str() {
        "text/plain" => "text/plain; charset=utf-8".to_owned(),
        other => other.to_owned(),
    };
    let kind = if sniff::is_inline_safe(&file.content_type) {
        "inline"
    } else {
        "attachment"
    };
    let served = Served {
        content_type,
        content_disposition: disposition(kind, &file.file_name),
        cache_control: CACHE_FOREVER.to_owned(),
    };
    // The store serves the bytes with the same type, disposition and caching; it cannot send
    // the CSP, so its bucket belongs on an origin of its own (docs/decisions/0006-media.md).
    if app.settings().redirect
        && let Some(url) = app
            .blobs()
            .presign(&file.object_key, PRESIGNED_FOR, &served)
            .await
    {
        return Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, url)
            .header(header::CACHE_CONTROL, "private, max-age=300")
            .body(Body::empty())
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"));
    }
    response = response
        .header(header::CONTENT_TYPE, served.content_type)
        .header(header::CONTENT_DISPOSITION, served.content_disposition);
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v == etag));
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range_ok);
    let (status, part) = match wanted(range, size) {
        Wanted::Whole => (StatusCode::OK, None),
        Wanted::Part(part) => {
            response = response.header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", part.start, part.end - 1),
            );
            (StatusCode::PARTIAL_CONTENT, Some(part))
        }
        Wanted::Unsatisfiable => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"));
        }
    };
    let length = part.map_or(size, |p| p.end - p.start);
    response = response
        .status(status)
        .header(header::CONTENT_LENGTH, length);
    // HEAD: the headers only; nothing is read from the store.
    if method == Method::HEAD {
        return response
            .body(Body::empty())
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"));
    }
    let stream = match app.blobs().read(&file.object_key, part).await {
        Ok(stream) => stream,
        Err(BlobError::NotFound) => {
            tracing::error!(file_id, "a live file's bytes are missing from the store");
            return plain(StatusCode::NOT_FOUND, "no such file\n");
        }
        Err(err) => {
            tracing::warn!(error = %err, "assets: store read failed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "try again shortly\n");
        }
    };
    app.metrics.served_bytes.inc_by(length);
    response
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let part = |start, end| Wanted::Part(Range { start, end });
        assert_eq!(wanted(None, 100), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-9"), 100), part(0, 10));
        assert_eq!(wanted(Some("bytes=90-200"), 100), part(90, 100));
        assert_eq!(wanted(Some("bytes=50-"), 100), part(50, 100));
        assert_eq!(wanted(Some("bytes=-10"), 100), part(90, 100));
        assert_eq!(wanted(Some("bytes=-500"), 100), part(0, 100));
        assert_eq!(wanted(Some("bytes=100-"), 100), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-0"), 100), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-1,5-6"), 100), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=9-2"), 100), Wanted::Whole);
        assert_eq!(wanted(Some("items=0-1"), 100), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=x-"), 100), Wanted::Whole);
    }

    #[test]
    fn names_are_quoted_safely() {
        assert_eq!(
            disposition("attachment", "r\u{e9}sum\u{e9} \"x\".html"),
            "attachment; filename=\"r_sum_ _x_.html\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22x%22.html"
        );
        assert_eq!(disposition("inline", ""), "inline");
    }
}
