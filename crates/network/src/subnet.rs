//! Subnets (v4 and v6) and MAC addresses: parsing, arithmetic, overlap.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// An IP network in CIDR form, stored with its host bits cleared (`10.89.0.0/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Subnet {
    addr: IpAddr,
    prefix: u8,
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u32::from(a) as u128, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn from_bits(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

fn mask(prefix: u8, width: u8) -> u128 {
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    if prefix == 0 {
        0
    } else {
        all & !((1u128 << (width - prefix)) - 1) & all
    }
}

impl Subnet {
    /// A subnet from an address and prefix length; host bits are cleared.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Subnet> {
        let (v, width) = bits(addr);
        if prefix > width {
            return Err(Error::InvalidSubnet {
                spec: format!("{addr}/{prefix}"),
                why: format!("prefix longer than {width}"),
            });
        }
        Ok(Subnet {
            addr: from_bits(v & mask(prefix, width), width == 128),
            prefix,
        })
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True for an IPv6 subnet.
    pub fn is_v6(&self) -> bool {
        self.addr.is_ipv6()
    }

    fn width(&self) -> u8 {
        if self.is_v6() { 128 } else { 32 }
    }

    /// Whether `ip` is inside the subnet (same family).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v, width) = bits(ip);
        width == self.width() && v & mask(self.prefix, width) == bits(self.addr).0
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        if self.is_v6() != other.is_v6() {
            return false;
        }
        let p = self.prefix.min(other.prefix);
        let m = mask(p, self.width());
        bits(self.addr).0 & m == bits(other.addr).0 & m
    }

    /// The `n`th address of the subnet (0 is the network address), if inside.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        if n >= self.size() {
            return None;
        }
        Some(from_bits(bits(self.addr).0 + n, self.is_v6()))
    }

    /// The offset of `ip` from the network address.
    pub fn offset(&self, ip: IpAddr) -> Option<u128> {
        self.contains(ip).then(|| bits(ip).0 - bits(self.addr).0)
    }

    /// Number of addresses (saturating for /0 v6).
    pub fn size(&self) -> u128 {
        let host = self.width() - self.prefix;
        if host >= 128 {
            u128::MAX
        } else {
            1u128 << host
        }
    }

    /// Whether `ip` may be given to a container: inside, not the network address and, for v4
    /// subnets up to /30, not the broadcast address.
    pub fn is_host(&self, ip: IpAddr) -> bool {
        match self.offset(ip) {
            None | Some(0) => false,
            Some(n) => self.is_v6() || self.prefix >= 31 || n != self.size() - 1,
        }
    }

    /// The subnet following this one of the same size (`10.89.0.0/24` → `10.89.1.0/24`).
    pub fn next(&self) -> Option<Subnet> {
        let step = self.size();
        let v = bits(self.addr).0.checked_add(step)?;
        if !self.is_v6() && v > u32::MAX as u128 {
            return None;
        }
        Some(Subnet {
            addr: from_bits(v, self.is_v6()),
            prefix: self.prefix,
        })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = |why: &str| Error::InvalidSubnet {
            spec: s.to_string(),
            why: why.to_string(),
        };
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/PREFIX"))?;
        let addr: IpAddr = a.parse().map_err(|_| bad("not an IP address"))?;
        let prefix: u8 = p.parse().map_err(|_| bad("bad prefix length"))?;
        let sub = Subnet::new(addr, prefix).map_err(|_| bad("prefix too long"))?;
        if sub.addr != addr {
            return Err(bad(&format!("host bits set (did you mean {sub}?)")));
        }
        if (!sub.is_v6() && prefix > 30) || (sub.is_v6() && prefix > 126) {
            return Err(bad("too small for a gateway and a container"));
        }
        Ok(sub)
    }
}

impl Serialize for Subnet {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // Stored subnets were validated at create; accept any prefix here.
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| serde::de::Error::custom("subnet without /"))?;
        let addr = a.parse().map_err(serde::de::Error::custom)?;
        let prefix = p.parse().map_err(serde::de::Error::custom)?;
        Subnet::new(addr, prefix).map_err(serde::de::Error::custom)
    }
}

/// A MAC address, written `02:42:0a:59:00:02`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Docker's scheme for IPv4: `02:42` and the address's bytes, so an address handed out
    /// again comes with the same MAC and neighbours' ARP caches stay right. Random for IPv6.
    pub fn for_ip(ip: IpAddr) -> MacAddr {
        match ip {
            IpAddr::V4(a) => {
                let o = a.octets();
                MacAddr([0x02, 0x42, o[0], o[1], o[2], o[3]])
            }
            IpAddr::V6(_) => MacAddr::random(),
        }
    }

    /// A random locally administered unicast address.
    pub fn random() -> MacAddr {
        let mut b = [0u8; 6];
        crate::sys::random_bytes(&mut b);
        b[0] = (b[0] & 0xfe) | 0x02;
        MacAddr(b)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = Error;
    fn from_str(s: &str) -> Result<MacAddr> {
        let bad = || Error::InvalidMac(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in out.iter_mut() {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() || out[0] & 1 == 1 {
            // A multicast address cannot be an interface's own.
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_contain() {
        let s: Subnet = "10.89.0.0/24".parse().unwrap();
        assert!(s.contains("10.89.0.200".parse().unwrap()));
        assert!(!s.contains("10.89.1.1".parse().unwrap()));
        assert_eq!(s.nth(1), Some("10.89.0.1".parse().unwrap()));
        assert!(!s.is_host("10.89.0.255".parse().unwrap()));
        assert!(!s.is_host("10.89.0.0".parse().unwrap()));
        assert_eq!(s.next().unwrap().to_string(), "10.89.1.0/24");
        let e = "10.89.0.1/24".parse::<Subnet>().unwrap_err().to_string();
        assert!(e.contains("10.89.0.1/24") && e.contains("host bits"), "{e}");
        assert!("10.89.0.0".parse::<Subnet>().is_err());
        assert!("10.89.0.0/33".parse::<Subnet>().is_err());
        let v6: Subnet = "fd00:89::/64".parse().unwrap();
        assert!(v6.contains("fd00:89::5".parse().unwrap()));
    }

    #[test]
    fn overlap() {
        let a: Subnet = "10.0.0.0/8".parse().unwrap();
        let b: Subnet = "10.89.3.0/24".parse().unwrap();
        let c: Subnet = "10.90.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!b.overlaps(&c));
        let v6: Subnet = "fd00::/64".parse().unwrap();
        assert!(!v6.overlaps(&a));
    }

    #[test]
    fn mac() {
        let m: MacAddr = "02:42:0A:59:00:02".parse().unwrap();
        assert_eq!(m.to_string(), "02:42:0a:59:00:02");
        assert!("01:00:5e:00:00:01".parse::<MacAddr>().is_err());
        assert!("02:42:0a:59:00".parse::<MacAddr>().is_err());
        let r = MacAddr::random();
        assert_eq!(r.0[0] & 3, 2);
    }
}
