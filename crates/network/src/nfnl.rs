//! The fast path for published ports: set elements added and deleted over nf_tables netlink
//! directly (one batch, one round trip), instead of running `nft`, whose start-up and cache
//! fill cost milliseconds per container. Only elements of the maps `nft::base` made go this way;
//! the table and its chains are always made by `nft`, so a missing table sends the caller back
//! to the `nft` path.

use std::io;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use crate::ports::{Proto, PublishedPort};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFPROTO_INET: u8 = 1;
const NLA_F_NESTED: u16 = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;

/// A netlink attribute: header, payload, padding to 4 bytes.
fn attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn nested(buf: &mut Vec<u8>, ty: u16, f: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    f(&mut inner);
    attr(buf, ty | NLA_F_NESTED, &inner);
}

/// One message: nlmsghdr, nfgenmsg, attributes.
fn message(
    out: &mut Vec<u8>,
    ty: u16,
    flags: u16,
    seq: u32,
    res_id: u16,
    family: u8,
    attrs: &[u8],
) {
    let len = 16 + 4 + attrs.len();
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.push(family);
    out.push(0); // NFNETLINK_V0
    out.extend_from_slice(&res_id.to_be_bytes());
    out.extend_from_slice(attrs);
}

/// Each field of a concatenation sits at the start of its own 4-byte register.
fn reg(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    out.resize(out.len().next_multiple_of(4), 0);
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// (map name, key, data) of the element for `p`, matching `nft::port_element`.
fn element(p: &PublishedPort, ctr: IpAddr) -> (String, Vec<u8>, Vec<u8>) {
    let fam = if ctr.is_ipv6() { "6" } else { "4" };
    let proto = match p.proto {
        Proto::Tcp => libc::IPPROTO_TCP as u8,
        Proto::Udp => libc::IPPROTO_UDP as u8,
    };
    let mut key = Vec::new();
    let map = match p.host_ip {
        None => format!("pany{fam}"),
        Some(h) => {
            reg(&mut key, &ip_bytes(h));
            format!("pip{fam}")
        }
    };
    reg(&mut key, &[proto]);
    reg(&mut key, &p.host_port.to_be_bytes());
    let mut data = Vec::new();
    reg(&mut data, &ip_bytes(ctr));
    reg(&mut data, &p.container_port.to_be_bytes());
    (map, key, data)
}

/// One set element of one map of a table.
struct Elem<'a> {
    table: &'a str,
    map: &'a str,
    key: &'a [u8],
    data: &'a [u8],
}

fn elem_msg(out: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, el: &Elem<'_>) {
    let Elem {
        table,
        map,
        key,
        data,
    } = *el;
    let mut a = Vec::new();
    attr(
        &mut a,
        NFTA_SET_ELEM_LIST_TABLE,
        format!("{table}\0").as_bytes(),
    );
    attr(
        &mut a,
        NFTA_SET_ELEM_LIST_SET,
        format!("{map}\0").as_bytes(),
    );
    nested(&mut a, NFTA_SET_ELEM_LIST_ELEMENTS, |l| {
        nested(l, NFTA_LIST_ELEM, |e| {
            nested(e, NFTA_SET_ELEM_KEY, |k| attr(k, NFTA_DATA_VALUE, key));
            nested(e, NFTA_SET_ELEM_DATA, |d| attr(d, NFTA_DATA_VALUE, data));
        });
    });
    let ty = (NFNL_SUBSYS_NFTABLES << 8) | ty;
    message(out, ty, flags, seq, 0, NFPROTO_INET, &a);
}

/// Add (`delete == false`) or remove the elements of `ports` in one transaction. Removal adds
/// each element first, so it succeeds whether or not the element was there.
pub(crate) fn update_ports(
    table: &str,
    ctr: IpAddr,
    ports: &[PublishedPort],
    delete: bool,
) -> io::Result<()> {
    let mut guard = SOCKET.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if guard.as_ref().is_none_or(|(p, _)| *p != pid) {
        // Inherited over a fork: the parent may still use it (answers would go to either
        // process), so leave it to the parent and open our own.
        if let Some((_, inherited)) = guard.take() {
            std::mem::forget(inherited);
        }
        *guard = Some((pid, open()?));
    }
    let sock = &guard.as_ref().expect("just set").1;
    exchange(sock, table, ctr, ports, delete)
}

/// The socket is kept for the life of the process: closing a nf_tables netlink socket makes the
/// kernel wait for the last transaction's RCU grace period (~10 ms), which by process exit has
/// long passed.
static SOCKET: Mutex<Option<(u32, Socket)>> = Mutex::new(None);
static SEQ: AtomicU32 = AtomicU32::new(1);

fn open() -> io::Result<Socket> {
    let mut sock = Socket::new(NETLINK_NETFILTER)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    Ok(sock)
}

fn exchange(
    sock: &Socket,
    table: &str,
    ctr: IpAddr,
    ports: &[PublishedPort],
    delete: bool,
) -> io::Result<()> {
    rustix::net::sockopt::set_socket_timeout(
        sock,
        rustix::net::sockopt::Timeout::Recv,
        Some(std::time::Duration::from_secs(10)),
    )?;
    let mut buf = Vec::new();
    // Sequence numbers unique in the process: answers left over from an earlier exchange that
    // gave up early are recognised and skipped.
    let mut seq = SEQ.fetch_add(2 * ports.len() as u32 + 2, Ordering::Relaxed);
    message(
        &mut buf,
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        seq,
        NFNL_SUBSYS_NFTABLES,
        0,
        &[],
    );
    let mut acks = Vec::new();
    for p in ports {
        let (map, key, data) = element(p, ctr);
        let el = Elem {
            table,
            map: &map,
            key: &key,
            data: &data,
        };
        seq += 1;
        elem_msg(
            &mut buf,
            NFT_MSG_NEWSETELEM,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
            seq,
            &el,
        );
        acks.push(seq);
        if delete {
            seq += 1;
            elem_msg(
                &mut buf,
                NFT_MSG_DELSETELEM,
                NLM_F_REQUEST | NLM_F_ACK,
                seq,
                &el,
            );
            acks.push(seq);
        }
    }
    seq += 1;
    message(
        &mut buf,
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        seq,
        NFNL_SUBSYS_NFTABLES,
        0,
        &[],
    );
    sock.send(&buf, 0)?;
    // One answer per message asking for an ACK; the first error is the batch's (the kernel
    // applies all of it or nothing).
    let mut first_err: Option<io::Error> = None;
    let mut rx = Vec::with_capacity(16 * 1024);
    while !acks.is_empty() {
        rx.clear();
        let n = match sock.recv(&mut rx, 0) {
            Ok(n) => n,
            Err(e) if first_err.is_some() && e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        };
        let mut off = 0;
        while off + 16 <= n {
            let len = u32::from_ne_bytes(rx[off..off + 4].try_into().expect("4 bytes")) as usize;
            let ty = u16::from_ne_bytes(rx[off + 4..off + 6].try_into().expect("2 bytes"));
            let seq = u32::from_ne_bytes(rx[off + 8..off + 12].try_into().expect("4 bytes"));
            if ty == NLMSG_ERROR && off + 20 <= n {
                let code = i32::from_ne_bytes(rx[off + 16..off + 20].try_into().expect("4 bytes"));
                let ours = acks.contains(&seq);
                acks.retain(|s| *s != seq);
                if ours && code != 0 && first_err.is_none() {
                    first_err = Some(io::Error::from_raw_os_error(-code));
                    // After an error, do not wait long for the rest of the answers.
                    rustix::net::sockopt::set_socket_timeout(
                        sock,
                        rustix::net::sockopt::Timeout::Recv,
                        Some(std::time::Duration::from_millis(50)),
                    )?;
                }
            }
            if len < 16 {
                break;
            }
            off += len.next_multiple_of(4);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
