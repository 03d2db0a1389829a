//! `serve`: keeps each role's credentials fresh in memory (one [`refresh`](crate::refresh)
//! engine per role) and hands them to SDKs on the host through the protocols they already
//! speak: an IMDSv2-compatible endpoint (one role per listener, at the root paths) and
//! ECS container-credentials paths (any number of roles per listener, each behind its own
//! token).
//!
//! The modules, in the order data flows: [`running`] starts the plan's listeners and
//! refreshers and [`reload`] applies a new plan; [`role`] holds a role's refresher and
//! rendered documents; [`site`] routes a listener's requests to [`imds`], [`ecs`] (after
//! [`host`] and [`asked`] have read the request) and [`ops`] serves health and
//! [`metrics`]; [`daemon_socket`] answers `credential-process --daemon-socket`; [`http`]
//! is the connection handling they all run on.

pub mod asked;
pub mod daemon_socket;
pub mod ecs;
pub mod host;
pub mod http;
pub mod imds;
pub mod metrics;
pub mod ops;
pub mod reload;
pub mod role;
pub mod running;
pub mod site;

pub use role::{RoleState, ServedRole};
pub use running::{Bound, Running, start};
pub use site::Site;
