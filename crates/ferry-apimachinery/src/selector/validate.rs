//! Label key and value validation (`k8s.io/apimachinery/pkg/util/validation`).

/// Longest label value and longest name part of a label key (DNS-1123 label).
const MAX_NAME_LEN: usize = 63;
/// Longest prefix of a label key (DNS-1123 subdomain).
const MAX_PREFIX_LEN: usize = 253;

/// Validates a label key: an optional DNS-subdomain prefix and `/`, then a
/// name of at most 63 characters (`[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`).
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err(format!(
                "invalid label key {key:?}: prefix part must be non-empty"
            ));
        }
        if prefix.len() > MAX_PREFIX_LEN {
            return Err(format!(
                "invalid label key {key:?}: prefix part must be no more than {MAX_PREFIX_LEN} characters"
            ));
        }
        if !is_dns1123_subdomain(prefix) {
            return Err(format!(
                "invalid label key {key:?}: prefix part must be a lowercase RFC 1123 subdomain"
            ));
        }
    }
    if name.is_empty() {
        return Err(format!(
            "invalid label key {key:?}: name part must be non-empty"
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "invalid label key {key:?}: name part must be no more than {MAX_NAME_LEN} characters"
        ));
    }
    if !is_qualified_name_part(name) {
        return Err(format!(
            "invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// Validates a label value: empty, or at most 63 characters of the same
/// alphabet as a key's name part.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_NAME_LEN {
        return Err(format!(
            "invalid label value {value:?}: must be no more than {MAX_NAME_LEN} characters"
        ));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        return Err(format!(
            "invalid label value {value:?}: must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

pub(super) fn is_qualified_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(super) fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let bytes = label.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                (first.is_ascii_lowercase() || first.is_ascii_digit())
                    && (last.is_ascii_lowercase() || last.is_ascii_digit())
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            }
            _ => false,
        }
    })
}
