//! Progress of long steps (`join`, `uninstall`, `verify`, `benchmark`): on
//! a terminal, each step's line is printed and, while nothing new comes, a
//! spinner with the seconds waited sits below it; otherwise (a pipe, a log
//! file, `TERM=dumb`) just the lines, exactly as they come.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// Silence shorter than this shows no spinner (most steps are quick).
const QUIET: Duration = Duration::from_millis(400);
const TICK: Duration = Duration::from_millis(100);
/// Erases the spinner's line.
const CLEAR: &str = "\r\x1b[2K";

struct State {
    since: Instant,
    spinner_shown: bool,
    done: bool,
}

/// The state and the condition the spinner thread waits on.
type Shared = Arc<(Mutex<State>, Condvar)>;

/// Where a command's progress lines go (stderr).
pub struct Progress {
    indent: &'static str,
    live: Option<(Shared, JoinHandle<()>)>,
}

impl Progress {
    /// Progress lines prefixed with `indent`; a spinner only when stderr
    /// is a terminal.
    pub fn new(indent: &'static str) -> Progress {
        let terminal =
            std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb");
        let live = terminal.then(|| {
            let shared: Shared = Arc::new((
                Mutex::new(State {
                    since: Instant::now(),
                    spinner_shown: false,
                    done: false,
                }),
                Condvar::new(),
            ));
            let ticker = shared.clone();
            (shared, std::thread::spawn(move || spin(&ticker)))
        });
        Progress { indent, live }
    }

    /// Prints one step's line.
    pub fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        match &self.live {
            None => {
                let _ = writeln!(err, "{}{text}", self.indent);
            }
            Some((shared, _)) => {
                let mut s = lock(&shared.0);
                if s.spinner_shown {
                    let _ = write!(err, "{CLEAR}");
                    s.spinner_shown = false;
                }
                let _ = writeln!(err, "{}{text}", self.indent);
                s.since = Instant::now();
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some((shared, handle)) = self.live.take() {
            lock(&shared.0).done = true;
            shared.1.notify_all();
            let _ = handle.join();
        }
    }
}

/// A poisoned lock only means another thread panicked mid-print: the state
/// (a time and two flags) is still usable.
fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Redraws the spinner every tick until done; erases it at the end.
fn spin(shared: &(Mutex<State>, Condvar)) {
    let mut frame = 0;
    let mut s = lock(&shared.0);
    loop {
        s = match shared.1.wait_timeout(s, TICK) {
            Ok((guard, _)) => guard,
            Err(p) => p.into_inner().0,
        };
        let mut err = std::io::stderr().lock();
        if s.done {
            if s.spinner_shown {
                let _ = write!(err, "{CLEAR}");
                let _ = err.flush();
            }
            return;
        }
        let waited = s.since.elapsed();
        if waited >= QUIET {
            frame = (frame + 1) % FRAMES.len();
            let _ = write!(err, "{CLEAR}{} {}s", FRAMES[frame], waited.as_secs());
            let _ = err.flush();
            s.spinner_shown = true;
        }
    }
}
