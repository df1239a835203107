//! The roles and features the router announces in WELCOME: exactly what works.

use wamp_proto::{dict, Dict, Value};

/// `WELCOME.Details.roles`.
pub fn router_roles() -> Dict {
    dict! {
        "broker" => dict! {
            "features" => dict! {
                "publisher_exclusion" => true,
            },
        },
        "dealer" => dict! {
            "features" => Value::Dict(Dict::new()),
        },
    }
}
