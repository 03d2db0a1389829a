//! The HTTP/1 server under both the daemon ([`crate::serve`]) and the emulator
//! ([`crate::emulator`]): listeners (TCP, or Unix sockets passed by systemd), an accept loop
//! that holds at most a fixed number of connections and survives running out of
//! descriptors, and connections bounded in header time, in how long an answer may wait for
//! its reader and in buffer size, which finish the request under way and close when told
//! to stop.
//!
//! Each server brings its own routes (a hyper service), its own [`Limits`], and, through
//! its [`Handler`], whatever comes between accepting and HTTP (the emulator's TLS).

mod accept;
mod connection;
mod deadline;
mod listener;
mod stall;

pub use accept::{Connections, Handler, accept_loop};
pub use connection::{HeaderClock, Limits, serve_connection};
pub use listener::{Listener, Peer, bind};
