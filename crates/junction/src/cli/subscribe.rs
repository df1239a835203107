//! `junction subscribe`.

use serde_json::Value as Json;
use wamp_client::SubscribeOptions;

use super::args::SubscribeArgs;
use super::output::{self, payload_object, Output};
use super::{connect, ctrl_c, request_error, Failure};

pub(super) async fn run(args: SubscribeArgs) -> Result<(), Failure> {
    let out = Output::detect();
    let session = connect(&args.connect).await?;
    let options = SubscribeOptions::new().match_policy(args.match_policy.policy());
    let mut subscription = session
        .subscribe_with(&args.topic, options)
        .await
        .map_err(|e| Failure::new(request_error(&e)))?;
    output::note(&format!(
        "subscribed to {} (match {}); stop with Ctrl-C",
        args.topic,
        args.match_policy.policy().as_str()
    ));
    let mut seen = 0u64;
    let interrupt = ctrl_c();
    tokio::pin!(interrupt);
    let outcome = loop {
        if args.count.is_some_and(|n| seen >= n) {
            break Ok(());
        }
        tokio::select! {
            event = subscription.next() => match event {
                Some(event) => {
                    seen += 1;
                    let mut object = payload_object(&event.args, &event.kwargs);
                    let topic = event.topic().unwrap_or(&args.topic).to_owned();
                    object.insert("topic".into(), Json::String(topic));
                    out.print(&object)?;
                }
                None => {
                    let why = match (subscription.revocation_reason(), session.close_reason()) {
                        (Some(reason), _) => format!("subscription revoked: {reason}"),
                        (None, Some(reason)) => match reason.uri() {
                            Some(uri) => format!("the router closed the session: {uri}"),
                            None => "the connection to the router was lost".to_owned(),
                        },
                        (None, None) => "the subscription ended".to_owned(),
                    };
                    break Err(Failure::new(why));
                }
            },
            () = &mut interrupt => break Ok(()),
        }
    };
    drop(subscription);
    if !session.is_closed() {
        let _ = session.leave().await;
    }
    outcome
}
