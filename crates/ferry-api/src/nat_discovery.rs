//! The wire format of NAT discovery, as Submariner's (UDP
//! [`NAT_DISCOVERY_PORT`](crate::ports::NAT_DISCOVERY_PORT), 4490): before
//! cabling a remote gateway, a gateway sends a [`Request`] to the remote's
//! private and public address; the remote answers each with a [`Response`]
//! that reports the source address and port it saw, and whether source or
//! destination were rewritten on the way (NAT). Which address answers, and
//! how, tells the sender where to send cable traffic and whether NAT is in
//! between. `ferry-gateway` sends, answers and judges them; this module only
//! encodes, decodes and builds the answer (no I/O).
//!
//! Layout (big-endian): magic `FRYN`, version 1, kind (1 request, 2
//! response), request number (u64), then for a request: sender and receiver
//! (cluster id, endpoint name: each a length byte and UTF-8), the source and
//! destination address the sender used (4 address bytes, 2 port bytes); for a
//! response: response type, NAT flags (bit 0 source address changed, bit 1
//! source port changed, bit 2 destination address changed), sender, receiver
//! and the source address and port the responder saw.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::{Error, Result};

/// First bytes of every NAT discovery datagram.
pub const MAGIC: [u8; 4] = *b"FRYN";
/// Protocol version.
pub const VERSION: u8 = 1;
/// Largest datagram either side sends (four 255-byte names and change).
pub const MAX_LEN: usize = 1100;

const KIND_REQUEST: u8 = 1;
const KIND_RESPONSE: u8 = 2;
const FLAG_SRC_IP: u8 = 1;
const FLAG_SRC_PORT: u8 = 2;
const FLAG_DST_IP: u8 = 4;

/// A gateway as NAT discovery names it: its cluster and its Endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Peer {
    /// Cluster id.
    pub cluster_id: String,
    /// Name of the cluster's Endpoint object.
    pub endpoint: String,
}

/// "Do you answer at this address, and how do I look to you?"
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Chosen by the sender; the response repeats it.
    pub request_number: u64,
    /// Who asks.
    pub sender: Peer,
    /// Who is asked (a gateway answers only for itself).
    pub receiver: Peer,
    /// The source address and port the sender sent from.
    pub using_src: SocketAddrV4,
    /// The destination address and port the sender sent to.
    pub using_dst: SocketAddrV4,
}

/// What the responder concluded (Submariner's `ResponseType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseType {
    /// Arrived as sent: no NAT in between.
    Ok,
    /// Arrived with its source or destination rewritten.
    NatDetected,
    /// The request named another cluster as receiver.
    UnknownDstCluster,
    /// The request named another Endpoint of this cluster as receiver.
    UnknownDstEndpoint,
}

impl ResponseType {
    fn to_byte(self) -> u8 {
        match self {
            ResponseType::Ok => 0,
            ResponseType::NatDetected => 1,
            ResponseType::UnknownDstCluster => 2,
            ResponseType::UnknownDstEndpoint => 3,
        }
    }

    fn from_byte(b: u8) -> Result<Self> {
        Ok(match b {
            0 => ResponseType::Ok,
            1 => ResponseType::NatDetected,
            2 => ResponseType::UnknownDstCluster,
            3 => ResponseType::UnknownDstEndpoint,
            _ => return Err(malformed("unknown response type")),
        })
    }
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The request's number.
    pub request_number: u64,
    /// What the responder concluded.
    pub response: ResponseType,
    /// The responder.
    pub sender: Peer,
    /// The requester, as the request named it.
    pub receiver: Peer,
    /// The request's source address differed from the one it claimed.
    pub src_ip_nat_detected: bool,
    /// The request's source port differed from the one it claimed.
    pub src_port_nat_detected: bool,
    /// The request was sent to an address that is not the responder's own
    /// (a NAT forwarded it).
    pub dst_ip_nat_detected: bool,
    /// The source address and port the request arrived from: the
    /// requester's mapping on its NAT, if it is behind one.
    pub received_src: SocketAddrV4,
}

impl Response {
    /// Whether any rewriting was seen on the way.
    pub fn nat_detected(&self) -> bool {
        self.src_ip_nat_detected || self.src_port_nat_detected || self.dst_ip_nat_detected
    }
}

/// A decoded datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A probe.
    Request(Request),
    /// An answer.
    Response(Response),
}

/// The responder's side: the answer `local` gives to `req`, which arrived
/// from `received_src`. `local_addrs` are the responder's own addresses: a
/// request sent to another address reached it through a NAT's forward.
pub fn respond(
    req: &Request,
    received_src: SocketAddrV4,
    local: &Peer,
    local_addrs: &[Ipv4Addr],
) -> Response {
    let src_ip = req.using_src.ip() != received_src.ip();
    let src_port = req.using_src.port() != received_src.port();
    let dst_ip = !local_addrs.contains(req.using_dst.ip());
    let response = if req.receiver.cluster_id != local.cluster_id {
        ResponseType::UnknownDstCluster
    } else if req.receiver.endpoint != local.endpoint {
        ResponseType::UnknownDstEndpoint
    } else if src_ip || src_port || dst_ip {
        ResponseType::NatDetected
    } else {
        ResponseType::Ok
    };
    Response {
        request_number: req.request_number,
        response,
        sender: local.clone(),
        receiver: req.sender.clone(),
        src_ip_nat_detected: src_ip,
        src_port_nat_detected: src_port,
        dst_ip_nat_detected: dst_ip,
        received_src,
    }
}

impl Message {
    /// The wire form.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut b = Vec::with_capacity(128);
        b.extend_from_slice(&MAGIC);
        b.push(VERSION);
        match self {
            Message::Request(r) => {
                b.push(KIND_REQUEST);
                b.extend_from_slice(&r.request_number.to_be_bytes());
                put_peer(&mut b, &r.sender)?;
                put_peer(&mut b, &r.receiver)?;
                put_addr(&mut b, r.using_src);
                put_addr(&mut b, r.using_dst);
            }
            Message::Response(r) => {
                b.push(KIND_RESPONSE);
                b.extend_from_slice(&r.request_number.to_be_bytes());
                b.push(r.response.to_byte());
                let mut flags = 0;
                for (on, bit) in [
                    (r.src_ip_nat_detected, FLAG_SRC_IP),
                    (r.src_port_nat_detected, FLAG_SRC_PORT),
                    (r.dst_ip_nat_detected, FLAG_DST_IP),
                ] {
                    if on {
                        flags |= bit;
                    }
                }
                b.push(flags);
                put_peer(&mut b, &r.sender)?;
                put_peer(&mut b, &r.receiver)?;
                put_addr(&mut b, r.received_src);
            }
        }
        Ok(b)
    }

    /// Parses a datagram; anything else than exactly one message is an error
    /// naming what is wrong.
    pub fn decode(b: &[u8]) -> Result<Message> {
        let mut r = Reader(b);
        if r.take(4)? != MAGIC {
            return Err(malformed("not a NAT discovery datagram (bad magic)"));
        }
        if r.byte()? != VERSION {
            return Err(malformed("unsupported version"));
        }
        let kind = r.byte()?;
        let request_number = r.u64()?;
        let msg = match kind {
            KIND_REQUEST => Message::Request(Request {
                request_number,
                sender: r.peer()?,
                receiver: r.peer()?,
                using_src: r.addr()?,
                using_dst: r.addr()?,
            }),
            KIND_RESPONSE => {
                let response = ResponseType::from_byte(r.byte()?)?;
                let flags = r.byte()?;
                if flags & !(FLAG_SRC_IP | FLAG_SRC_PORT | FLAG_DST_IP) != 0 {
                    return Err(malformed("unknown flags"));
                }
                Message::Response(Response {
                    request_number,
                    response,
                    sender: r.peer()?,
                    receiver: r.peer()?,
                    src_ip_nat_detected: flags & FLAG_SRC_IP != 0,
                    src_port_nat_detected: flags & FLAG_SRC_PORT != 0,
                    dst_ip_nat_detected: flags & FLAG_DST_IP != 0,
                    received_src: r.addr()?,
                })
            }
            _ => return Err(malformed("unknown message kind")),
        };
        if !r.0.is_empty() {
            return Err(malformed("trailing bytes"));
        }
        Ok(msg)
    }
}

fn malformed(reason: &'static str) -> Error {
    Error::NatDiscoveryMalformed(reason)
}

fn put_peer(b: &mut Vec<u8>, p: &Peer) -> Result<()> {
    for s in [&p.cluster_id, &p.endpoint] {
        let len = u8::try_from(s.len()).map_err(|_| malformed("name longer than 255 bytes"))?;
        b.push(len);
        b.extend_from_slice(s.as_bytes());
    }
    Ok(())
}

fn put_addr(b: &mut Vec<u8>, a: SocketAddrV4) {
    b.extend_from_slice(&a.ip().octets());
    b.extend_from_slice(&a.port().to_be_bytes());
}

/// A cursor over the datagram.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }

    fn string(&mut self) -> Result<String> {
        let len = usize::from(self.byte()?);
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| malformed("name is not UTF-8"))
    }

    fn peer(&mut self) -> Result<Peer> {
        Ok(Peer {
            cluster_id: self.string()?,
            endpoint: self.string()?,
        })
    }

    fn addr(&mut self) -> Result<SocketAddrV4> {
        let ip = self.take(4)?;
        let ip = Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]);
        let mut port = [0u8; 2];
        port.copy_from_slice(self.take(2)?);
        Ok(SocketAddrV4::new(ip, u16::from_be_bytes(port)))
    }
}

#[cfg(test)]
mod tests;
