//! The WAMP conformance vectors (`tests/wamp-testsuite`, copied from the spec
//! repository): every sample decodes to the expected message in JSON, MessagePack
//! and CBOR; what we write decodes back equal; validation samples are accepted or
//! refused as the vectors say.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::Value as Json;
use wamp_proto::payload::Elements;
use wamp_proto::{decode, encode, Message, Serializer, Value};

fn vector_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wamp-testsuite/singlemessage");
    let mut files = Vec::new();
    for group in ["basic", "advanced"] {
        let dir = root.join(group);
        for entry in std::fs::read_dir(&dir).expect("vector folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(
        files.len() >= 25,
        "expected the whole suite, found {}",
        files.len()
    );
    files
}

fn load(path: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Our value as JSON for comparison with the vectors' expectations.
fn json_of(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => Json::from(*f),
        Value::Str(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(to_hex(b)),
        Value::List(l) => Json::Array(l.iter().map(json_of).collect()),
        Value::Dict(d) => Json::Object(d.iter().map(|(k, v)| (k.clone(), json_of(v))).collect()),
    }
}

fn dict_json(d: &wamp_proto::Dict) -> Json {
    json_of(&Value::Dict(d.clone()))
}

/// The attributes of a decoded message under the vectors' names.
fn attributes(msg: &Message) -> serde_json::Map<String, Json> {
    let mut a = serde_json::Map::new();
    let mut put = |k: &str, v: Json| {
        a.insert(k.to_owned(), v);
    };
    put("message_type", Json::from(msg.message_type().code()));
    let payload = |p: &wamp_proto::Payload, put: &mut dyn FnMut(&str, Json)| {
        let Elements { args, kwargs } = p.elements().expect("payload decodes");
        put("payload", Json::Null);
        match args {
            Some(Value::Bytes(b)) => {
                put("payload", Json::String(to_hex(&b)));
                put("args", Json::Null);
            }
            Some(other) => put("args", json_of(&other)),
            None => put("args", Json::Null),
        }
        put("kwargs", kwargs.as_ref().map_or(Json::Null, dict_json));
    };
    match msg {
        Message::Hello { realm, details } => {
            put("realm", Json::from(realm.as_str()));
            put(
                "roles",
                json_of(details.get("roles").unwrap_or(&Value::Null)),
            );
        }
        Message::Welcome { session, details } => {
            put("session_id", Json::from(*session));
            put(
                "roles",
                json_of(details.get("roles").unwrap_or(&Value::Null)),
            );
        }
        Message::Abort {
            details, reason, ..
        }
        | Message::Goodbye { details, reason } => {
            put("details", dict_json(details));
            put("reason", Json::from(reason.as_str()));
        }
        Message::Challenge { method, extra } => {
            put("method", Json::from(method.as_str()));
            put("extra", dict_json(extra));
        }
        Message::Authenticate { signature, extra } => {
            put("signature", Json::from(signature.as_str()));
            put("extra", dict_json(extra));
        }
        Message::Error {
            request_type,
            request,
            details,
            error,
            payload: p,
        } => {
            put("request_type", Json::from(request_type.code()));
            put("request_id", Json::from(*request));
            put("details", dict_json(details));
            put("error", Json::from(error.as_str()));
            payload(p, &mut put);
        }
        Message::Publish {
            request,
            options,
            topic,
            payload: p,
        } => {
            put("request_id", Json::from(*request));
            put("options", dict_json(options));
            put("topic", Json::from(topic.as_str()));
            payload(p, &mut put);
        }
        Message::Published {
            request,
            publication,
        } => {
            put("request_id", Json::from(*request));
            put("publication_id", Json::from(*publication));
        }
        Message::Subscribe {
            request,
            options,
            topic,
        } => {
            put("request_id", Json::from(*request));
            put("options", dict_json(options));
            put("topic", Json::from(topic.as_str()));
        }
        Message::Subscribed {
            request,
            subscription,
        } => {
            put("request_id", Json::from(*request));
            put("subscription_id", Json::from(*subscription));
        }
        Message::Unsubscribe {
            request,
            subscription,
            ..
        } => {
            put("request_id", Json::from(*request));
            put("subscription_id", Json::from(*subscription));
        }
        Message::Unsubscribed { request, .. } | Message::Unregistered { request, .. } => {
            put("request_id", Json::from(*request));
        }
        Message::Event {
            subscription,
            publication,
            details,
            payload: p,
        } => {
            put("subscription", Json::from(*subscription));
            put("publication", Json::from(*publication));
            put("details", dict_json(details));
            payload(p, &mut put);
        }
        Message::Call {
            request,
            options,
            procedure,
            payload: p,
        } => {
            put("request_id", Json::from(*request));
            put("options", dict_json(options));
            put("procedure", Json::from(procedure.as_str()));
            payload(p, &mut put);
        }
        Message::Cancel { request, options } | Message::Interrupt { request, options } => {
            put("request_id", Json::from(*request));
            put("options", dict_json(options));
        }
        Message::Result {
            request,
            details,
            payload: p,
        } => {
            put("request_id", Json::from(*request));
            put("details", dict_json(details));
            payload(p, &mut put);
        }
        Message::Yield {
            request,
            options,
            payload: p,
        } => {
            put("request_id", Json::from(*request));
            put("options", dict_json(options));
            payload(p, &mut put);
        }
        Message::Register {
            request,
            options,
            procedure,
        } => {
            put("request_id", Json::from(*request));
            put("options", dict_json(options));
            put("procedure", Json::from(procedure.as_str()));
        }
        Message::Registered {
            request,
            registration,
        } => {
            put("request_id", Json::from(*request));
            put("registration_id", Json::from(*registration));
        }
        Message::Unregister {
            request,
            registration,
            ..
        } => {
            put("request_id", Json::from(*request));
            put("registration_id", Json::from(*registration));
        }
        Message::Invocation {
            request,
            registration,
            details,
            payload: p,
        } => {
            put("request_id", Json::from(*request));
            put("registration_id", Json::from(*registration));
            put("details", dict_json(details));
            payload(p, &mut put);
        }
        Message::EventReceived { publication, .. } => {
            put("publication_id", Json::from(*publication));
        }
    }
    a
}

fn representations(sample: &Json, serializer: &str) -> Vec<Vec<u8>> {
    let Some(list) = sample["serializers"][serializer].as_array() else {
        return Vec::new();
    };
    list.iter()
        .map(|r| match (r.get("bytes_hex"), r.get("bytes")) {
            (Some(h), _) => hex(h.as_str().expect("hex string")),
            (None, Some(b)) => b.as_str().expect("bytes string").as_bytes().to_vec(),
            _ => panic!("representation without bytes"),
        })
        .collect()
}

#[test]
fn every_sample_decodes_to_its_expected_attributes_and_round_trips() {
    let mut checked = 0;
    let mut exact = 0;
    for path in vector_files() {
        let vector = load(&path);
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        for sample in vector["samples"].as_array().expect("samples") {
            if sample.get("serializers").is_none() {
                continue;
            }
            let expected = sample["expected_attributes"].as_object().expect("attrs");
            let mut decoded_per_serializer = Vec::new();
            for ser in Serializer::ALL {
                for bytes in representations(sample, ser.name()) {
                    let what = format!("{name} / {} / {ser}", sample["description"]);
                    let msg = decode(ser, &Bytes::from(bytes.clone()))
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    let got = attributes(&msg);
                    for (key, want) in expected {
                        let have = got
                            .get(key)
                            .unwrap_or_else(|| panic!("{what}: no attribute {key}"));
                        assert_eq!(have, want, "{what}: attribute {key}");
                    }
                    // What we write decodes back equal, in every serializer.
                    for out_ser in Serializer::ALL {
                        let written = encode(&msg, out_ser).expect("encode");
                        let back = decode(out_ser, &written)
                            .unwrap_or_else(|e| panic!("{what} -> {out_ser}: {e}"));
                        assert_eq!(back, msg, "{what} -> {out_ser}");
                        if out_ser == ser && written.as_ref() == bytes.as_slice() {
                            exact += 1;
                        }
                    }
                    decoded_per_serializer.push(msg);
                    checked += 1;
                }
            }
            // The same sample means the same message whichever serializer carried it.
            for pair in decoded_per_serializer.windows(2) {
                assert_eq!(pair[0], pair[1], "{name}: serializers disagree");
            }
        }
    }
    assert!(checked >= 100, "only {checked} representations checked");
    // Our encoder is canonical enough that most samples come out byte for byte.
    assert!(
        exact * 2 > checked,
        "{exact} of {checked} re-encoded byte-exact"
    );
}

#[test]
fn validation_samples_are_accepted_or_refused_as_specified() {
    let mut checked = 0;
    for path in vector_files() {
        let vector = load(&path);
        for sample in vector["samples"].as_array().expect("samples") {
            let Some(wmsg) = sample.get("wmsg") else {
                continue;
            };
            let bytes = Bytes::from(serde_json::to_vec(wmsg).expect("json"));
            for ser in Serializer::ALL {
                // Carry the same message in every serializer.
                let value = wamp_proto::codec::decode_value(Serializer::Json, &bytes).expect("v");
                let mut buf = bytes::BytesMut::new();
                wamp_proto::codec::encode_value(ser, &value, &mut buf);
                let result = decode(ser, &buf.freeze());
                match sample.get("expected_error") {
                    Some(err) => {
                        let e = result.expect_err(&format!("{wmsg} must be refused"));
                        let contains = err["contains"].as_str().unwrap_or("");
                        assert!(
                            e.to_string().contains(contains),
                            "{wmsg}: error '{e}' should mention '{contains}'"
                        );
                    }
                    None => {
                        result.unwrap_or_else(|e| panic!("{wmsg} must be accepted: {e}"));
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 60, "only {checked} validation samples");
}
