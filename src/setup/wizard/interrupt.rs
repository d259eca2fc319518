//! Ctrl-C during `setup`. Until the admin confirms, nothing is written, so an interrupt only has
//! to leave the terminal usable (a prompt may have turned echo off or hidden the cursor) and
//! exit. While the change is applied, terminal signals are ignored, by us and by the Wazuh
//! programs we run (an ignored signal stays ignored across exec), so the transaction, its checks,
//! its restart and its rollback always run to their end.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::OnceLock;

static TTY_FD: AtomicI32 = AtomicI32::new(-1);
static SAVED: OnceLock<libc::termios> = OnceLock::new();
/// Set once a change was applied, so the interrupt message does not claim "nothing changed".
static CHANGED: AtomicBool = AtomicBool::new(false);

/// Exit status after an interrupt (128 + SIGINT, as shells report it).
pub const INTERRUPTED: i32 = 130;

extern "C" fn on_interrupt(_signal: libc::c_int) {
    let fd = TTY_FD.load(Ordering::SeqCst);
    if let Some(saved) = SAVED.get() {
        // SAFETY: tcsetattr and write are async-signal-safe; `saved` is a plain value set once
        // before this handler was installed.
        unsafe {
            libc::tcsetattr(fd, libc::TCSANOW, saved);
        }
    }
    let msg: &[u8] = if CHANGED.load(Ordering::SeqCst) {
        b"\x1b[?25h\r\nsetup interrupted\r\n"
    } else {
        b"\x1b[?25h\r\nsetup interrupted: nothing was changed\r\n"
    };
    // SAFETY: write(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(INTERRUPTED);
    }
}

/// Remembers the terminal's state on `fd` and installs handlers for SIGINT, SIGQUIT, SIGHUP and
/// SIGTERM that restore it and exit with [`INTERRUPTED`].
pub fn guard_terminal(fd: i32) {
    // SAFETY: tcgetattr fills the struct it is given; handlers are installed once everything
    // they read is set.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) == 0 {
            let _ = SAVED.set(t);
            TTY_FD.store(fd, Ordering::SeqCst);
        }
        let handler = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
        for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM] {
            libc::signal(sig, handler);
        }
    }
}

/// While alive, Ctrl-C, Ctrl-\, a hang-up and SIGTERM are ignored, also by the children we
/// spawn (Wazuh's daemons set their own handlers when they start).
pub struct Uninterruptible {
    previous: Vec<(libc::c_int, libc::sighandler_t)>,
}

impl Uninterruptible {
    pub fn begin() -> Uninterruptible {
        let previous = [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM]
            .into_iter()
            // SAFETY: replacing a disposition with SIG_IGN; the old one is restored on drop.
            .map(|sig| (sig, unsafe { libc::signal(sig, libc::SIG_IGN) }))
            .collect();
        Uninterruptible { previous }
    }

    /// Files were changed: an interrupt from now on must not say otherwise.
    pub fn changed(&self) {
        CHANGED.store(true, Ordering::SeqCst);
    }
}

impl Drop for Uninterruptible {
    fn drop(&mut self) {
        for (sig, old) in self.previous.drain(..) {
            if old != libc::SIG_ERR {
                // SAFETY: restoring the disposition saved in `begin`.
                unsafe {
                    libc::signal(sig, old);
                }
            }
        }
    }
}
