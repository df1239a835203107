//! What the client subcommands print: JSON objects on stdout (pretty on a terminal,
//! one per line when piped), one-line errors on stderr.

use std::io::{IsTerminal as _, Write as _};

use serde_json::{Map, Value as Json};
use wamp_client::{Dict, Value};

/// Writes results to stdout in the shape the terminal wants.
#[derive(Debug)]
pub struct Output {
    pretty: bool,
}

impl Output {
    /// Pretty JSON if stdout is a terminal, else one compact object per line.
    pub fn detect() -> Output {
        Output {
            pretty: std::io::stdout().is_terminal(),
        }
    }

    /// Prints one object and flushes, so a reader of the pipe sees it at once.
    pub fn print(&self, object: &Map<String, Json>) -> std::io::Result<()> {
        let text = if self.pretty {
            serde_json::to_string_pretty(object)
        } else {
            serde_json::to_string(object)
        }
        .map_err(std::io::Error::other)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")?;
        out.flush()
    }
}

/// Any value as JSON (binary as `"\0"` + base64, like the JSON serializer).
pub fn to_json(value: &Value) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}

/// `{"args": [...], "kwargs": {...}}`, the shape of every result and event.
pub fn payload_object(args: &[Value], kwargs: &Dict) -> Map<String, Json> {
    let mut object = Map::new();
    object.insert(
        "args".into(),
        Json::Array(args.iter().map(to_json).collect()),
    );
    object.insert(
        "kwargs".into(),
        Json::Object(
            kwargs
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    );
    object
}

/// Text on one line: runs of whitespace holding line breaks become one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Prints `junction: error: <message>` on stderr.
pub fn error(message: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "junction: error: {}", one_line(message));
}

/// Prints `junction: <message>` on stderr (progress notes, not results).
pub fn note(message: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "junction: {message}");
}

/// Describes an ERROR: its URI, then its message (the first argument if it is a
/// string), then any other arguments and keyword arguments as JSON.
pub fn describe_wamp_error(uri: &str, args: &[Value], kwargs: &Dict) -> String {
    let mut text = uri.to_owned();
    let mut rest = args;
    if let Some(Value::Str(message)) = args.first() {
        text.push_str(": ");
        text.push_str(message);
        rest = &args[1..];
    }
    if !rest.is_empty() {
        let list = Json::Array(rest.iter().map(to_json).collect());
        text.push(' ');
        text.push_str(&list.to_string());
    }
    if !kwargs.is_empty() {
        let object: Map<String, Json> = kwargs
            .iter()
            .map(|(k, v)| (k.clone(), to_json(v)))
            .collect();
        text.push(' ');
        text.push_str(&Json::Object(object).to_string());
    }
    one_line(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wamp_client::dict;

    #[test]
    fn shapes() {
        let o = payload_object(&[Value::Int(1)], &dict! {"a" => "b"});
        assert_eq!(
            Json::Object(o).to_string(),
            r#"{"args":[1],"kwargs":{"a":"b"}}"#
        );
        assert_eq!(one_line(" a\n  b\tc \n"), "a b c");
        assert_eq!(
            describe_wamp_error(
                "x.y",
                &[Value::Str("no\nway".into()), Value::Int(2)],
                &dict! {"k" => 1}
            ),
            r#"x.y: no way [2] {"k":1}"#
        );
        assert_eq!(describe_wamp_error("x.y", &[], &Dict::new()), "x.y");
    }
}
