//! The topology as a self-contained SVG, laid out by hand (no Graphviz):
//! clusters as boxes on a circle with their gateways listed inside, cables
//! as lines between the boxes' centres with a `driver · status · RTT`
//! label. A cable's group carries `class="cable"` and
//! `data-status="up|connecting|down"`; a down cable is drawn red and thick,
//! a connecting one orange and dashed.

use std::f64::consts::PI;
use std::fmt::Write as _;

use super::{Cable, ClusterNode, Health, Role, Topology, cable_label, service_counts};

const BOX_WIDTH: f64 = 230.0;
const HEADER: f64 = 50.0;
const ROW: f64 = 20.0;
const MARGIN: f64 = 40.0;

/// Colour of a cable (and of its label).
fn color(h: Health) -> &'static str {
    match h {
        Health::Up => "#2e7d32",
        Health::Connecting => "#ef6c00",
        Health::Down => "#d32f2f",
    }
}

fn box_height(c: &ClusterNode) -> f64 {
    HEADER + ROW * c.gateways.len().max(1) as f64 + 8.0
}

/// Where each cluster's box is centred, and the canvas size.
struct Layout {
    width: f64,
    height: f64,
    centres: Vec<(f64, f64)>,
}

fn layout(t: &Topology) -> Layout {
    let n = t.clusters.len();
    let tallest = t.clusters.iter().map(box_height).fold(HEADER, f64::max);
    // Two clusters side by side, more on a circle wide enough that boxes
    // and cable labels do not overlap.
    let radius = match n {
        0 | 1 => 0.0,
        2 => 250.0,
        _ => 150.0 + 45.0 * n as f64,
    };
    let vertical = if n > 2 { radius } else { 0.0 };
    let width = 2.0 * radius + BOX_WIDTH + 2.0 * MARGIN;
    let height = 2.0 * vertical + tallest + 2.0 * MARGIN + 20.0;
    let (cx, cy) = (width / 2.0, height / 2.0);
    let centres = (0..n)
        .map(|i| {
            // The first cluster on the left, then clockwise.
            let angle = PI + 2.0 * PI * i as f64 / n.max(1) as f64;
            (
                cx + radius * angle.cos(),
                cy + vertical.min(radius) * angle.sin(),
            )
        })
        .collect();
    Layout {
        width,
        height,
        centres,
    }
}

/// Renders `t` as an SVG document.
pub fn svg(t: &Topology) -> String {
    let l = layout(t);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="ferry-topology" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="13">"##,
        w = l.width.round(),
        h = l.height.round()
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    if t.clusters.is_empty() {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">no cluster</text>"##,
            (l.width / 2.0).round(),
            (l.height / 2.0).round()
        );
    }
    let centre_of = |id: &str| {
        t.clusters
            .iter()
            .position(|c| c.id == id)
            .map(|i| l.centres[i])
    };
    for c in &t.cables {
        if let (Some(a), Some(b)) = (centre_of(&c.a), centre_of(&c.b)) {
            cable(&mut out, c, a, b);
        }
    }
    for (c, centre) in t.clusters.iter().zip(&l.centres) {
        cluster(&mut out, c, *centre);
    }
    out.push_str("</svg>\n");
    out
}

fn cable(out: &mut String, c: &Cable, (x1, y1): (f64, f64), (x2, y2): (f64, f64)) {
    let stroke = color(c.health);
    let (width, dash) = match c.health {
        Health::Up => (3, ""),
        Health::Connecting => (3, r#" stroke-dasharray="8 6""#),
        Health::Down => (5, ""),
    };
    let _ = writeln!(
        out,
        r#"<g class="cable {status}" data-a="{a}" data-b="{b}" data-status="{status}">"#,
        a = escape(&c.a),
        b = escape(&c.b),
        status = c.health.word()
    );
    let ends: Vec<String> = c
        .ends
        .iter()
        .map(|e| {
            let mut s = format!("{}/{}: {}", e.cluster, e.gateway, e.health.word());
            if !e.message.is_empty() {
                s.push_str(&format!(" ({})", e.message));
            }
            s
        })
        .collect();
    let _ = writeln!(out, "<title>{}</title>", escape(&ends.join("; ")));
    let _ = writeln!(
        out,
        r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{stroke}" stroke-width="{width}"{dash}/>"#,
        x1.round(),
        y1.round(),
        x2.round(),
        y2.round()
    );
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="{stroke}" stroke="#ffffff" stroke-width="4" paint-order="stroke">{}</text>"##,
        ((x1 + x2) / 2.0).round(),
        ((y1 + y2) / 2.0 - 10.0).round(),
        escape(&cable_label(c))
    );
    out.push_str("</g>\n");
}

fn cluster(out: &mut String, c: &ClusterNode, (cx, cy): (f64, f64)) {
    let h = box_height(c);
    let (x, y) = (cx - BOX_WIDTH / 2.0, cy - h / 2.0);
    let (fill, stroke, dash) = match (&c.error, c.read) {
        (Some(_), _) => ("#fdecea", "#d32f2f", r#" stroke-dasharray="6 4""#),
        (None, true) => ("#f3f6fb", "#37474f", ""),
        (None, false) => ("#fafafa", "#90a4ae", r#" stroke-dasharray="6 4""#),
    };
    let _ = writeln!(
        out,
        r#"<g class="cluster" data-cluster="{}" data-read="{}">"#,
        escape(&c.id),
        c.read
    );
    if let Some(e) = &c.error {
        let _ = writeln!(out, "<title>{}</title>", escape(e));
    }
    let _ = writeln!(
        out,
        r#"<rect x="{}" y="{}" width="{BOX_WIDTH}" height="{}" rx="10" fill="{fill}" stroke="{stroke}" stroke-width="2"{dash}/>"#,
        x.round(),
        y.round(),
        h.round()
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-weight="bold" font-size="15">{}</text>"#,
        (x + 12.0).round(),
        (y + 22.0).round(),
        escape(&c.id)
    );
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" font-size="11" fill="#555555">{}</text>"##,
        (x + 12.0).round(),
        (y + 40.0).round(),
        escape(&service_counts(c))
    );
    if c.gateways.is_empty() {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" font-size="12" fill="#888888">no gateway</text>"##,
            (x + 12.0).round(),
            (y + HEADER + 14.0).round()
        );
    }
    for (i, g) in c.gateways.iter().enumerate() {
        let row_y = y + HEADER + ROW * i as f64 + 14.0;
        let (role, dot) = match g.role {
            Role::Active => ("active", "#2e7d32"),
            Role::Standby => ("standby", "#9e9e9e"),
            Role::Unknown => ("role unknown", "#ffffff"),
        };
        let _ = writeln!(
            out,
            r##"<g class="gateway" data-role="{role}"><circle cx="{}" cy="{}" r="5" fill="{dot}" stroke="#555555"/><text x="{}" y="{}" font-size="12">{} ({})</text></g>"##,
            (x + 18.0).round(),
            (row_y - 4.0).round(),
            (x + 30.0).round(),
            row_y.round(),
            escape(&g.node),
            g.role_label(role)
        );
    }
    out.push_str("</g>\n");
}

/// Text and attribute values for XML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
