//! Validation of names: cluster ids.

use crate::{Error, Result};

/// Longest RFC 1123 label.
pub const MAX_LABEL_LEN: usize = 63;

/// Checks that `id` can be a cluster id: an RFC 1123 label (1–63 characters
/// of `a-z`, `0-9` and `-`, starting and ending with a letter or digit), as
/// KEP-2149 requires. The error says which rule is broken.
pub fn validate_cluster_id(id: &str) -> Result<()> {
    let fail = |reason: String| {
        Err(Error::InvalidClusterId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return fail("must not be empty".into());
    }
    if id.len() > MAX_LABEL_LEN {
        return fail(format!(
            "must be at most {MAX_LABEL_LEN} characters, is {}",
            id.len()
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return fail(format!(
            "character {bad:?} is not allowed (use lowercase letters, digits and '-')"
        ));
    }
    if id.starts_with('-') || id.ends_with('-') {
        return fail("must start and end with a lowercase letter or digit".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_rfc1123_labels() {
        for id in ["cluster0", "a", "0", "east-1", &"x".repeat(63)] {
            validate_cluster_id(id).unwrap();
        }
    }

    #[test]
    fn rejects_with_the_rule_broken() {
        let cases = [
            ("", "empty"),
            ("Cluster0", "'C' is not allowed"),
            ("cluster_0", "'_' is not allowed"),
            ("a.b", "'.' is not allowed"),
            ("-a", "start and end"),
            ("a-", "start and end"),
            (&"x".repeat(64), "at most 63"),
        ];
        for (id, want) in cases {
            let err = validate_cluster_id(id).unwrap_err().to_string();
            assert!(err.contains(want), "{id:?}: {err}");
        }
    }
}
