//! Junction, the WAMP router: configuration, transports and the server that binds
//! them to the routing core in `wamp-router`.

pub mod auth_config;
pub mod banner;
pub mod bench;
pub mod cli;
pub mod config;
pub mod keygen;
pub mod server;
pub mod tls;
pub mod transport;

pub use config::Config;
pub use server::{Endpoints, Server};
