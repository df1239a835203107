//! `junction publish`.

use serde_json::{Map, Value as Json};
use wamp_client::{Payload, PublishOptions};

use super::args::PublishArgs;
use super::output::Output;
use super::{connect, request_error, Failure};

pub(super) async fn run(args: PublishArgs) -> Result<(), Failure> {
    let (pub_args, kwargs) = args.payload.parse().map_err(Failure::new)?;
    let out = Output::detect();
    let session = connect(&args.connect).await?;
    let options = PublishOptions::new().acknowledge(args.acknowledge);
    let publication = session
        .publish_with(&args.topic, Payload::new(pub_args, kwargs), options)
        .await
        .map_err(|e| Failure::new(request_error(&e)))?;
    if let Some(id) = publication {
        let mut object = Map::new();
        object.insert("publication".into(), Json::from(id));
        out.print(&object)?;
    }
    // Leaving sends GOODBYE after the PUBLISH, so the router has it before we go.
    session
        .leave()
        .await
        .map_err(|e| Failure::new(format!("leaving the session: {}", request_error(&e))))
}
