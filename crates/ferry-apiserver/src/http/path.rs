//! Resource URLs and query parameters.

use std::collections::HashMap;

/// A parsed resource URL:
/// `/api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]]` or the same under
/// `/apis/GROUP/VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl ResourcePath {
    pub fn parse(path: &str) -> Option<Self> {
        let segs: Vec<&str> = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .split('/')
            .collect();
        let (group, version, rest) = match segs.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            // `/namespaces/NAME/status` and `/finalize` are subresources of
            // the namespace itself, not collections inside it.
            ["namespaces", ns, sub]
                if group.is_empty() && matches!(*sub, "status" | "finalize") =>
            {
                (None, vec!["namespaces", ns, sub])
            }
            ["namespaces", ns, plural, more @ ..] => {
                let mut v = vec![*plural];
                v.extend_from_slice(more);
                (Some(ns.to_string()), v)
            }
            other => (None, other.to_vec()),
        };
        let (plural, name, subresource) = match rest.as_slice() {
            [plural] => (*plural, None, None),
            [plural, name] => (*plural, Some(name.to_string()), None),
            [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
            _ => return None,
        };
        if plural.is_empty() || name.as_deref() == Some("") {
            return None;
        }
        Some(ResourcePath {
            group: group.into(),
            version: version.into(),
            namespace,
            plural: plural.into(),
            name,
            subresource,
        })
    }
}

/// Query parameters (last value wins).
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        Query(
            query
                .map(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean flag: present and `true`/`1`.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> Option<ResourcePath> {
        ResourcePath::parse(path)
    }

    #[test]
    fn paths() {
        let r = p("/api/v1/namespaces/ns1/configmaps/a").unwrap();
        assert_eq!(r.namespace.as_deref(), Some("ns1"));
        assert_eq!(r.plural, "configmaps");
        assert_eq!(r.name.as_deref(), Some("a"));
        let r = p("/api/v1/namespaces/ns1").unwrap();
        assert_eq!(r.plural, "namespaces");
        assert_eq!(r.name.as_deref(), Some("ns1"));
        let r = p("/api/v1/namespaces/ns1/status").unwrap();
        assert_eq!(r.plural, "namespaces");
        assert_eq!(r.subresource.as_deref(), Some("status"));
        let r =
            p("/apis/multicluster.x-k8s.io/v1alpha1/namespaces/b/serviceimports/x/status").unwrap();
        assert_eq!(r.group, "multicluster.x-k8s.io");
        assert_eq!(r.subresource.as_deref(), Some("status"));
        let r = p("/apis/apps/v1/deployments").unwrap();
        assert_eq!(r.namespace, None);
        assert_eq!(r.name, None);
        assert!(p("/apis/apps").is_none());
        assert!(p("/api/v1/a/b/c/d").is_none());
    }
}
