//! `junction call`.

use serde_json::Value as Json;
use wamp_client::{CallEvent, CallOptions, CancelMode, Payload};

use super::args::CallArgs;
use super::output::{self, payload_object, Output};
use super::{connect, ctrl_c, request_error, Failure, EXIT_INTERRUPTED};

pub(super) async fn run(args: CallArgs) -> Result<(), Failure> {
    let (call_args, kwargs) = args.payload.parse().map_err(Failure::new)?;
    let out = Output::detect();
    let session = connect(&args.connect).await?;
    let mut options = CallOptions::new().receive_progress(args.progress);
    if let Some(timeout) = args.timeout {
        options = options.timeout(timeout);
    }
    let mut call = session
        .start_call(&args.procedure, Payload::new(call_args, kwargs), options)
        .await
        .map_err(|e| Failure::new(request_error(&e)))?;
    let interrupt = ctrl_c();
    tokio::pin!(interrupt);
    let outcome = loop {
        tokio::select! {
            item = call.next() => match item {
                Some(Ok(CallEvent::Progress(result))) => {
                    let mut object = payload_object(&result.args, &result.kwargs);
                    object.insert("progress".into(), Json::Bool(true));
                    out.print(&object)?;
                }
                Some(Ok(CallEvent::Final(result))) => {
                    out.print(&payload_object(&result.args, &result.kwargs))?;
                    break Ok(());
                }
                Some(Err(e)) => break Err(Failure::new(request_error(&e))),
                None => break Err(Failure::new(request_error(&wamp_client::Error::Closed))),
            },
            () = &mut interrupt => {
                let message = match call.cancel(CancelMode::KillNoWait).await {
                    Ok(()) => "interrupted: call canceled".to_owned(),
                    Err(e) => format!("interrupted: cannot cancel the call ({e})"),
                };
                break Err(Failure::with_code(message, EXIT_INTERRUPTED));
            }
        }
    };
    drop(call);
    if let Err(e) = session.leave().await {
        if outcome.is_ok() {
            output::note(&format!("leaving the session: {}", request_error(&e)));
        }
    }
    outcome
}
