//! The UDP socket: GSO on send, GRO and `recvmmsg` on receive (through quinn-udp).

use crate::Error;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use quinn_udp::{Transmit, UdpSockRef, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;

/// Socket buffer size asked for (forced past rmem_max when we may).
const SOCK_BUF: usize = 8 << 20;

/// A UDP socket bound on all IPv4 addresses, with GSO and GRO where the
/// kernel has them.
pub struct Udp {
    sock: UdpSocket,
    state: UdpSocketState,
    port: u16,
}

impl Udp {
    /// Bind `0.0.0.0:port` (IPv4 only for now).
    pub fn bind(port: u16) -> Result<Self, Error> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(Error::Udp)?;
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())
            .map_err(Error::Udp)?;
        // Larger buffers absorb bursts of GSO batches; FORCE works as root.
        if nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBufForce, &SOCK_BUF)
            .is_err()
        {
            let _ = s.set_recv_buffer_size(SOCK_BUF);
        }
        if nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::SndBufForce, &SOCK_BUF)
            .is_err()
        {
            let _ = s.set_send_buffer_size(SOCK_BUF);
        }
        let sock: UdpSocket = s.into();
        // quinn-udp makes the socket non-blocking; we wait with poll(2) when idle.
        let state = UdpSocketState::new(UdpSockRef::from(&sock)).map_err(Error::Udp)?;
        let port = sock.local_addr().map_err(Error::Udp)?.port();
        Ok(Self { sock, state, port })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many segments one GSO send may carry (1 without GSO).
    pub fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// How many datagrams one GRO receive may coalesce.
    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// Send `contents` to `dst`, cut into `segment`-sized datagrams by the kernel when
    /// `segment` is given (the last one may be shorter).
    pub fn send(&self, dst: SocketAddr, contents: &[u8], segment: Option<usize>) -> io::Result<()> {
        if !dst.is_ipv4() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "IPv6 endpoints are not supported yet",
            ));
        }
        let t = Transmit {
            destination: dst,
            ecn: None,
            contents,
            segment_size: segment.filter(|s| *s < contents.len()),
            src_ip: None,
        };
        // A full send buffer is back-pressure, not loss: wait for room (bounded, so a
        // stuck socket cannot wedge the caller).
        for _ in 0..50 {
            match self.state.try_send(UdpSockRef::from(&self.sock), &t) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(PollFlags::POLLOUT, 20);
                }
                r => return r,
            }
        }
        Err(io::Error::from(io::ErrorKind::WouldBlock))
    }

    /// Wait until the socket is readable (or `ms` pass).
    pub fn wait_readable(&self, ms: u16) {
        self.wait(PollFlags::POLLIN, ms);
    }

    fn wait(&self, what: PollFlags, ms: u16) {
        let mut fds = [PollFd::new(self.sock.as_fd(), what)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }

    /// Receive a batch; see [`UdpSocketState::recv`].
    pub fn recv(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [quinn_udp::RecvMeta],
    ) -> io::Result<usize> {
        self.state.recv(UdpSockRef::from(&self.sock), bufs, meta)
    }
}
