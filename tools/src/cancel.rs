//! Cancellation as a value: a flag that long-running loops poll, so Ctrl-C (or
//! SIGTERM/SIGHUP) unwinds them cleanly (emulators stopped, terminals restored)
//! instead of killing the process mid-way.
//!
//! `main` makes one with [`Cancel::on_signals`] and hands it (or clones) to the code
//! it runs; commands that need no signal handling get [`Cancel::never`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A shared cancellation flag.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag nobody sets unless [`Cancel::cancel`] is called.
    pub fn never() -> Cancel {
        Cancel::default()
    }

    /// A flag set by SIGINT, SIGTERM and SIGHUP (the handler can be installed once
    /// per process; if that fails, a warning is printed and signals act as usual).
    pub fn on_signals() -> Cancel {
        let c = Cancel::default();
        let flag = c.0.clone();
        if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
            eprintln!("warning: cannot install the Ctrl-C handler: {e}");
        }
        c
    }

    /// Whether the flag is set.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
