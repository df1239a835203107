//! Builders for the messages tests send most.

use wamp_proto::{Dict, Message, Payload, Value};

/// `{"<role>": {"features": {}}, ...}` for the given role names.
pub fn roles(names: &[&str]) -> Dict {
    names
        .iter()
        .map(|name| {
            let mut role = Dict::new();
            role.insert("features".into(), Value::Dict(Dict::new()));
            ((*name).to_owned(), Value::Dict(role))
        })
        .collect()
}

/// HELLO for `realm` announcing all four client roles (no features).
pub fn hello(realm: &str) -> Message {
    let mut details = Dict::new();
    details.insert(
        "roles".into(),
        Value::Dict(roles(&["caller", "callee", "publisher", "subscriber"])),
    );
    details.insert("agent".into(), Value::from("test-support"));
    hello_with(realm, details)
}

/// HELLO for `realm` with exactly these details.
pub fn hello_with(realm: &str, details: Dict) -> Message {
    Message::Hello {
        realm: realm.to_owned(),
        details,
    }
}

/// WELCOME for `session` announcing broker and dealer (no features).
pub fn welcome(session: u64) -> Message {
    let mut details = Dict::new();
    details.insert("roles".into(), Value::Dict(roles(&["broker", "dealer"])));
    details.insert("agent".into(), Value::from("test-support"));
    Message::Welcome { session, details }
}

/// CALL with positional arguments.
pub fn call(request: u64, procedure: &str, args: Vec<Value>) -> Message {
    Message::Call {
        request,
        options: Dict::new(),
        procedure: procedure.to_owned(),
        payload: Payload::from_args(args),
    }
}

/// RESULT with positional arguments.
pub fn result(request: u64, args: Vec<Value>) -> Message {
    Message::Result {
        request,
        details: Dict::new(),
        payload: Payload::from_args(args),
    }
}

/// PUBLISH with positional arguments and options.
pub fn publish(request: u64, topic: &str, args: Vec<Value>, options: Dict) -> Message {
    Message::Publish {
        request,
        options,
        topic: topic.to_owned(),
        payload: Payload::from_args(args),
    }
}

/// SUBSCRIBE with default options.
pub fn subscribe(request: u64, topic: &str) -> Message {
    Message::Subscribe {
        request,
        options: Dict::new(),
        topic: topic.to_owned(),
    }
}

/// REGISTER with default options.
pub fn register(request: u64, procedure: &str) -> Message {
    Message::Register {
        request,
        options: Dict::new(),
        procedure: procedure.to_owned(),
    }
}

/// YIELD with positional arguments.
pub fn yield_args(request: u64, args: Vec<Value>) -> Message {
    Message::Yield {
        request,
        options: Dict::new(),
        payload: Payload::from_args(args),
    }
}
