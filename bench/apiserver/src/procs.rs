//! The two servers under test, as child processes on the same disk: `ferry
//! apiserver` and a one-member etcd 3.4. Every process is killed and reaped
//! when its guard is dropped, and the data directories are removed after.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::access::{FerryAccess, read_kubeconfig};

/// A child process that is killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Result<Self> {
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("duplicating {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        Ok(Proc { name, child, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails (with the tail of its log) if the process has exited.
    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self
            .child
            .try_wait()
            .with_context(|| format!("polling {}", self.name))?
        {
            bail!(
                "{} exited early ({status}); last lines of {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log)
            );
        }
        Ok(())
    }

    /// Fails if the process has exited since it started.
    pub fn ensure_running(&mut self) -> Result<()> {
        self.check_alive()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Already exited is fine; any other error leaves nothing to do.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A free TCP port on 127.0.0.1 (bound once, then released).
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(l.local_addr().context("reading a bound address")?.port())
}

/// A running `ferry apiserver` with its own data directory.
#[derive(Debug)]
pub struct FerryServer {
    pub proc: Proc,
    pub access: FerryAccess,
    pub dir: PathBuf,
}

impl FerryServer {
    /// Starts ferry on a free 127.0.0.1 port with data in `parent/name`, and
    /// waits until it answers /healthz with its admin kubeconfig in place.
    pub async fn start(parent: &Path, bin: &Path, name: &str) -> Result<Self> {
        let dir = parent.join(name);
        let log = parent.join(format!("{name}.log"));
        let mut proc = Proc::spawn(
            "ferry apiserver",
            Command::new(bin)
                .arg("apiserver")
                .arg("--data-dir")
                .arg(&dir)
                // Port 0: the kernel picks one; the kubeconfig names it.
                .args(["--listen", "127.0.0.1:0"])
                .env("RUST_LOG", "warn"),
            log.clone(),
        )?;
        let kubeconfig = dir.join("admin.kubeconfig");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            proc.check_alive()?;
            if let Ok(access) = read_kubeconfig(&kubeconfig) {
                let client = crate::clients::Ferry::new(&access)?;
                if client.healthy().await {
                    return Ok(FerryServer { proc, access, dir });
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "ferry apiserver not ready after 30 s; last lines of its log:\n{}",
                    log_tail(&log)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Both servers and their data, under one parent directory.
#[derive(Debug)]
pub struct Servers {
    // Fields drop in order: processes first, then their data directories.
    pub ferry: FerryServer,
    pub etcd: Proc,
    pub etcd_url: String,
    pub etcd_dir: PathBuf,
    pub parent: tempfile::TempDir,
}

impl Servers {
    /// Starts ferry and etcd with fresh data directories under `parent`.
    pub async fn start(parent: &Path, ferry_bin: &Path, etcd_bin: &Path) -> Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix("ferry-bench-")
            .tempdir_in(parent)
            .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
        let ferry = FerryServer::start(tmp.path(), ferry_bin, "ferry").await?;

        let etcd_dir = tmp.path().join("etcd");
        std::fs::create_dir(&etcd_dir)
            .with_context(|| format!("creating {}", etcd_dir.display()))?;
        let client_port = free_port()?;
        let peer_port = free_port()?;
        ensure!(client_port != peer_port, "got the same free port twice");
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let etcd_log = tmp.path().join("etcd.log");
        let mut etcd = Proc::spawn(
            "etcd",
            Command::new(etcd_bin)
                .args(["--name", "bench"])
                .arg("--data-dir")
                .arg(&etcd_dir)
                .args(["--listen-client-urls", &client])
                .args(["--advertise-client-urls", &client])
                .args(["--listen-peer-urls", &peer])
                .args(["--initial-advertise-peer-urls", &peer])
                .args(["--initial-cluster", &format!("bench={peer}")])
                .args(["--initial-cluster-state", "new"])
                // 8 GiB: far above what a run writes, so the quota never trips.
                .args(["--quota-backend-bytes", "8589934592"])
                .args(["--logger", "zap", "--log-level", "warn"])
                .env_remove("ETCD_NAME")
                .env_remove("ETCD_DATA_DIR"),
            etcd_log.clone(),
        )?;
        let probe = crate::clients::Etcd::new(&client)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !probe.healthy().await {
            etcd.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "etcd not ready after 30 s; last lines of its log:\n{}",
                    log_tail(&etcd_log)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Servers {
            ferry,
            etcd,
            etcd_url: client,
            etcd_dir,
            parent: tmp,
        })
    }
}

/// The filesystem type of `path` as a short name, and whether it is RAM-backed.
pub fn filesystem(path: &Path) -> Result<(String, bool)> {
    use nix::sys::statfs::{
        BTRFS_SUPER_MAGIC, EXT4_SUPER_MAGIC, OVERLAYFS_SUPER_MAGIC, TMPFS_MAGIC, XFS_SUPER_MAGIC,
        statfs,
    };
    let fs = statfs(path).with_context(|| format!("statfs {}", path.display()))?;
    let t = fs.filesystem_type();
    // ramfs has no constant in nix; its magic is 0x858458f6 (linux/magic.h).
    let ramfs = t.0 as u64 == 0x8584_58f6;
    let name = if t == TMPFS_MAGIC {
        "tmpfs"
    } else if ramfs {
        "ramfs"
    } else if t == EXT4_SUPER_MAGIC {
        "ext2/3/4"
    } else if t == XFS_SUPER_MAGIC {
        "xfs"
    } else if t == BTRFS_SUPER_MAGIC {
        "btrfs"
    } else if t == OVERLAYFS_SUPER_MAGIC {
        "overlayfs"
    } else {
        "other"
    };
    Ok((name.to_string(), t == TMPFS_MAGIC || ramfs))
}

/// VmRSS and VmHWM of a process, in KiB.
pub fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> Result<u64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{path} has no {name}"))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("parsing {line:?}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Total size of the files under `dir`, in bytes.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
