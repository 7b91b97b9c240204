//! The sandbox's command runners: ferry-net's `ip`/`nft` runners with the
//! sandbox's error type. A leaf: the network set-up (`net`) and the NAT
//! router (`nat`) both build on it.

use std::process::Command;

use crate::Result;

/// Runs a command with optional stdin, returning stdout; a non-zero exit is
/// an error carrying stderr.
pub fn run(cmd: &mut Command, stdin: Option<&str>) -> Result<String> {
    Ok(ferry_net::run(cmd, stdin)?)
}

/// `ip ARGS…`
pub fn ip(args: &[&str]) -> Result<String> {
    Ok(ferry_net::ip(None, args)?)
}

/// `ip [-n NS] -batch -` with one command per line.
pub fn ip_batch(netns: Option<&str>, lines: &[String]) -> Result<()> {
    Ok(ferry_net::ip_batch(netns, lines)?)
}

/// `ip netns exec NS ARGS…`
pub fn netns_exec(netns: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    Ok(ferry_net::netns_exec(Some(netns), args, stdin)?)
}

/// Applies an nft script inside a namespace.
pub fn nft_apply(netns: &str, script: &str) -> Result<()> {
    Ok(ferry_net::nft_apply(Some(netns), script)?)
}
