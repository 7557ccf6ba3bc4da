//! Kubernetes, image and S3 name rules the CRD schema does not spell out.

/// An RFC 1035 label (what Service names must be): lower-case letters, digits and '-', starting
/// with a letter, ending with a letter or digit, at most 63 characters.
pub fn is_dns_label(text: &str) -> bool {
    is_rfc1123_label(text) && text.starts_with(|c: char| c.is_ascii_lowercase())
}

/// An RFC 1123 label: like a DNS-1035 label, but it may start with a digit.
pub fn is_rfc1123_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// An RFC 1123 subdomain (what most object names must be): dot-separated labels, at most 253
/// characters.
pub fn is_dns_subdomain(text: &str) -> bool {
    !text.is_empty() && text.len() <= 253 && text.split('.').all(is_rfc1123_label)
}

/// A key of a Secret: letters, digits, '-', '_' and '.'.
pub fn is_secret_key(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text != "."
        && text != ".."
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A version usable both as an image tag and as the app.kubernetes.io/version label value:
/// letters, digits, '.', '_' and '-', starting and ending with a letter or digit, at most 63
/// characters (so `1.2.3` and `1.2.3-rc.1`, but not `1.2.3+build`).
pub fn is_version(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// An OCI image tag: letters, digits, '_', '.' and '-', not starting with '.' or '-', at most
/// 128 characters.
pub fn is_image_tag(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !text.starts_with(['.', '-'])
}

/// An image repository without tag or digest, e.g. ghcr.io/mzchat/mzchatd or
/// registry.local:5000/mzchatd.
pub fn is_image_repository(text: &str) -> bool {
    let last = text.rsplit('/').next().unwrap_or(text);
    !text.is_empty()
        && !last.is_empty()
        && !last.contains(':')
        && !text.starts_with('/')
        && !text.contains("//")
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':'))
        && last
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// An S3 bucket name: 3-63 lower-case letters, digits, '.' and '-', starting and ending with a
/// letter or digit.
pub fn is_bucket(text: &str) -> bool {
    (3..=63).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !text.contains("..")
}

/// An S3 region: letters, digits, '-' and '_' (self-hosted stores name theirs freely).
pub fn is_region(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_must_start_with_a_letter() {
        assert!(is_dns_label("chat"));
        assert!(!is_dns_label("1chat"));
        assert!(is_rfc1123_label("1chat"));
        assert!(!is_dns_label("chat-"));
        assert!(!is_dns_label(&"a".repeat(64)));
    }

    #[test]
    fn versions_are_tags_and_label_values() {
        assert!(is_version("0.1.0"));
        assert!(is_version("1.2.3-rc.1"));
        assert!(is_version("main"));
        assert!(!is_version("1.2.3+build.5"));
        assert!(!is_version("-1"));
        assert!(!is_version("v1 "));
        assert!(!is_version(&"1".repeat(64)));
    }

    #[test]
    fn repositories_carry_no_tag_or_digest() {
        assert!(is_image_repository("ghcr.io/mzchat/mzchatd"));
        assert!(is_image_repository("registry.local:5000/mzchatd"));
        assert!(is_image_repository("mzchatd"));
        assert!(!is_image_repository("ghcr.io/mzchat/mzchatd:0.1.0"));
        assert!(!is_image_repository("ghcr.io/mzchat/mzchatd@sha256:00"));
        assert!(!is_image_repository("ghcr.io/mzchat/MZCHATD"));
        assert!(!is_image_repository(""));
    }

    #[test]
    fn buckets_follow_s3_rules() {
        assert!(is_bucket("mzchat-media"));
        assert!(!is_bucket("ab"));
        assert!(!is_bucket("Mzchat"));
        assert!(!is_bucket("a..b"));
    }

    #[test]
    fn secret_keys_allow_dots_and_underscores() {
        assert!(is_secret_key("service-account.json"));
        assert!(is_secret_key("nats.creds"));
        assert!(!is_secret_key("a/b"));
        assert!(!is_secret_key(".."));
    }
}
