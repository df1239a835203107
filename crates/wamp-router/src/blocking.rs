//! Running CPU-heavy work (password hashing) without stalling the other
//! connections served by the same runtime worker.

/// Runs `f`, which may take long (a PBKDF2 or argon2 hash), and returns its result.
///
/// On a multi-threaded tokio runtime the current worker hands its other tasks to
/// another thread while `f` runs ([`tokio::task::block_in_place`]), so other
/// connections keep being served even with a single worker thread. On a
/// current-thread runtime, or outside any runtime (unit tests, the CLI), `f` runs
/// inline.
pub fn run_blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::run_blocking;

    #[test]
    fn runs_inline_outside_a_runtime() {
        assert_eq!(run_blocking(|| 6 * 7), 42);
    }

    #[test]
    fn runs_on_a_current_thread_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert_eq!(rt.block_on(async { run_blocking(|| 6 * 7) }), 42);
    }

    #[test]
    fn lets_other_tasks_run_on_a_single_worker() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let done = rt.block_on(async {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
            // Blocks its worker until the other task has run: without
            // block_in_place the single worker could never run that task.
            let blocker = tokio::spawn(async move {
                let _ = started_tx.send(());
                run_blocking(move || rx.recv_timeout(std::time::Duration::from_secs(30)).is_ok())
            });
            let other = tokio::spawn(async move {
                let _ = started_rx.await;
                let _ = tx.send(());
            });
            let _ = other.await;
            blocker.await.expect("blocker")
        });
        assert!(done, "the other task ran while the first one blocked");
    }
}
