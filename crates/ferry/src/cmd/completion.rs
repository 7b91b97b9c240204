//! `ferry completion`: shell completion scripts.

/// Print a shell completion script for ferry.
///
/// Load it in the current shell, or install it for every new one.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  source <(ferry completion bash)                        # bash, this shell
  ferry completion bash > /etc/bash_completion.d/ferry   # bash, every shell
  ferry completion zsh > \"${fpath[1]}/_ferry\"            # zsh (then restart it)")]
pub struct Args {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Writes the script for `args.shell` of the command `cli` to stdout.
pub fn run(args: Args, mut cli: clap::Command) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "ferry", &mut buf);
    super::errors::print(&String::from_utf8_lossy(&buf))
}
