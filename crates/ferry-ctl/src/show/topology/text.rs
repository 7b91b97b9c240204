//! The topology as plain text: each cluster with its gateways and service
//! counts, then a table of cables; an unhealthy cable's line starts with
//! `✗` and its status is in capitals.

use super::{Health, Role, Topology, service_counts};
use crate::show::render::fmt_duration;
use crate::table::Table;

/// Renders `t` as text.
pub fn text(t: &Topology) -> String {
    let down = t.cables.iter().filter(|c| c.health != Health::Up).count();
    let mut out = format!(
        "Topology: {} cluster{}, {} cable{}{}\n\n",
        t.clusters.len(),
        plural(t.clusters.len()),
        t.cables.len(),
        plural(t.cables.len()),
        if down > 0 {
            format!(" ({down} not up)")
        } else {
            String::new()
        }
    );
    for c in &t.clusters {
        out.push_str(&format!("Cluster {}   {}\n", c.id, service_counts(c)));
        if let Some(e) = &c.error {
            out.push_str(&format!("  ✗ {e}\n"));
        }
        for g in &c.gateways {
            let role = match g.role {
                Role::Active => "active",
                Role::Standby => "standby",
                Role::Unknown => "role unknown",
            };
            out.push_str(&format!("  gateway {} ({})\n", g.node, g.role_label(role)));
        }
        if c.gateways.is_empty() && c.error.is_none() {
            out.push_str("  (no gateway)\n");
        }
    }
    out.push_str("\nCables\n");
    if t.cables.is_empty() {
        out.push_str("  (none: no gateway has reported a connection)\n");
        return out;
    }
    let mut table = Table::new(&["", "CLUSTERS", "DRIVER", "STATUS", "RTT", "REPORTED BY"]);
    for c in &t.cables {
        let bad = c.health != Health::Up;
        let ends: Vec<String> = c
            .ends
            .iter()
            .map(|e| {
                let mut s = format!("{}/{} {}", e.cluster, e.gateway, e.health.word());
                if !e.message.is_empty() {
                    s.push_str(&format!(": {}", e.message));
                }
                s
            })
            .collect();
        let status = c.health.word();
        table.row(vec![
            if bad { "✗" } else { "" }.into(),
            format!("{} ⇄ {}", c.a, c.b),
            c.driver.to_string(),
            if bad {
                status.to_uppercase()
            } else {
                status.into()
            },
            c.rtt.map_or_else(|| "-".into(), fmt_duration),
            ends.join("; "),
        ]);
    }
    out.push_str(&table.render());
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
