//! The bundle's summary page: the cluster, its gateways and their cables,
//! how many objects of each kind were read, what could not be collected,
//! and a link to every file. One self-contained page, no script.

use std::fmt::Write as _;

use super::{Bundle, Listed, of_kind};

/// `s` safe inside HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
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

const STYLE: &str = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}.error{color:#b00}\
.connected{color:#070}";

/// The page for `bundle`, from what `listed` read.
pub fn summary(bundle: &Bundle, listed: &Listed) -> String {
    let mut h = String::new();
    let title = format!("ferry gather: {}", escape(&bundle.cluster));
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n"
    );
    gateways(&mut h, listed);
    h.push_str("<h2>Objects</h2>\n<table><tr><th>kind</th><th>objects</th></tr>\n");
    for (kind, result) in listed {
        let n = match result {
            Ok(items) => items.len().to_string(),
            Err(e) => format!("<span class=\"error\">{}</span>", escape(e)),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{n}</td></tr>",
            escape(&kind.resource.plural)
        );
    }
    h.push_str("</table>\n<h2>Not collected</h2>\n");
    if bundle.notes.is_empty() {
        h.push_str("<p>Everything was collected.</p>\n");
    } else {
        h.push_str("<ul>\n");
        for n in &bundle.notes {
            let _ = writeln!(h, "<li class=\"error\">{}</li>", escape(n));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>Files</h2>\n<ul>\n");
    for f in &bundle.files {
        let f = escape(&f.to_string_lossy());
        let _ = writeln!(h, "<li><a href=\"{f}\">{f}</a></li>");
    }
    h.push_str("</ul>\n</body></html>\n");
    h
}

/// Each gateway node: its HA role and its cables.
fn gateways(h: &mut String, listed: &Listed) {
    h.push_str("<h2>Gateways</h2>\n<table><tr><th>node</th><th>role</th><th>remote cluster</th><th>status</th><th>RTT (avg)</th><th>message</th></tr>\n");
    for gw in of_kind(listed, "Gateway") {
        let node = escape(gw.metadata.name.as_deref().unwrap_or_default());
        let status = &gw.data["status"];
        let role = escape(status["haStatus"].as_str().unwrap_or("unknown"));
        let connections = status["connections"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if connections.is_empty() {
            let _ = writeln!(
                h,
                "<tr><td>{node}</td><td>{role}</td><td colspan=\"4\">no cables</td></tr>"
            );
        }
        for c in connections {
            let st = escape(c["status"].as_str().unwrap_or("unknown"));
            let class = if st == "connected" {
                "connected"
            } else {
                "error"
            };
            let _ = writeln!(
                h,
                "<tr><td>{node}</td><td>{role}</td><td>{}</td><td class=\"{class}\">{st}</td><td>{}</td><td>{}</td></tr>",
                escape(c["clusterId"].as_str().unwrap_or_default()),
                escape(c["latencyRtt"]["average"].as_str().unwrap_or("-")),
                escape(c["statusMessage"].as_str().unwrap_or_default()),
            );
        }
    }
    h.push_str("</table>\n");
}
