//! Threads for background work, at a lower CPU priority than the thread serving requests. On a
//! small machine a writer and the kernel work it causes would otherwise take turns on the CPU
//! with the JavaScript thread, and every turn lost is event-loop delay.

/// The nice value of background threads: under contention the JavaScript thread (nice 0) gets
/// about ten times their share of a CPU, while they still progress when the machine is busy.
const BACKGROUND_NICE: libc::c_int = 10;

/// Runs `work` on a new low-priority thread and waits for it; on the calling thread, unchanged,
/// if no thread can be started. The priority is never lowered on a thread this crate does not
/// own, such as one of Node's thread pool: without privileges it could not be raised back.
pub fn run_in_background<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    let work = std::sync::Mutex::new(Some(work));
    let take = || {
        work.lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .expect("the work runs once")
    };
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("rhfs-background".into())
            .spawn_scoped(scope, || {
                lower_this_thread_priority();
                take()()
            });
        match spawned {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => take()(),
        }
    })
}

/// Threads this one starts inherit the lowered priority.
#[cfg(target_os = "linux")]
fn lower_this_thread_priority() {
    // On Linux the nice value is per thread, and setpriority addresses a thread by its id.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
    // Failure only means the work runs at normal priority.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, BACKGROUND_NICE) };
}

#[cfg(not(target_os = "linux"))]
fn lower_this_thread_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_the_work_on_another_thread_at_lower_priority_and_returns_its_result() {
        let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let (caller, caller_nice) = (std::thread::current().id(), nice());
        let (worker, worker_nice) = run_in_background(|| (std::thread::current().id(), nice()));
        assert_ne!(worker, caller);
        if cfg!(target_os = "linux") {
            assert!(worker_nice >= BACKGROUND_NICE.max(caller_nice));
        }
        assert_eq!(nice(), caller_nice, "the calling thread keeps its priority");
    }
}
