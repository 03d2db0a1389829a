//! Listening sockets, and who is on the other end of a connection.

use std::fmt;
use std::net::SocketAddr;

use tokio::net::{TcpListener, UnixListener};

/// A listening socket of either kind.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// The local TCP address, if a TCP listener.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Tcp(l) => l.local_addr().ok(),
            Self::Unix(_) => None,
        }
    }
}

/// The client of a connection, for logs and for routes that answer local clients only.
/// Copied, not formatted, per connection: it is written out only when a log line needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Tcp(SocketAddr),
    /// A Unix socket's client, which is on this host by definition.
    Unix,
}

impl Peer {
    /// Whether the client is on this host: a loopback address, or a Unix socket.
    pub fn is_loopback(&self) -> bool {
        match self {
            Self::Tcp(addr) => addr.ip().is_loopback(),
            Self::Unix => true,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => addr.fmt(f),
            Self::Unix => f.write_str("unix"),
        }
    }
}

/// Listens on `addr` with the IP TTL (IPv4) or unicast hop limit (IPv6) of every reply
/// packet set to `hops`, as `--hop-limit` asks (1 keeps replies from crossing a router,
/// EC2's IMDSv2 default for containers). Set on the listening socket, it covers the
/// SYN-ACK too, and accepted connections inherit it at no cost per connection.
pub fn bind(addr: SocketAddr, hops: u32) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_unicast_hops_v6(hops)?;
        // IPv4 clients of a dual-stack socket bound to [::] reply over IPv4.
        let _ = socket.set_ttl_v4(hops);
    } else {
        socket.set_ttl_v4(hops)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_print_and_know_whether_they_are_local() {
        let local = Peer::Tcp("127.0.0.1:4000".parse().unwrap());
        let remote = Peer::Tcp("[2001:db8::1]:443".parse().unwrap());
        assert_eq!(local.to_string(), "127.0.0.1:4000");
        assert_eq!(remote.to_string(), "[2001:db8::1]:443");
        assert_eq!(Peer::Unix.to_string(), "unix");
        assert!(local.is_loopback());
        assert!(!remote.is_loopback());
        assert!(Peer::Unix.is_loopback());
    }
}
