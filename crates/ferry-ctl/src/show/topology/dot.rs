//! The topology as Graphviz dot: one cluster subgraph per cluster with its
//! gateways as nodes, cables as edges between the clusters' active (or
//! first) gateways; an unhealthy cable is red and bold.

use super::{ClusterNode, Health, Role, Topology, cable_label, service_counts};

/// Renders `t` as a dot graph (`dot -Tsvg` draws it).
pub fn dot(t: &Topology) -> String {
    let mut out = String::from(
        "graph ferry {\n  graph [rankdir=LR, fontname=\"sans-serif\"];\n  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];\n  edge [fontname=\"sans-serif\"];\n",
    );
    for (i, c) in t.clusters.iter().enumerate() {
        out.push_str(&format!("  subgraph cluster_{i} {{\n"));
        out.push_str(&format!(
            "    label={};\n    style=rounded;\n    color={};\n",
            quote(&format!("{}\n{}", c.id, service_counts(c))),
            if c.error.is_some() { "red" } else { "gray40" }
        ));
        out.push_str(&format!(
            "    {} [shape=point, style=invis];\n",
            quote(&anchor_id(c))
        ));
        for g in &c.gateways {
            let (role, fill) = match g.role {
                Role::Active => ("active", "palegreen"),
                Role::Standby => ("standby", "lightgray"),
                Role::Unknown => ("?", "white"),
            };
            out.push_str(&format!(
                "    {} [label={}, fillcolor={fill}];\n",
                quote(&gateway_id(&c.id, &g.node)),
                quote(&format!("{}\n{}", g.node, g.role_label(role)))
            ));
        }
        out.push_str("  }\n");
    }
    for cable in &t.cables {
        let (from, to) = (end(t, &cable.a), end(t, &cable.b));
        let style = match cable.health {
            Health::Up => "color=darkgreen",
            Health::Connecting => "color=orange, style=dashed",
            Health::Down => "color=red, fontcolor=red, penwidth=3",
        };
        out.push_str(&format!(
            "  {} -- {} [label={}, {style}];\n",
            quote(&from),
            quote(&to),
            quote(&cable_label(cable))
        ));
    }
    out.push_str("}\n");
    out
}

/// The node a cable to `cluster` is drawn from: its active gateway, else
/// its first, else an invisible point in it.
fn end(t: &Topology, cluster: &str) -> String {
    let Some(c) = t.clusters.iter().find(|c| c.id == cluster) else {
        return format!("{cluster}/");
    };
    c.gateways
        .iter()
        .find(|g| g.role == Role::Active)
        .or_else(|| c.gateways.first())
        .map_or_else(|| anchor_id(c), |g| gateway_id(&c.id, &g.node))
}

fn anchor_id(c: &ClusterNode) -> String {
    format!("{}/", c.id)
}

fn gateway_id(cluster: &str, node: &str) -> String {
    format!("{cluster}/{node}")
}

/// A dot string literal.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
