//! Micro-benchmarks of the message codecs (run on demand: `cargo bench -p wamp-proto --bench codec`).
//!
//! Every benchmark runs for JSON, MessagePack and CBOR, with two payload shapes:
//!
//! * `arg64`: `Arguments` is a list holding one 64-byte string;
//! * `kw1k`: an empty `Arguments` list and an `ArgumentsKw` dict of about 1 KiB
//!   (strings, numbers, a boolean, a list and a nested dict).
//!
//! Groups:
//!
//! * `decode`: bytes → [`Message`] for CALL, RESULT, YIELD, PUBLISH and EVENT. The
//!   payload stays as a slice of the input, so this is mostly the envelope.
//! * `encode_forward`: [`Message`] → bytes where the payload came off the wire in the
//!   same serializer (what the router does when it forwards: the payload bytes are copied).
//! * `encode_values`: [`Message`] → bytes with a payload freshly built from values
//!   (what a client does; the payload is encoded value by value).
//! * `transcode`: a payload received in one serializer re-encoded for a receiver that
//!   uses another (`Payload::encoded`), e.g. `json_to_msgpack`.
//!
//! Throughput is reported in bytes of the encoded message (or payload, for `transcode`).
//! Runs are shortened (1 s warm-up, 2 s measurement); override on the command line,
//! e.g. `cargo bench -p wamp-proto --bench codec -- --measurement-time 5 decode/json`.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput};
use wamp_proto::{decode, dict, encode, Dict, Message, Payload, Serializer, Value};

/// A 64-byte ASCII string.
fn string64() -> String {
    let s: String = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
        .chars()
        .collect();
    assert_eq!(s.len(), 64);
    s
}

/// A keyword-argument dict of about 1 KiB once encoded (an EVENT carrying it is
/// 968 bytes in JSON, 881 in MessagePack, 880 in CBOR).
fn kwargs_1k() -> Dict {
    let mut d = Dict::new();
    for i in 0..12 {
        d.insert(
            format!("attribute_{i:02}"),
            Value::from(format!(
                "value number {i:02} of a representative record field"
            )),
        );
    }
    d.insert("count".into(), Value::from(1_234_567_i64));
    d.insert("ratio".into(), Value::from(0.618_033_988_749_895_f64));
    d.insert("active".into(), Value::from(true));
    d.insert(
        "tags".into(),
        Value::List(vec!["alpha".into(), "beta".into(), "gamma".into()]),
    );
    d.insert(
        "position".into(),
        Value::Dict(dict! { "x" => 12.5, "y" => -3.25, "z" => 100.0 }),
    );
    d
}

#[derive(Clone, Copy)]
enum Shape {
    Arg64,
    Kw1k,
}

impl Shape {
    const ALL: [Shape; 2] = [Shape::Arg64, Shape::Kw1k];

    fn name(self) -> &'static str {
        match self {
            Shape::Arg64 => "arg64",
            Shape::Kw1k => "kw1k",
        }
    }

    fn payload(self) -> Payload {
        match self {
            Shape::Arg64 => Payload::from_args(vec![Value::from(string64())]),
            Shape::Kw1k => Payload::new(Vec::new(), kwargs_1k()),
        }
    }
}

/// The message kinds measured, in a realistic form (small request ids, 53-bit
/// global ids, Autobahn-style URIs).
const KINDS: [&str; 5] = ["call", "result", "yield", "publish", "event"];

fn message(kind: &str, payload: Payload) -> Message {
    match kind {
        "call" => Message::Call {
            request: 4711,
            options: Dict::new(),
            procedure: "com.example.inventory.get_item_status".into(),
            payload,
        },
        "result" => Message::Result {
            request: 4711,
            details: Dict::new(),
            payload,
        },
        "yield" => Message::Yield {
            request: 8_129_003_417_650_112,
            options: Dict::new(),
            payload,
        },
        "publish" => Message::Publish {
            request: 239_714,
            options: dict! { "acknowledge" => true },
            topic: "com.example.sensors.building_3.temperature".into(),
            payload,
        },
        "event" => Message::Event {
            subscription: 5_512_315_355_009_134,
            publication: 4_429_313_566_021_937,
            details: Dict::new(),
            payload,
        },
        other => unreachable!("unknown message kind {other}"),
    }
}

/// The message encoded from freshly built values.
fn wire(kind: &str, shape: Shape, ser: Serializer) -> Bytes {
    encode(&message(kind, shape.payload()), ser).expect("encode")
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for ser in Serializer::ALL {
        for kind in KINDS {
            for shape in Shape::ALL {
                let bytes = wire(kind, shape, ser);
                g.throughput(Throughput::Bytes(bytes.len() as u64));
                g.bench_function(format!("{ser}/{kind}/{}", shape.name()), |b| {
                    b.iter(|| decode(ser, black_box(&bytes)).expect("decode"))
                });
            }
        }
    }
    g.finish();
}

fn bench_encode_forward(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_forward");
    for ser in Serializer::ALL {
        for kind in KINDS {
            for shape in Shape::ALL {
                let bytes = wire(kind, shape, ser);
                let msg = decode(ser, &bytes).expect("decode");
                g.throughput(Throughput::Bytes(bytes.len() as u64));
                g.bench_function(format!("{ser}/{kind}/{}", shape.name()), |b| {
                    b.iter(|| encode(black_box(&msg), ser).expect("encode"))
                });
            }
        }
    }
    g.finish();
}

fn bench_encode_values(c: &mut Criterion) {
    // A payload caches its encodings, so each iteration gets a new one (built in the
    // untimed setup, and dropped outside the timing too).
    let mut g = c.benchmark_group("encode_values");
    for ser in Serializer::ALL {
        for kind in ["call", "event"] {
            for shape in Shape::ALL {
                let len = wire(kind, shape, ser).len();
                g.throughput(Throughput::Bytes(len as u64));
                g.bench_function(format!("{ser}/{kind}/{}", shape.name()), |b| {
                    b.iter_batched_ref(
                        || message(kind, shape.payload()),
                        |msg| encode(msg, ser).expect("encode"),
                        BatchSize::SmallInput,
                    )
                });
            }
        }
    }
    g.finish();
}

fn bench_transcode(c: &mut Criterion) {
    // An EVENT's payload as received on the wire, re-encoded for another serializer.
    // Decoding the message (cheap, the payload is not parsed) happens in the untimed
    // setup so every iteration starts with an empty transcoding cache.
    let mut g = c.benchmark_group("transcode");
    let pairs = [
        (Serializer::Json, Serializer::MsgPack),
        (Serializer::Json, Serializer::Cbor),
        (Serializer::MsgPack, Serializer::Json),
        (Serializer::MsgPack, Serializer::Cbor),
    ];
    for (from, to) in pairs {
        for shape in Shape::ALL {
            let bytes = wire("event", shape, from);
            let payload_len = payload_of(&decode(from, &bytes).expect("decode"))
                .encoded(from)
                .expect("encoded")
                .0
                .len();
            g.throughput(Throughput::Bytes(payload_len as u64));
            g.bench_function(format!("{from}_to_{to}/{}", shape.name()), |b| {
                b.iter_batched_ref(
                    || payload_of(&decode(from, &bytes).expect("decode")),
                    |payload| payload.encoded(to).expect("transcode"),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

fn payload_of(msg: &Message) -> Payload {
    match msg {
        Message::Event { payload, .. } => payload.clone(),
        other => unreachable!("not an EVENT: {other:?}"),
    }
}

/// Prints the encoded sizes once, so the report can quote them.
fn print_sizes(_: &mut Criterion) {
    for shape in Shape::ALL {
        let sizes: Vec<String> = Serializer::ALL
            .iter()
            .map(|&ser| format!("{ser} {} B", wire("event", shape, ser).len()))
            .collect();
        eprintln!("EVENT/{} encoded size: {}", shape.name(), sizes.join(", "));
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

fn main() {
    let mut c = config().configure_from_args();
    print_sizes(&mut c);
    bench_decode(&mut c);
    bench_encode_forward(&mut c);
    bench_encode_values(&mut c);
    bench_transcode(&mut c);
    c.final_summary();
}
