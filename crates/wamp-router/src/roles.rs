//! The roles and features the router announces in WELCOME: exactly what works.

use wamp_proto::{dict, Dict};

/// `WELCOME.Details.roles`.
pub fn router_roles() -> Dict {
    dict! {
        "broker" => dict! {
            "features" => dict! {
                "publisher_exclusion" => true,
                "publisher_identification" => true,
                "subscriber_blackwhite_listing" => true,
                "pattern_based_subscription" => true,
                "event_retention" => true,
                "event_history" => true,
                "subscription_revocation" => true,
                "payload_passthru_mode" => true,
                "session_meta_api" => true,
                "subscription_meta_api" => true,
            },
        },
        "dealer" => dict! {
            "features" => dict! {
                "progressive_call_results" => true,
                "progressive_call_invocations" => true,
                "call_timeout" => true,
                "call_canceling" => true,
                "caller_identification" => true,
                "pattern_based_registration" => true,
                "shared_registration" => true,
                "registration_revocation" => true,
                "payload_passthru_mode" => true,
                "testament_meta_api" => true,
                "session_meta_api" => true,
                "registration_meta_api" => true,
            },
        },
    }
}
