//! `ferry tools`: developer tools that are not part of a deployed component.

pub mod wg;

/// Developer tools.
#[derive(Debug, clap::Subcommand)]
pub enum Tools {
    /// The user-space WireGuard data path: bring a device up, make keys.
    #[command(subcommand)]
    Wg(wg::Wg),
}

/// Run a tool.
pub fn run(t: Tools) -> anyhow::Result<()> {
    match t {
        Tools::Wg(w) => wg::run(w),
    }
}
