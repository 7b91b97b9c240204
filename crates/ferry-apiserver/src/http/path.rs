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

    /// A boolean parameter, read as kube-apiserver reads every boolean of
    /// its options (apimachinery's `Convert_Slice_string_To_bool`): absent
    /// is false; `0` and `false` in any case are false; any other value,
    /// the empty one included, is true. So `watch=True` (the Python client),
    /// `watch=1` and a bare `watch` all watch.
    pub fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(v) => !(v == "0" || v.eq_ignore_ascii_case("false")),
        }
    }

    /// `dryRun`: only `All` is a dry run, an absent or empty value is not,
    /// anything else is refused (400), as kube-apiserver does.
    pub fn dry_run(&self) -> Result<bool, String> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(format!(
                "Invalid dryRun value {other:?}: supported values: \"All\""
            )),
        }
    }

    /// An integer parameter (`timeoutSeconds`, `limit`): absent is `None`,
    /// anything that is not a non-negative integer is refused (400).
    pub fn unsigned(&self, key: &str) -> Result<Option<u64>, String> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("invalid {key} {v:?}: must be a non-negative integer")),
        }
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

    #[test]
    fn booleans_read_as_kube_apiserver_reads_them() {
        for v in ["1", "t", "T", "TRUE", "true", "True", "", "yes"] {
            let q = Query::parse(Some(&format!("watch={v}")));
            assert!(q.flag("watch"), "watch={v} must watch");
        }
        for v in ["0", "false", "FALSE", "False", "fAlSe"] {
            let q = Query::parse(Some(&format!("watch={v}")));
            assert!(!q.flag("watch"), "watch={v} must not watch");
        }
        assert!(Query::parse(Some("watch")).flag("watch"));
        assert!(!Query::parse(Some("limit=1")).flag("watch"));
    }

    #[test]
    fn dry_run_takes_only_all() {
        assert_eq!(Query::parse(Some("dryRun=All")).dry_run(), Ok(true));
        assert_eq!(Query::parse(None).dry_run(), Ok(false));
        assert!(Query::parse(Some("dryRun=true")).dry_run().is_err());
        assert!(
            Query::parse(Some("timeoutSeconds=x"))
                .unsigned("timeoutSeconds")
                .is_err()
        );
        assert_eq!(
            Query::parse(Some("timeoutSeconds=5")).unsigned("timeoutSeconds"),
            Ok(Some(5))
        );
    }
}
