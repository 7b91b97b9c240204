//! Routes in numbered tables and the policy rules that select them (IPv4).

use std::net::IpAddr;

use ferry_api::Cidr;
use serde_json::Value;

use crate::link::ip_json;
use crate::{Error, Result, ip, ip_batch};

/// A unicast IPv4 route as ferry installs it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route {
    /// Destination network.
    pub dst: Cidr,
    /// Next hop, if any.
    pub via: Option<IpAddr>,
    /// Output device, if any.
    pub dev: Option<String>,
    /// `onlink`: the next hop is on `dev` even though no subnet of `dev` covers it.
    pub onlink: bool,
    /// Preferred source address.
    pub src: Option<IpAddr>,
    /// Path MTU of the route (`mtu N`): the kernel sizes packets and TCP MSS by it.
    pub mtu: Option<u32>,
    /// Further next hops on `dev` (with `onlink` as set) besides `via`:
    /// non-empty makes a multipath route (`nexthop via A … nexthop via B …`),
    /// over which the kernel spreads flows by its multipath hash.
    pub more_via: Vec<IpAddr>,
}

impl Route {
    /// A route to `dst` with nothing else set.
    pub fn to(dst: Cidr) -> Self {
        Self {
            dst,
            via: None,
            dev: None,
            onlink: false,
            src: None,
            mtu: None,
            more_via: Vec::new(),
        }
    }

    /// The arguments after `ip route replace`, ending in `table T`.
    fn args(&self, table: u32) -> Vec<String> {
        if !self.more_via.is_empty() {
            return self.multipath_args(table);
        }
        let mut a = vec![self.dst.to_string()];
        if let Some(via) = self.via {
            a.extend(["via".into(), via.to_string()]);
        }
        if let Some(dev) = &self.dev {
            a.extend(["dev".into(), dev.clone()]);
        }
        if self.onlink {
            a.push("onlink".into());
        }
        if let Some(src) = self.src {
            a.extend(["src".into(), src.to_string()]);
        }
        if let Some(mtu) = self.mtu {
            a.extend(["mtu".into(), mtu.to_string()]);
        }
        a.extend(["table".into(), table.to_string()]);
        a
    }

    /// [`Route::args`] of a multipath route: the route's own attributes
    /// first, then one `nexthop` clause per next hop (`ip` reads the
    /// clauses to the end of the line).
    fn multipath_args(&self, table: u32) -> Vec<String> {
        let mut a = vec![self.dst.to_string(), "table".into(), table.to_string()];
        if let Some(src) = self.src {
            a.extend(["src".into(), src.to_string()]);
        }
        if let Some(mtu) = self.mtu {
            a.extend(["mtu".into(), mtu.to_string()]);
        }
        for via in self.via.iter().chain(&self.more_via) {
            a.extend(["nexthop".into(), "via".into(), via.to_string()]);
            if let Some(dev) = &self.dev {
                a.extend(["dev".into(), dev.clone()]);
            }
            if self.onlink {
                a.push("onlink".into());
            }
        }
        a
    }
}

fn check_v4(dst: &Cidr) -> Result<()> {
    if dst.is_ipv4() {
        Ok(())
    } else {
        Err(Error::Invalid(format!("{dst}: only IPv4 routes for now")))
    }
}

/// `ip route replace …`: installs the route in `table`, replacing any route
/// to the same destination there.
pub fn replace_route(netns: Option<&str>, table: u32, route: &Route) -> Result<()> {
    check_v4(&route.dst)?;
    let mut args = vec!["route".to_string(), "replace".into()];
    args.extend(route.args(table));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ip(netns, &args).map(|_| ())
}

/// Deletes the route to `dst` from `table`; `Ok(false)` if there was none.
pub fn delete_route(netns: Option<&str>, table: u32, dst: &Cidr) -> Result<bool> {
    check_v4(dst)?;
    let (dst, table) = (dst.to_string(), table.to_string());
    match ip(netns, &["route", "del", &dst, "table", &table]) {
        Ok(_) => Ok(true),
        Err(e) if e.stderr_contains("No such process") || e.stderr_contains("does not exist") => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Replaces `replace` and deletes the routes to `delete` in `table`, in one
/// `ip -batch` (one process, in order: replacements first). The batch stops
/// at the first failing line, e.g. deleting a route that is not there.
pub fn route_batch(
    netns: Option<&str>,
    table: u32,
    replace: &[Route],
    delete: &[Cidr],
) -> Result<()> {
    let mut lines = Vec::with_capacity(replace.len() + delete.len());
    for r in replace {
        check_v4(&r.dst)?;
        lines.push(format!("route replace {}", r.args(table).join(" ")));
    }
    for dst in delete {
        check_v4(dst)?;
        lines.push(format!("route del {dst} table {table}"));
    }
    ip_batch(netns, &lines)
}

fn parse_route(r: &Value) -> Option<Route> {
    // Only plain unicast routes (no `type` or `"unicast"`).
    if r["type"].as_str().is_some_and(|t| t != "unicast") {
        return None;
    }
    let dst = match r["dst"].as_str()? {
        "default" => "0.0.0.0/0".to_string(),
        d if d.contains('/') => d.to_string(),
        d => format!("{d}/32"),
    };
    // A multipath route names its next hops (with their device and
    // flags) in `nexthops`; ferry's share one device and flags.
    let hops: Vec<&Value> = match r["nexthops"].as_array() {
        Some(hops) if !hops.is_empty() => hops.iter().collect(),
        _ => vec![r],
    };
    let gateway = |h: &Value| h["gateway"].as_str().and_then(|g| g.parse().ok());
    let flags = hops[0]["flags"].as_array();
    Some(Route {
        dst: dst.parse().ok()?,
        via: gateway(hops[0]),
        more_via: hops[1..].iter().filter_map(|h| gateway(h)).collect(),
        dev: hops[0]["dev"].as_str().map(str::to_string),
        onlink: flags.is_some_and(|f| f.iter().any(|x| x == "onlink")),
        src: r["prefsrc"].as_str().and_then(|s| s.parse().ok()),
        mtu: r["metrics"].as_array().and_then(|ms| {
            ms.iter()
                .find_map(|m| m["mtu"].as_u64())
                .and_then(|m| u32::try_from(m).ok())
        }),
    })
}

/// The IPv4 unicast routes in `table` (an empty or never-used table is empty).
pub fn list_routes(netns: Option<&str>, table: u32) -> Result<Vec<Route>> {
    let t = table.to_string();
    let v = match ip_json(netns, &["-4", "route", "show", "table", &t]) {
        Ok(v) => v,
        Err(e) if e.stderr_contains("does not exist") => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(v.as_array()
        .map(|a| a.iter().filter_map(parse_route).collect())
        .unwrap_or_default())
}

/// Removes every IPv4 route from `table`.
pub fn flush_table(netns: Option<&str>, table: u32) -> Result<()> {
    match ip(
        netns,
        &["-4", "route", "flush", "table", &table.to_string()],
    ) {
        Ok(_) => Ok(()),
        Err(e) if e.stderr_contains("does not exist") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether the rules at `priority` are exactly one `from all lookup table`.
fn rule_is(rules: &Value, priority: u32, table: u32) -> bool {
    let Some([rule]) = rules.as_array().map(Vec::as_slice) else {
        return false;
    };
    let Some(obj) = rule.as_object() else {
        return false;
    };
    obj.keys()
        .all(|k| matches!(k.as_str(), "priority" | "src" | "table"))
        && rule["priority"].as_u64() == Some(u64::from(priority))
        && rule["src"] == "all"
        && rule["table"].as_str() == Some(&table.to_string())
}

/// Makes `priority` hold exactly the rule `from all lookup table` (IPv4):
/// other rules at that priority are removed first.
pub fn ensure_rule(netns: Option<&str>, priority: u32, table: u32) -> Result<()> {
    let p = priority.to_string();
    let rules = ip_json(netns, &["-4", "rule", "show", "pref", &p])?;
    if rule_is(&rules, priority, table) {
        return Ok(());
    }
    delete_rule(netns, priority)?;
    ip(
        netns,
        &[
            "-4",
            "rule",
            "add",
            "pref",
            &p,
            "lookup",
            &table.to_string(),
        ],
    )
    .map(|_| ())
}

/// Whether the IPv4 rule `pref priority from all lookup table` is in place
/// (and alone at its priority).
pub fn rule_exists(netns: Option<&str>, priority: u32, table: u32) -> Result<bool> {
    let rules = ip_json(
        netns,
        &["-4", "rule", "show", "pref", &priority.to_string()],
    )?;
    Ok(rule_is(&rules, priority, table))
}

/// Deletes every IPv4 rule at `priority`; returns how many there were.
pub fn delete_rule(netns: Option<&str>, priority: u32) -> Result<usize> {
    let p = priority.to_string();
    let rules = ip_json(netns, &["-4", "rule", "show", "pref", &p])?;
    let n = rules.as_array().map_or(0, Vec::len);
    for _ in 0..n {
        match ip(netns, &["-4", "rule", "del", "pref", &p]) {
            Ok(_) => {}
            Err(e) if e.stderr_contains("No such file") => break,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_parse_from_ip_json() {
        let v = json!([
            {"dst":"100.70.0.0/16","gateway":"198.18.0.9","dev":"vx-ferry","flags":["onlink"],"metrics":[{"mtu":1420}]},
            {"dst":"100.71.0.1","dev":"eth0","scope":"link","prefsrc":"198.18.0.10","flags":[]},
            {"dst":"default","dev":"eth0","flags":["linkdown"]},
            {"type":"blackhole","dst":"100.72.0.0/16","flags":[]},
        ]);
        let routes: Vec<Route> = v
            .as_array()
            .unwrap()
            .iter()
            .filter_map(parse_route)
            .collect();
        assert_eq!(
            routes,
            vec![
                Route {
                    via: Some("198.18.0.9".parse().unwrap()),
                    dev: Some("vx-ferry".into()),
                    onlink: true,
                    mtu: Some(1420),
                    ..Route::to("100.70.0.0/16".parse().unwrap())
                },
                Route {
                    dev: Some("eth0".into()),
                    src: Some("198.18.0.10".parse().unwrap()),
                    ..Route::to("100.71.0.1/32".parse().unwrap())
                },
                Route {
                    dev: Some("eth0".into()),
                    ..Route::to("0.0.0.0/0".parse().unwrap())
                },
            ]
        );
    }

    #[test]
    fn multipath_routes_parse_from_ip_json() {
        let r = json!({"dst":"100.70.0.0/16","flags":[],"metrics":[{"mtu":1420}],"nexthops":[
            {"gateway":"198.18.0.9","dev":"vx-ferry","weight":1,"flags":["onlink"]},
            {"gateway":"198.18.0.10","dev":"vx-ferry","weight":1,"flags":["onlink"]}]});
        assert_eq!(
            parse_route(&r),
            Some(Route {
                via: Some("198.18.0.9".parse().unwrap()),
                more_via: vec!["198.18.0.10".parse().unwrap()],
                dev: Some("vx-ferry".into()),
                onlink: true,
                mtu: Some(1420),
                ..Route::to("100.70.0.0/16".parse().unwrap())
            })
        );
    }

    #[test]
    fn route_arguments() {
        let r = Route {
            via: Some("198.18.0.9".parse().unwrap()),
            dev: Some("vx-ferry".into()),
            onlink: true,
            mtu: Some(1420),
            ..Route::to("100.70.0.0/16".parse().unwrap())
        };
        assert_eq!(
            r.args(7100).join(" "),
            "100.70.0.0/16 via 198.18.0.9 dev vx-ferry onlink mtu 1420 table 7100"
        );
        let multi = Route {
            more_via: vec!["198.18.0.10".parse().unwrap()],
            src: Some("100.64.1.1".parse().unwrap()),
            ..r.clone()
        };
        assert_eq!(
            multi.args(7100).join(" "),
            "100.70.0.0/16 table 7100 src 100.64.1.1 mtu 1420 \
             nexthop via 198.18.0.9 dev vx-ferry onlink nexthop via 198.18.0.10 dev vx-ferry onlink"
        );
        let v6 = Route::to("fd00::/64".parse().unwrap());
        assert!(matches!(
            replace_route(Some("unused"), 7100, &v6),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn rule_matching_is_exact() {
        let ok = json!([{"priority":7100,"src":"all","table":"7100"}]);
        assert!(rule_is(&ok, 7100, 7100));
        assert!(!rule_is(&ok, 7100, 7101));
        assert!(!rule_is(&json!([]), 7100, 7100));
        let two = json!([
            {"priority":7100,"src":"all","table":"7100"},
            {"priority":7100,"src":"all","table":"7100"}
        ]);
        assert!(!rule_is(&two, 7100, 7100));
        let narrower = json!([{"priority":7100,"src":"1.2.3.4","table":"7100"}]);
        assert!(!rule_is(&narrower, 7100, 7100));
        let with_mark = json!([{"priority":7100,"src":"all","fwmark":"0x1","table":"7100"}]);
        assert!(!rule_is(&with_mark, 7100, 7100));
    }
}
