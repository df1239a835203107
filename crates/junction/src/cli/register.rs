//! `junction register`: each invocation runs a command.
//!
//! The command gets the positional arguments appended to its argv (strings as they
//! are, anything else as JSON), `{"args": [...], "kwargs": {...}}` and a newline on
//! stdin, and the called procedure in `JUNCTION_PROCEDURE`. Its stdout, trimmed, is
//! the result: nothing gives no arguments, JSON gives that value as the one
//! argument, other text that string. A non-zero exit (or a command that cannot
//! start) answers ERROR `junction.error.command_failed` with stderr as the message
//! and `{"exit_code": N}`.

use std::process::Stdio;

use serde_json::Value as Json;
use tokio::io::AsyncWriteExt as _;
use tokio::task::JoinSet;
use wamp_client::{dict, Dict, Invocation, RegisterOptions, Value};

use super::args::RegisterArgs;
use super::output::{self, payload_object, to_json};
use super::{connect, ctrl_c, request_error, Failure};

/// The error a failing command answers with.
pub const COMMAND_FAILED: &str = "junction.error.command_failed";

pub(super) async fn run(args: RegisterArgs) -> Result<(), Failure> {
    let session = connect(&args.connect).await?;
    let options = RegisterOptions::new().match_policy(args.match_policy.policy());
    let mut registration = session
        .register_with(&args.procedure, options)
        .await
        .map_err(|e| Failure::new(request_error(&e)))?;
    output::note(&format!(
        "registered {} (match {}); stop with Ctrl-C",
        args.procedure,
        args.match_policy.policy().as_str()
    ));
    let mut running = JoinSet::new();
    let mut started = 0u64;
    let interrupt = ctrl_c();
    tokio::pin!(interrupt);
    let outcome = loop {
        if args.count.is_some_and(|n| started >= n) {
            break Ok(());
        }
        tokio::select! {
            invocation = registration.next() => match invocation {
                Some(invocation) => {
                    started += 1;
                    let command = args.command.clone();
                    let procedure = args.procedure.clone();
                    running.spawn(answer(invocation, command, procedure));
                }
                None => {
                    let why = match (registration.revocation_reason(), session.close_reason()) {
                        (Some(reason), _) => format!("registration revoked: {reason}"),
                        (None, Some(reason)) => match reason.uri() {
                            Some(uri) => format!("the router closed the session: {uri}"),
                            None => "the connection to the router was lost".to_owned(),
                        },
                        (None, None) => "the registration ended".to_owned(),
                    };
                    break Err(Failure::new(why));
                }
            },
            Some(_) = running.join_next(), if !running.is_empty() => {}
            () = &mut interrupt => break Ok(()),
        }
    };
    // Answer what has started (Ctrl-C again stops waiting).
    tokio::select! {
        () = async { while running.join_next().await.is_some() {} } => {}
        () = &mut interrupt => {}
    }
    drop(registration);
    if !session.is_closed() {
        let _ = session.leave().await;
    }
    outcome
}

/// Runs the command for one invocation and answers it.
async fn answer(invocation: Invocation, command: Vec<String>, registered: String) {
    let procedure = invocation
        .procedure()
        .map(str::to_owned)
        .unwrap_or(registered);
    let outcome = tokio::select! {
        outcome = execute(&command, &invocation.args, &invocation.kwargs, &procedure) => Some(outcome),
        _ = invocation.interrupted() => None,
    };
    let sent = match outcome {
        // Canceled by the caller: the child was killed when its future was dropped.
        None => {
            invocation
                .error(wamp_proto::error_uri::CANCELED, vec![], Dict::new())
                .await
        }
        Some(Ok(result)) => invocation.yield_result(result, Dict::new()).await,
        Some(Err((message, code))) => {
            output::note(&format!("{procedure}: {}", output::one_line(&message)));
            let kwargs = match code {
                Some(code) => dict! {"exit_code" => code},
                None => Dict::new(),
            };
            invocation
                .error(COMMAND_FAILED, vec![Value::Str(message)], kwargs)
                .await
        }
    };
    if let Err(e) = sent {
        output::note(&format!("{procedure}: cannot answer: {e}"));
    }
}

/// Runs the command: the result arguments, or the error message and exit code.
async fn execute(
    command: &[String],
    args: &[Value],
    kwargs: &Dict,
    procedure: &str,
) -> Result<Vec<Value>, (String, Option<i64>)> {
    let Some((program, fixed)) = command.split_first() else {
        return Err(("no command given".to_owned(), None));
    };
    let argv = args.iter().map(|a| match a {
        Value::Str(s) => s.clone(),
        other => to_json(other).to_string(),
    });
    let mut child = tokio::process::Command::new(program)
        .args(fixed)
        .args(argv)
        .env("JUNCTION_PROCEDURE", procedure)
        // The command needs no credentials of ours (nor should it see them).
        .env_remove("JUNCTION_TICKET")
        .env_remove("JUNCTION_SECRET")
        .env_remove("JUNCTION_PRIVATE_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| (format!("cannot run {program:?}: {e}"), None))?;
    if let Some(mut stdin) = child.stdin.take() {
        let mut input = Json::Object(payload_object(args, kwargs)).to_string();
        input.push('\n');
        // The command may not read its input: a closed pipe is no error.
        tokio::spawn(async move {
            let _ = stdin.write_all(input.as_bytes()).await;
        });
    }
    let done = child
        .wait_with_output()
        .await
        .map_err(|e| (format!("{program:?} failed: {e}"), None))?;
    if !done.status.success() {
        let stderr = String::from_utf8_lossy(&done.stderr).trim().to_owned();
        let code = done.status.code().map(i64::from);
        let message = if stderr.is_empty() {
            match code {
                Some(code) => format!("{program} exited with status {code}"),
                None => format!("{program} was killed by a signal"),
            }
        } else {
            stderr
        };
        return Err((message, code));
    }
    if !done.stderr.is_empty() {
        // A command's diagnostics on success are passed on, for debugging.
        let mut err = std::io::stderr().lock();
        let _ = std::io::Write::write_all(&mut err, &done.stderr);
    }
    Ok(result_of(&String::from_utf8_lossy(&done.stdout)))
}

/// The command's stdout as result arguments.
fn result_of(stdout: &str) -> Vec<Value> {
    let text = stdout.trim();
    if text.is_empty() {
        return vec![];
    }
    match serde_json::from_str::<Json>(text) {
        Ok(json) => vec![Value::from(json)],
        Err(_) => vec![Value::Str(text.to_owned())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_to_result() {
        assert_eq!(result_of(""), Vec::<Value>::new());
        assert_eq!(result_of("  \n"), Vec::<Value>::new());
        assert_eq!(
            result_of("[1,2]\n"),
            vec![Value::List(vec![Value::Int(1), Value::Int(2)])]
        );
        assert_eq!(
            result_of("hello world\n"),
            vec![Value::Str("hello world".into())]
        );
        assert_eq!(result_of("42"), vec![Value::Int(42)]);
    }

    #[cfg(unix)]
    #[test]
    fn the_command_does_not_inherit_credentials() {
        std::env::set_var("JUNCTION_SECRET", "s3cret-for-the-router");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let command = [
            "sh".to_owned(),
            "-c".to_owned(),
            "printf '%s' \"${JUNCTION_SECRET-unset} $JUNCTION_PROCEDURE\"".to_owned(),
        ];
        let out = runtime.block_on(execute(&command, &[], &Dict::new(), "com.example.p"));
        std::env::remove_var("JUNCTION_SECRET");
        assert_eq!(out, Ok(vec![Value::Str("unset com.example.p".into())]));
    }
}
