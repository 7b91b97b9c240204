//! Service `clusterIP` and `nodePort` allocation, as kube-apiserver does it:
//! addresses from the service range (`--service-cluster-ip-range`), node
//! ports from `--service-node-port-range`, a requested value checked against
//! the range and against what other Services hold, `spec.clusterIP`
//! immutable once set, `None` for headless Services.
//!
//! What is allocated is derived from the stored Services (loaded at start,
//! so it survives a restart). A hold is checked against the store before it
//! refuses anyone: a Service that was deleted or let go of a port by any
//! path no longer holds it. IPv4 only.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::Mutex;

use ferry_apimachinery::field::{self, FieldError, FieldErrorKind};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::store::Store;

/// An IPv4 service range, `a.b.c.d/n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceIpRange {
    network: Ipv4Addr,
    prefix: u8,
}

impl ServiceIpRange {
    /// Addresses in the range, network and broadcast included.
    fn size(self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    fn nth(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + n)
    }

    /// True for the addresses a Service may have: inside, and neither the
    /// network nor the broadcast address.
    pub fn allocatable(self, ip: Ipv4Addr) -> bool {
        let offset = u32::from(ip).wrapping_sub(u32::from(self.network));
        u32::from(ip) >= u32::from(self.network) && offset > 0 && offset < self.size() - 1
    }
}

impl FromStr for ServiceIpRange {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("service IP range {s:?}: {why}"));
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| bad("expected an IPv4 CIDR such as 100.96.0.0/16"))?;
        if addr.contains(':') {
            return Err(bad("ferry apiserver serves IPv4 Services only"));
        }
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("not a prefix length"))?;
        // Room for some Services; at most what a sandbox plan may give.
        if !(8..=30).contains(&prefix) {
            return Err(bad("the prefix length must be between 8 and 30"));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(ServiceIpRange {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }
}

impl fmt::Display for ServiceIpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `low-high`, as `--service-node-port-range` takes it.
pub fn parse_port_range(s: &str) -> Result<RangeInclusive<u16>> {
    let bad = || {
        Error::Config(format!(
            "node port range {s:?}: expected LOW-HIGH, e.g. 30000-32767"
        ))
    };
    let (low, high) = s.split_once('-').ok_or_else(bad)?;
    let (low, high): (u16, u16) = (
        low.trim().parse().map_err(|_| bad())?,
        high.trim().parse().map_err(|_| bad())?,
    );
    if low == 0 || low > high {
        return Err(bad());
    }
    Ok(low..=high)
}

/// Who holds an address or port: a Service's storage key, and whether its
/// write is still in flight (then it holds without being in the store).
#[derive(Debug, Clone)]
struct Hold {
    key: String,
    pending: bool,
}

#[derive(Debug, Default)]
struct Holds {
    ips: HashMap<Ipv4Addr, Hold>,
    ports: HashMap<u16, Hold>,
    /// Offset in the range where the next search starts, so a released
    /// address is not handed out again at once.
    next_ip: u32,
    next_port: u16,
}

/// The cluster IPs and node ports of the server's Services.
#[derive(Debug)]
pub struct ServiceAllocator {
    range: ServiceIpRange,
    node_ports: RangeInclusive<u16>,
    holds: Mutex<Holds>,
}

/// How many of the first addresses are left for Services that ask for a
/// fixed one: a sixteenth of the range, 16 to 256, as kube-apiserver's
/// static band.
fn static_band(size: u32) -> u32 {
    (size / 16).clamp(16, 256).min(size / 2)
}

fn is_external_name(spec: &Map<String, Value>) -> bool {
    spec.get("type").and_then(Value::as_str) == Some("ExternalName")
}

fn needs_node_ports(spec: &Map<String, Value>) -> bool {
    matches!(
        spec.get("type").and_then(Value::as_str),
        Some("NodePort" | "LoadBalancer")
    )
}

fn cluster_ip(spec: &Map<String, Value>) -> Option<&str> {
    spec.get("clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn spec_mut(object: &mut Value) -> Result<&mut Map<String, Value>> {
    let obj = object
        .as_object_mut()
        .ok_or_else(|| Error::BadRequest("the request body is not a JSON object".into()))?;
    let spec = obj
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    if spec.is_null() {
        *spec = Value::Object(Map::new());
    }
    spec.as_object_mut()
        .ok_or_else(|| Error::BadRequest("spec must be an object".into()))
}

fn ports_of(spec: &Map<String, Value>) -> impl Iterator<Item = &Map<String, Value>> {
    spec.get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

fn node_port(port: &Map<String, Value>) -> Option<i64> {
    port.get("nodePort")
        .and_then(Value::as_i64)
        .filter(|p| *p != 0)
}

/// (port, protocol) → nodePort of a stored Service, for carrying ports over
/// an update that does not name them.
fn node_ports_by_port(spec: &Map<String, Value>) -> HashMap<(i64, String), i64> {
    ports_of(spec)
        .filter_map(|p| {
            let port = p.get("port").and_then(Value::as_i64)?;
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            Some(((port, proto.to_string()), node_port(p)?))
        })
        .collect()
}

/// Allocations a write made; they are given back when it is dropped
/// without [`Reservation::commit`] (the write failed, or was a dry run).
#[must_use = "a reservation is released when dropped; commit it once the write is stored"]
pub struct Reservation<'a> {
    allocator: &'a ServiceAllocator,
    ips: Vec<Ipv4Addr>,
    ports: Vec<u16>,
}

impl Reservation<'_> {
    /// The write is stored: the store now shows the holds.
    pub fn commit(mut self) {
        let mut holds = self.allocator.lock();
        for ip in self.ips.drain(..) {
            if let Some(h) = holds.ips.get_mut(&ip) {
                h.pending = false;
            }
        }
        for port in self.ports.drain(..) {
            if let Some(h) = holds.ports.get_mut(&port) {
                h.pending = false;
            }
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.ips.is_empty() && self.ports.is_empty() {
            return;
        }
        let mut holds = self.allocator.lock();
        for ip in &self.ips {
            if holds.ips.get(ip).is_some_and(|h| h.pending) {
                holds.ips.remove(ip);
            }
        }
        for port in &self.ports {
            if holds.ports.get(port).is_some_and(|h| h.pending) {
                holds.ports.remove(port);
            }
        }
    }
}

/// What a Service being written is: its storage key and name (for errors).
pub struct Target<'a> {
    pub key: &'a str,
    pub name: &'a str,
}

impl ServiceAllocator {
    pub fn new(range: ServiceIpRange, node_ports: RangeInclusive<u16>) -> Self {
        ServiceAllocator {
            range,
            node_ports,
            holds: Mutex::new(Holds::default()),
        }
    }

    pub fn range(&self) -> ServiceIpRange {
        self.range
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Holds> {
        self.holds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the holds of the Services stored under `prefix` (at start).
    pub fn load(&self, store: &Store, prefix: &str) -> Result<()> {
        let (_, services, _) = store.list(prefix, None, None, |_, _| true);
        let mut holds = self.lock();
        for (key, stored) in services {
            let value = stored.value()?;
            let Some(spec) = value.get("spec").and_then(Value::as_object) else {
                continue;
            };
            let hold = Hold {
                key: key.to_string(),
                pending: false,
            };
            if let Some(ip) = cluster_ip(spec).and_then(|ip| ip.parse().ok()) {
                holds.ips.insert(ip, hold.clone());
            }
            for p in ports_of(spec).filter_map(node_port) {
                if let Ok(p) = u16::try_from(p) {
                    holds.ports.insert(p, hold.clone());
                }
            }
        }
        Ok(())
    }

    /// Forgets what the Service at `key` held (it was deleted).
    pub fn release(&self, key: &str) {
        let mut holds = self.lock();
        holds.ips.retain(|_, h| h.pending || h.key != key);
        holds.ports.retain(|_, h| h.pending || h.key != key);
    }

    /// Allocates what a new Service needs and checks what it asks for.
    pub fn on_create(
        &self,
        store: &Store,
        target: &Target<'_>,
        object: &mut Value,
    ) -> Result<Reservation<'_>> {
        let spec = spec_mut(object)?;
        let mut reservation = self.reservation();
        if !is_external_name(spec) {
            self.assign_ip(store, target, spec, &mut reservation)?;
        }
        self.assign_node_ports(store, target, spec, None, &mut reservation)?;
        Ok(reservation)
    }

    /// Carries allocations over an update, refuses a changed `clusterIP`,
    /// and allocates what a changed type newly needs.
    pub fn on_update(
        &self,
        store: &Store,
        target: &Target<'_>,
        old: &Value,
        new: &mut Value,
    ) -> Result<Reservation<'_>> {
        let empty = Map::new();
        let old_spec = old.get("spec").and_then(Value::as_object).unwrap_or(&empty);
        let spec = spec_mut(new)?;
        let mut reservation = self.reservation();
        let old_ip = cluster_ip(old_spec);
        if is_external_name(spec) {
            // Switching to ExternalName drops the address, unless the
            // client changed it (then validation has its say).
            if cluster_ip(spec) == old_ip {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
        } else if let (Some(old_ip), false) = (old_ip, is_external_name(old_spec)) {
            match cluster_ip(spec) {
                None => {
                    spec.insert("clusterIP".into(), json!(old_ip));
                    let old_ips = old_spec.get("clusterIPs").cloned();
                    spec.insert("clusterIPs".into(), old_ips.unwrap_or(json!([old_ip])));
                }
                Some(ip) if ip != old_ip => {
                    return Err(self.invalid(
                        target,
                        FieldError::invalid("spec.clusterIP", json!(ip), "field is immutable"),
                    ));
                }
                Some(_) => {
                    spec.entry("clusterIPs").or_insert(json!([old_ip]));
                }
            }
        } else {
            self.assign_ip(store, target, spec, &mut reservation)?;
        }
        if needs_node_ports(old_spec) && !needs_node_ports(spec) {
            drop_unchanged_node_ports(old_spec, spec);
        }
        self.assign_node_ports(store, target, spec, Some(old_spec), &mut reservation)?;
        Ok(reservation)
    }

    fn reservation(&self) -> Reservation<'_> {
        Reservation {
            allocator: self,
            ips: Vec::new(),
            ports: Vec::new(),
        }
    }

    fn invalid(&self, target: &Target<'_>, cause: FieldError) -> Error {
        Error::invalid("Service", target.name, cause)
    }

    /// True when `hold` still stands: in flight, or its Service as stored
    /// still has the value.
    fn holds(store: &Store, hold: &Hold, has: impl Fn(&Map<String, Value>) -> bool) -> bool {
        if hold.pending {
            return true;
        }
        let Some(stored) = store.get(&hold.key) else {
            return false;
        };
        stored
            .value()
            .ok()
            .and_then(|v| v.get("spec").and_then(Value::as_object).map(&has))
            .unwrap_or(true)
    }

    /// Whether someone other than `key` holds `ip`.
    fn ip_taken(&self, store: &Store, holds: &Holds, key: &str, ip: Ipv4Addr) -> bool {
        holds.ips.get(&ip).is_some_and(|h| {
            h.key != key
                && Self::holds(store, h, |spec| {
                    cluster_ip(spec).is_some_and(|s| s == ip.to_string())
                })
        })
    }

    fn port_taken(&self, store: &Store, holds: &Holds, key: &str, port: u16) -> bool {
        holds.ports.get(&port).is_some_and(|h| {
            h.key != key
                && Self::holds(store, h, |spec| {
                    ports_of(spec).any(|p| node_port(p) == Some(i64::from(port)))
                })
        })
    }

    fn assign_ip(
        &self,
        store: &Store,
        target: &Target<'_>,
        spec: &mut Map<String, Value>,
        reservation: &mut Reservation<'_>,
    ) -> Result<()> {
        let first_of_list = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .and_then(|l| l.first())
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let requested = cluster_ip(spec).map(str::to_string);
        if let (Some(ip), Some(first)) = (&requested, &first_of_list)
            && ip != first
        {
            return Err(self.invalid(
                target,
                FieldError::invalid(
                    "spec.clusterIPs[0]",
                    json!(first),
                    "must match `clusterIP` when both are specified",
                ),
            ));
        }
        let requested = requested.or(first_of_list);
        if requested.as_deref() == Some("None") {
            spec.insert("clusterIP".into(), json!("None"));
            spec.insert("clusterIPs".into(), json!(["None"]));
            return Ok(());
        }
        let mut holds = self.lock();
        let ip = match requested {
            Some(text) => {
                let ip = self.check_requested_ip(target, &text)?;
                if self.ip_taken(store, &holds, target.key, ip) {
                    return Err(self.ip_error(target, ip, "provided IP is already allocated"));
                }
                ip
            }
            None => self.free_ip(store, &mut holds)?,
        };
        holds.ips.insert(
            ip,
            Hold {
                key: target.key.to_string(),
                pending: true,
            },
        );
        reservation.ips.push(ip);
        spec.insert("clusterIP".into(), json!(ip.to_string()));
        spec.insert("clusterIPs".into(), json!([ip.to_string()]));
        Ok(())
    }

    fn ip_error(&self, target: &Target<'_>, ip: Ipv4Addr, why: &str) -> Error {
        self.invalid(
            target,
            FieldError::invalid(
                "spec.clusterIPs",
                json!([ip.to_string()]),
                format!("failed to allocate IP {ip}: {why}"),
            ),
        )
    }

    fn check_requested_ip(&self, target: &Target<'_>, text: &str) -> Result<Ipv4Addr> {
        let Ok(ip) = text.parse::<Ipv4Addr>() else {
            return Err(self.invalid(
                target,
                FieldError::invalid(
                    "spec.clusterIPs[0]",
                    json!(text),
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ),
            ));
        };
        if !self.range.allocatable(ip) {
            let why = format!(
                "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                self.range
            );
            return Err(self.ip_error(target, ip, &why));
        }
        Ok(ip)
    }

    /// The next free address after the last one handed out, outside the
    /// static band while there is room there.
    fn free_ip(&self, store: &Store, holds: &mut Holds) -> Result<Ipv4Addr> {
        let size = self.range.size();
        let band = static_band(size).max(1);
        let dynamic = band..size - 1;
        let start = holds.next_ip.clamp(dynamic.start, dynamic.end);
        let order = (start..dynamic.end)
            .chain(dynamic.start..start)
            .chain(1..band);
        for n in order {
            let ip = self.range.nth(n);
            let free = holds.ips.get(&ip).is_none_or(|h| {
                !Self::holds(store, h, |spec| {
                    cluster_ip(spec).is_some_and(|s| s == ip.to_string())
                })
            });
            if free {
                holds.next_ip = n + 1;
                return Ok(ip);
            }
        }
        Err(Error::Internal(format!(
            "failed to allocate a serviceIP: range is full ({})",
            self.range
        )))
    }

    fn assign_node_ports(
        &self,
        store: &Store,
        target: &Target<'_>,
        spec: &mut Map<String, Value>,
        old_spec: Option<&Map<String, Value>>,
        reservation: &mut Reservation<'_>,
    ) -> Result<()> {
        let needs = needs_node_ports(spec);
        let kind = spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        let previous = old_spec
            .filter(|s| needs_node_ports(s))
            .map(node_ports_by_port)
            .unwrap_or_default();
        let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) else {
            return Ok(());
        };
        let mut holds = self.lock();
        for (i, port) in ports.iter_mut().enumerate() {
            let Some(port) = port.as_object_mut() else {
                continue;
            };
            let path = field::index("spec.ports", i) + ".nodePort";
            let asked = node_port(port);
            if !needs {
                if asked.is_some() {
                    return Err(self.invalid(
                        target,
                        FieldError::new(FieldErrorKind::Forbidden, path, None)
                            .with_detail(format!("may not be used when `type` is '{kind}'")),
                    ));
                }
                continue;
            }
            let carried = || {
                let number = port.get("port").and_then(Value::as_i64)?;
                let proto = port
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP");
                previous.get(&(number, proto.to_string())).copied()
            };
            let chosen = match asked.or_else(carried) {
                Some(n) => {
                    let in_range = u16::try_from(n)
                        .ok()
                        .filter(|p| self.node_ports.contains(p));
                    let Some(p) = in_range else {
                        return Err(self.invalid(
                            target,
                            FieldError::invalid(
                                path,
                                json!(n),
                                format!(
                                    "provided port is not in the valid range. The range of valid ports is {}-{}",
                                    self.node_ports.start(),
                                    self.node_ports.end()
                                ),
                            ),
                        ));
                    };
                    if self.port_taken(store, &holds, target.key, p) {
                        return Err(self.invalid(
                            target,
                            FieldError::invalid(
                                path,
                                json!(n),
                                "provided port is already allocated",
                            ),
                        ));
                    }
                    p
                }
                None => self.free_port(store, &mut holds)?,
            };
            holds.ports.insert(
                chosen,
                Hold {
                    key: target.key.to_string(),
                    pending: true,
                },
            );
            reservation.ports.push(chosen);
            port.insert("nodePort".into(), json!(chosen));
        }
        Ok(())
    }

    /// The next port no one holds, this Service included (its other ports
    /// need distinct numbers).
    fn free_port(&self, store: &Store, holds: &mut Holds) -> Result<u16> {
        let (low, high) = (*self.node_ports.start(), *self.node_ports.end());
        let start = holds.next_port.clamp(low, high);
        let found = (start..=high).chain(low..start).find(|p| {
            holds.ports.get(p).is_none_or(|h| {
                !Self::holds(store, h, |spec| {
                    ports_of(spec).any(|x| node_port(x) == Some(i64::from(*p)))
                })
            })
        });
        let port = found.ok_or_else(|| {
            Error::Internal(format!(
                "failed to allocate a nodePort: range is full ({low}-{high})"
            ))
        })?;
        holds.next_port = port.saturating_add(1);
        Ok(port)
    }
}

/// A type change away from NodePort/LoadBalancer drops the node ports the
/// client left as they were (`dropTypeDependentFields`).
fn drop_unchanged_node_ports(old_spec: &Map<String, Value>, spec: &mut Map<String, Value>) {
    let previous = node_ports_by_port(old_spec);
    for port in spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        let key = (
            port.get("port").and_then(Value::as_i64).unwrap_or(0),
            port.get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_string(),
        );
        if node_port(port).is_some() && previous.get(&key).copied() == node_port(port) {
            port.remove("nodePort");
        }
    }
}

#[cfg(test)]
mod tests;
