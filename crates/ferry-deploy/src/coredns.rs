//! The forward block `ferry join` adds to a cluster's CoreDNS `Corefile` so
//! that `clusterset.local` (and extra zones) reach `ferry dns`, and its
//! removal on uninstall. Pure text editing: idempotent, and everything it
//! adds sits between two marker comments so it never touches the user's own
//! configuration.

/// First line of ferry's block.
pub const BEGIN_MARKER: &str = "# BEGIN ferry: forward the clusterset zones to ferry dns";
/// Last line of ferry's block.
pub const END_MARKER: &str = "# END ferry";

/// The server block CoreDNS needs to forward `zones` to `ferry_dns` (an IP,
/// optionally with `:port`).
pub fn forward_block(zones: &[String], ferry_dns: &str) -> String {
    let zones = zones
        .iter()
        .map(|z| format!("{}:53", z.trim_end_matches('.')))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{BEGIN_MARKER}\n{zones} {{\n    forward . {ferry_dns}\n    cache 5\n    errors\n}}\n{END_MARKER}\n"
    )
}

/// `corefile` with ferry's block removed (unchanged when there is none).
pub fn remove_forward_block(corefile: &str) -> String {
    let mut out = String::with_capacity(corefile.len());
    let mut inside = false;
    for line in corefile.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed == BEGIN_MARKER {
            inside = true;
            continue;
        }
        if inside {
            if trimmed == END_MARKER {
                inside = false;
            }
            continue;
        }
        out.push_str(line);
    }
    out
}

/// `corefile` with exactly one, current ferry block appended. Calling it
/// again with the same arguments returns its input unchanged.
pub fn ensure_forward_block(corefile: &str, zones: &[String], ferry_dns: &str) -> String {
    let mut out = remove_forward_block(corefile);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&forward_block(zones, ferry_dns));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOCK: &str = ".:53 {\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa\n    forward . /etc/resolv.conf\n    cache 30\n}\n";

    fn zones() -> Vec<String> {
        vec!["clusterset.local".into(), "example.internal.".into()]
    }

    #[test]
    fn adds_once_updates_in_place_and_removes_cleanly() {
        let once = ensure_forward_block(STOCK, &zones(), "100.96.0.53");
        assert!(once.starts_with(STOCK));
        assert!(once.contains("clusterset.local:53 example.internal:53 {"));
        assert!(once.contains("forward . 100.96.0.53"));
        assert_eq!(ensure_forward_block(&once, &zones(), "100.96.0.53"), once);
        let moved = ensure_forward_block(&once, &zones(), "100.96.0.99");
        assert_eq!(moved.matches(BEGIN_MARKER).count(), 1);
        assert!(moved.contains("100.96.0.99") && !moved.contains("100.96.0.53"));
        assert_eq!(remove_forward_block(&moved), STOCK);
        assert_eq!(remove_forward_block(STOCK), STOCK);
    }

    #[test]
    fn a_corefile_without_trailing_newline_stays_valid() {
        let out = ensure_forward_block(".:53 {\n}", &zones(), "1.2.3.4");
        assert!(out.starts_with(".:53 {\n}\n# BEGIN ferry"));
    }
}
