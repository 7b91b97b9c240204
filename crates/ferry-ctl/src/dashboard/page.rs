//! What the dashboard shows, as pure functions: a [`Frame`] (the topology
//! SVG and the `show` tables as HTML) built from a [`Report`], the page
//! around it, and the frame as JSON for the page's polling.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::show::Section;
use crate::show::model::Report;
use crate::show::render::table;
use crate::show::topology::{self, Topology};

/// What the dashboard reads from every cluster: what the topology needs,
/// which are also the tables it shows.
pub const SECTIONS: [Section; 4] = topology::SECTIONS;

/// One state of the page.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Frame {
    /// Bumped whenever the picture or the tables change.
    pub version: u64,
    /// When the clusters were last read (UTC, `HH:MM:SS`).
    pub updated: String,
    /// The topology picture.
    pub svg: String,
    /// The `show` tables, as HTML.
    pub tables: String,
}

impl Frame {
    /// The frame of `report`; its version is `previous + 1` unless it
    /// shows the same as a frame of version `previous` built from the same
    /// content would (the caller keeps the old frame then).
    pub fn new(report: &Report, previous: u64, updated: &str) -> Frame {
        let svg = topology::svg(&Topology::from_report(report));
        let tables = format!("<pre>{}</pre>", escape(&table(report)));
        Frame {
            version: previous + 1,
            updated: updated.to_string(),
            svg,
            tables,
        }
    }

    /// Whether `other` shows the same picture and tables.
    pub fn same_content(&self, other: &Frame) -> bool {
        self.svg == other.svg && self.tables == other.tables
    }
}

/// `frame` as the JSON `/frame` answers.
pub fn frame_json(frame: &Frame) -> String {
    // A struct of strings and a number always serializes.
    serde_json::to_string(frame).unwrap_or_default()
}

/// `HH:MM:SS` (UTC) of `t`.
pub fn clock(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

const STYLE: &str = "
body { font-family: sans-serif; margin: 0; color: #222; background: #f7f7f7; }
header { padding: 8px 16px; background: #263238; color: #fff; display: flex; gap: 16px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; }
#updated { font-size: 12px; color: #cfd8dc; }
body.stale #updated { color: #ff8a80; }
main { display: flex; flex-wrap: wrap; gap: 16px; padding: 16px; }
#topology { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px; }
#topology svg { max-width: 100%; height: auto; }
#tables { flex: 1; min-width: 400px; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px; overflow: auto; }
#tables pre { font-size: 12px; margin: 0; }
";

const SCRIPT: &str = "
let version = Number(document.body.dataset.version);
const every = Number(document.body.dataset.refreshMs);
async function tick() {
  try {
    const r = await fetch('frame', { cache: 'no-store' });
    const f = await r.json();
    if (f.version !== version) {
      document.getElementById('topology').innerHTML = f.svg;
      document.getElementById('tables').innerHTML = f.tables;
      version = f.version;
      document.body.dataset.version = String(version);
    }
    document.getElementById('updated').textContent = 'updated ' + f.updated + ' UTC';
    document.body.classList.remove('stale');
  } catch (e) {
    document.getElementById('updated').textContent = 'ferry dashboard unreachable: ' + e;
    document.body.classList.add('stale');
  }
  setTimeout(tick, every);
}
setTimeout(tick, every);
";

/// The whole page, showing `frame` until its script fetches newer ones
/// every `refresh_ms`.
pub fn page(frame: &Frame, refresh_ms: u64) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ferry dashboard</title>
<style>{STYLE}</style>
</head>
<body data-version="{version}" data-refresh-ms="{refresh_ms}">
<header><h1>ferry clusterset</h1><span id="updated">updated {updated} UTC</span></header>
<main>
<section id="topology">{svg}</section>
<section id="tables">{tables}</section>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"#,
        version = frame.version,
        updated = escape(&frame.updated),
        svg = frame.svg,
        tables = frame.tables,
    )
}

fn escape(s: &str) -> String {
    crate::show::topology::escape(s)
}
