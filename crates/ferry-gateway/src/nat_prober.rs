//! The NAT discovery socket loop (UDP 4490 on every address of the node):
//! while this gateway is active it answers every probe with what it saw
//! ([`ferry_api::nat_discovery::respond`]); it sends the probes the engine
//! asks for, each claiming the source address the kernel picks for its
//! destination; and it hands every probe and answer it receives to the
//! engine, whose [`crate::nat_discovery::Discovery`] judges them.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use ferry_api::nat_discovery::{self, MAX_LEN, Message, Peer, Request, Response};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::{Error, Result};

/// What arrived on the socket.
#[derive(Clone, Debug)]
pub enum NatEvent {
    /// A remote gateway's probe (already answered if we are active).
    Request {
        /// Where it came from.
        from: SocketAddrV4,
        /// The probe.
        request: Request,
    },
    /// An answer to one of our probes.
    Response {
        /// Where it came from.
        from: SocketAddrV4,
        /// The answer.
        response: Response,
    },
}

/// A probe the engine wants sent.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Destination.
    pub to: SocketAddrV4,
    /// Its request number.
    pub request_number: u64,
    /// The gateway it is meant for.
    pub receiver: Peer,
}

/// How long the list of this node's addresses is trusted.
const LOCAL_ADDRS_TTL: Duration = Duration::from_secs(2);

/// How long the source address towards a destination is trusted (a route
/// change shows in the probes within this).
const SOURCE_TTL: Duration = Duration::from_secs(5);

/// Binds the NAT discovery socket on every address.
pub fn bind(port: u16) -> Result<UdpSocket> {
    let err = |source| Error::NatDiscoverySocket { port, source };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    s.set_reuse_address(true).map_err(err)?;
    s.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).into())
        .map_err(err)?;
    s.set_nonblocking(true).map_err(err)?;
    UdpSocket::from_std(s.into()).map_err(err)
}

/// Runs until `events` is closed. `identity` is this gateway's cluster and
/// Endpoint while it is active (it answers and probes only then).
pub async fn run(
    socket: UdpSocket,
    identity: watch::Receiver<Option<Peer>>,
    mut outgoing: mpsc::Receiver<Vec<Outgoing>>,
    events: mpsc::Sender<NatEvent>,
) {
    let port = socket.local_addr().map(|a| a.port()).unwrap_or_default();
    let mut local_addrs = LocalAddrs::default();
    let mut sources = Sources::default();
    let mut buf = vec![0u8; MAX_LEN];
    loop {
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let Ok((n, SocketAddr::V4(from))) = r else { continue };
                let msg = match Message::decode(&buf[..n]) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::debug!(%from, "NAT discovery: {e}");
                        continue;
                    }
                };
                let event = match msg {
                    Message::Request(request) => {
                        let me = identity.borrow().clone();
                        if let Some(me) = me {
                            let answer = nat_discovery::respond(
                                &request, from, &me, local_addrs.get(),
                            );
                            match Message::Response(answer).encode() {
                                Ok(b) => {
                                    if let Err(e) = socket.send_to(&b, from).await {
                                        tracing::debug!(%from, "NAT discovery answer: {e}");
                                    }
                                }
                                Err(e) => tracing::warn!("NAT discovery answer: {e}"),
                            }
                        }
                        NatEvent::Request { from, request }
                    }
                    Message::Response(response) => NatEvent::Response { from, response },
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
            Some(list) = outgoing.recv() => {
                let Some(me) = identity.borrow().clone() else { continue };
                for o in list {
                    let src = sources.get(o.to);
                    send_probe(&socket, port, &me, src, &o).await;
                }
            }
            _ = events.closed() => return,
        }
    }
}

async fn send_probe(socket: &UdpSocket, port: u16, me: &Peer, src: Option<Ipv4Addr>, o: &Outgoing) {
    // No route (no default route in a private network) is a plain "no answer".
    let Some(src) = src else {
        tracing::trace!(to = %o.to, "NAT discovery: no route");
        return;
    };
    let req = Message::Request(Request {
        request_number: o.request_number,
        sender: me.clone(),
        receiver: o.receiver.clone(),
        using_src: SocketAddrV4::new(src, port),
        using_dst: o.to,
    });
    match req.encode() {
        Ok(b) => {
            if let Err(e) = socket.send_to(&b, o.to).await {
                tracing::trace!(to = %o.to, "NAT discovery probe not sent: {e}");
            }
        }
        Err(e) => tracing::warn!("NAT discovery probe: {e}"),
    }
}

/// The source address the kernel picks towards `dst` (what a NAT-free
/// path delivers as the probe's source).
fn source_for(dst: SocketAddrV4) -> Option<Ipv4Addr> {
    let s = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    s.connect(dst).ok()?;
    match s.local_addr().ok()? {
        SocketAddr::V4(a) => Some(*a.ip()),
        SocketAddr::V6(_) => None,
    }
}

/// The source address the kernel picks per destination, asked again at
/// most every [`SOURCE_TTL`]: asking is a socket, a connect, a lookup and a
/// close, and every remote gets a probe a second.
#[derive(Default)]
struct Sources {
    by_dst: HashMap<SocketAddrV4, (Option<Ipv4Addr>, Instant)>,
}

impl Sources {
    fn get(&mut self, dst: SocketAddrV4) -> Option<Ipv4Addr> {
        let now = Instant::now();
        if let Some((src, at)) = self.by_dst.get(&dst)
            && now.duration_since(*at) < SOURCE_TTL
        {
            return *src;
        }
        self.by_dst
            .retain(|_, (_, at)| now.duration_since(*at) < SOURCE_TTL);
        let src = source_for(dst);
        self.by_dst.insert(dst, (src, now));
        src
    }
}

/// This node's IPv4 addresses, re-read at most every [`LOCAL_ADDRS_TTL`]:
/// a probe sent to another address reached us through a NAT's forward.
#[derive(Default)]
struct LocalAddrs {
    addrs: Vec<Ipv4Addr>,
    read_at: Option<Instant>,
}

impl LocalAddrs {
    fn get(&mut self) -> &[Ipv4Addr] {
        if self.read_at.is_none_or(|t| t.elapsed() >= LOCAL_ADDRS_TTL) {
            match local_ipv4_addresses() {
                Ok(addrs) => {
                    self.addrs = addrs;
                    self.read_at = Some(Instant::now());
                }
                Err(e) => tracing::warn!("listing this node's addresses: {e}"),
            }
        }
        &self.addrs
    }
}

/// Every IPv4 address on this namespace's interfaces, from one netlink dump
/// (`getifaddrs`): it used to be `ip -j addr show`, a fork and exec of
/// the whole gateway process every two seconds (issue #19: idle cost).
fn local_ipv4_addresses() -> nix::Result<Vec<Ipv4Addr>> {
    let addrs = nix::ifaddrs::getifaddrs()?
        .filter_map(|a| a.address?.as_sockaddr_in().map(|s| s.ip()))
        .collect();
    Ok(addrs)
}

#[cfg(test)]
mod tests;
