//! The content type comes from the bytes, never from the client: magic numbers first, then
//! markup (HTML, SVG), then plain text; anything else is opaque. What a browser would run or
//! render as a document is served as a download.

/// Bytes of chunk 0 kept for sniffing.
pub const HEAD_BYTES: usize = 8192;

/// What the bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub content_type: String,
    pub extension: String,
}

fn sniffed(content_type: &str, extension: &str) -> Sniffed {
    Sniffed {
        content_type: content_type.to_owned(),
        extension: extension.to_owned(),
    }
}

/// Looks at the first bytes of a file.
pub fn sniff(head: &[u8]) -> Sniffed {
    let kind = infer::get(head);
    // Binary formats by their magic numbers; text formats are told apart below.
    if let Some(kind) = kind.filter(|k| !k.mime_type().starts_with("text/")) {
        let extension = match kind.mime_type() {
            "image/jpeg" => "jpg",
            _ => kind.extension(),
        };
        return sniffed(kind.mime_type(), extension);
    }
    let text = match std::str::from_utf8(head) {
        Ok(text) => Some(text),
        // A multi-byte character cut at the end of the head is still text.
        Err(err) if err.error_len().is_none() => {
            std::str::from_utf8(&head[..err.valid_up_to()]).ok()
        }
        Err(_) => None,
    };
    match text {
        Some(text) if !text.contains('\0') => {
            let start = text
                .trim_start_matches('\u{feff}')
                .trim_start()
                .to_ascii_lowercase();
            if start.starts_with("<svg") || (start.starts_with("<?xml") && start.contains("<svg")) {
                sniffed("image/svg+xml", "svg")
            } else if looks_like_html(&start) {
                sniffed("text/html", "html")
            } else if start.starts_with("<?xml") {
                sniffed("text/xml", "xml")
            } else {
                sniffed("text/plain", "txt")
            }
        }
        _ => sniffed("application/octet-stream", "bin"),
    }
}

/// What browsers take for HTML (the WHATWG sniffing patterns), wherever it starts.
fn looks_like_html(start: &str) -> bool {
    const TAGS: [&str; 17] = [
        "<!doctype html",
        "<html",
        "<head",
        "<script",
        "<iframe",
        "<h1",
        "<div",
        "<font",
        "<table",
        "<a ",
        "<style",
        "<title",
        "<b>",
        "<body",
        "<br",
        "<p>",
        "<!--",
    ];
    TAGS.iter().any(|tag| start.starts_with(tag)) || start.contains("<script")
}

/// Images that avatars and guild icons may be.
pub fn is_profile_image(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/avif"
    )
}

/// Types a browser shows without running anything: served inline. Everything else is served
/// with `Content-Disposition: attachment`.
pub fn is_inline_safe(content_type: &str) -> bool {
    is_profile_image(content_type)
        || matches!(
            content_type,
            "video/mp4" | "video/webm" | "audio/mpeg" | "audio/ogg" | "audio/x-wav" | "text/plain"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(sniff(png), sniffed("image/png", "png"));
        assert_eq!(
            sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"),
            sniffed("image/jpeg", "jpg")
        );
        assert_eq!(sniff(b"%PDF-1.7\n"), sniffed("application/pdf", "pdf"));
        assert_eq!(sniff(b"hello, world\n"), sniffed("text/plain", "txt"));
        assert_eq!(
            sniff(b"\0\x01\x02\x03 binary"),
            sniffed("application/octet-stream", "bin")
        );
        // A multi-byte character cut by the head's end.
        assert_eq!(
            sniff("caf\u{e9}".as_bytes()[..4].as_ref()),
            sniffed("text/plain", "txt")
        );
    }

    #[test]
    fn markup_is_caught_whatever_the_name_says() {
        for page in [
            "<!DOCTYPE html><html><body>hi</body></html>",
            "  \n<html><script>alert(1)</script>",
            "<div onclick=x>",
            "just text then <script>alert(1)</script>",
        ] {
            assert_eq!(sniff(page.as_bytes()).content_type, "text/html", "{page}");
        }
        let svg = sniff(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\">");
        assert_eq!(svg, sniffed("image/svg+xml", "svg"));
        assert!(!is_inline_safe("text/html") && !is_inline_safe("image/svg+xml"));
        assert!(!is_profile_image("image/svg+xml"));
        assert!(is_inline_safe("image/png"));
    }
}
