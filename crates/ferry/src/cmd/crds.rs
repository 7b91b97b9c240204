//! `ferry crds`: print the CustomResourceDefinitions ferry uses.

use std::io::Write;

/// `ferry crds` takes no options.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Writes every CRD, as one multi-document YAML stream, to stdout.
pub fn run(_args: Args) -> anyhow::Result<()> {
    let yaml = ferry_api::all_crds_yaml()?;
    let mut out = std::io::stdout().lock();
    out.write_all(yaml.as_bytes())?;
    out.flush()?;
    Ok(())
}
