//! Micro-benchmarks of URI validation and pattern matching (run on demand:
//! `cargo bench -p wamp-proto --bench uri`).
//!
//! The router validates every topic and procedure URI it receives and, for
//! prefix and wildcard subscriptions or registrations, matches URIs against
//! patterns. These cases use realistic Autobahn-style URIs of 4 to 6
//! components:
//!
//! * `is_valid_uri/{loose,strict}/…`: a valid URI (the full scan) and one
//!   rejected at its last component (a space under loose, an upper-case letter
//!   under strict);
//! * `prefix_matches/{hit,miss}`;
//! * `wildcard_matches/{hit,miss_last,miss_first,miss_len}`: a match, a
//!   mismatch found at the last component, one found at the first, and a
//!   component-count mismatch.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use wamp_proto::uri::{is_valid_uri, prefix_matches, wildcard_matches, UriRule};

const URI: &str = "com.example.sensors.building_3.floor_2.temperature";
const BAD_LOOSE: &str = "com.example.sensors.building_3.floor_2.temper ature";
const BAD_STRICT: &str = "com.example.sensors.building_3.floor_2.Temperature";

fn bench_valid(c: &mut Criterion) {
    let mut g = c.benchmark_group("is_valid_uri");
    for (rule, name, bad) in [
        (UriRule::Loose, "loose", BAD_LOOSE),
        (UriRule::Strict, "strict", BAD_STRICT),
    ] {
        g.bench_function(format!("{name}/valid"), |b| {
            b.iter(|| is_valid_uri(black_box(URI), rule))
        });
        g.bench_function(format!("{name}/invalid"), |b| {
            b.iter(|| is_valid_uri(black_box(bad), rule))
        });
    }
    g.finish();
}

fn bench_prefix(c: &mut Criterion) {
    let mut g = c.benchmark_group("prefix_matches");
    g.bench_function("hit", |b| {
        b.iter(|| prefix_matches(black_box("com.example.sensors."), black_box(URI)))
    });
    g.bench_function("miss", |b| {
        b.iter(|| prefix_matches(black_box("com.example.actuators."), black_box(URI)))
    });
    g.finish();
}

fn bench_wildcard(c: &mut Criterion) {
    let mut g = c.benchmark_group("wildcard_matches");
    let cases = [
        ("hit", "com.example.sensors..floor_2.temperature"),
        ("miss_last", "com.example.sensors..floor_2.humidity"),
        ("miss_first", "org.example.sensors..floor_2.temperature"),
        ("miss_len", "com.example.sensors..temperature"),
    ];
    for (name, pattern) in cases {
        g.bench_function(name, |b| {
            b.iter(|| wildcard_matches(black_box(pattern), black_box(URI)))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

fn main() {
    let mut c = config().configure_from_args();
    bench_valid(&mut c);
    bench_prefix(&mut c);
    bench_wildcard(&mut c);
    c.final_summary();
}
