//! The waits of a run as people see them while they last: a gate retrying, a deployment in
//! progress, a `Retry-After`, a lock, a monitor paused. Whoever waits announces it through
//! `fabrik_provider::wait` (providers and the engine alike); this module reads those waits from
//! a thread of its own and shows each one that lasts longer than a second, as one line naming
//! whose it is, what it waits for, the last answer seen and the time spent (and allowed):
//! `api: gate http https://…/health: expected status 200, got 502 Bad Gateway, 12s of 2m`.
//!
//! On a terminal (stderr) the line is live, redrawn in place and cleared when the wait ends;
//! the lines printed meanwhile ([`print`]) go above it. Elsewhere (pipes, CI logs) a plain
//! line is printed when the wait has lasted a second and again every 10 seconds, with no
//! control characters. `FABRIK_PROGRESS_INTERVAL_MS` changes those 10 seconds (`0`: no plain
//! lines at all); it exists for fabrik's own tests, which cannot wait that long and whose
//! other snapshots must not depend on how loaded the machine is (tests/it/harness.rs).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use fabrik_provider::wait::{Waiting, waiting};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A wait shorter than this is not worth a word.
const SHOWN_AFTER: Duration = Duration::from_secs(1);
/// How often a plain line is repeated while its wait lasts.
const PLAIN_EVERY: Duration = Duration::from_secs(10);
/// How often the waits are looked at (and a live line redrawn).
const TICK: Duration = Duration::from_millis(100);
/// The longest last answer a line shows; the rest is in the error if the wait fails.
const ANSWER_CHARS: usize = 120;

/// The live display while one is drawn, for [`print`].
static LIVE: Mutex<Option<Live>> = Mutex::new(None);

/// The live lines on a terminal, one per wait shown.
struct Live {
    lines: MultiProgress,
    style: ProgressStyle,
    bars: BTreeMap<u64, ProgressBar>,
}

impl Live {
    /// Redraws the waits going on, and clears those that ended.
    fn sync(&mut self) {
        let now = shown_now();
        let lines = &self.lines;
        self.bars.retain(|id, bar| {
            let going = now.iter().any(|w| w.id == *id);
            if !going {
                bar.finish_and_clear();
                lines.remove(bar);
            }
            going
        });
        // Two columns of indent and two of spinner.
        let width = usize::from(console::Term::stderr().size().1).saturating_sub(4);
        for wait in &now {
            let bar = self.bars.entry(wait.id).or_insert_with(|| {
                lines.add(ProgressBar::new_spinner().with_style(self.style.clone()))
            });
            bar.set_message(line_within(wait, width));
            bar.tick();
        }
    }
}

/// Shows the run's waits until dropped.
pub struct Shown {
    /// Dropped to stop the thread at once (not at its next tick: every command ends here).
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts showing the waits of this process: live when stderr is a terminal, in plain lines
/// otherwise.
pub fn show() -> Shown {
    let (stop, stopped) = channel();
    let live =
        std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
    let every = std::env::var("FABRIK_PROGRESS_INTERVAL_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(PLAIN_EVERY, Duration::from_millis);
    let thread = std::thread::Builder::new()
        .name("fabrik-waits".to_string())
        .spawn(move || {
            if live {
                live_lines(&stopped);
            } else if !every.is_zero() {
                plain_lines(&stopped, every);
            }
        })
        .ok();
    Shown {
        stop: Some(stop),
        thread,
    }
}

impl Drop for Shown {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `print` (which writes whole lines) with the live lines out of the way, so they stay
/// below what is printed; a wait that ended before is cleared first, not drawn again. Every
/// `out!`/`outln!` goes through here; `print` must not print through it again.
pub fn print(print: impl FnOnce()) {
    let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    match live.as_mut() {
        Some(live) => {
            live.sync();
            live.lines.suspend(print);
        }
        None => print(),
    }
}

/// The line a wait is shown as (without styling or the mark before it).
pub fn line(wait: &Waiting) -> String {
    line_within(wait, usize::MAX)
}

/// [`line`] in at most `width` characters where it can be: the answer is cut first, so that
/// whose wait it is and the time spent stay in view on a narrow terminal.
fn line_within(wait: &Waiting, width: usize) -> String {
    let mut head = String::new();
    if let Some(subject) = &wait.subject {
        head.push_str(subject);
        head.push_str(": ");
    }
    head.push_str(&wait.what);
    let mut tail = format!(", {}", seconds(wait.elapsed));
    if let Some(limit) = wait.limit {
        tail.push_str(" of ");
        tail.push_str(&seconds(limit));
    }
    let room = width.saturating_sub(head.chars().count() + tail.chars().count() + 2);
    let answer = wait
        .last
        .as_deref()
        .filter(|_| room >= 12)
        .map(|a| brief(a, room.min(ANSWER_CHARS)))
        .filter(|a| !a.is_empty());
    let line = match answer {
        Some(answer) => format!("{head}: {answer}{tail}"),
        None => format!("{head}{tail}"),
    };
    crate::redact::redact(&line).into_owned()
}

/// The first line of an answer, cut to `chars` characters.
fn brief(answer: &str, chars: usize) -> String {
    let first = answer.lines().next().unwrap_or("").trim();
    match first.char_indices().nth(chars.saturating_sub(1)) {
        Some((at, _)) if first.chars().count() > chars => format!("{}…", &first[..at]),
        _ => first.to_string(),
    }
}

/// Whole seconds, as `12s` or `2m 5s`.
fn seconds(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// The waits worth showing now.
fn shown_now() -> Vec<Waiting> {
    waiting()
        .into_iter()
        .filter(|w| w.elapsed >= SHOWN_AFTER)
        .collect()
}

/// Waits one [`TICK`]; false once the display is to stop.
fn ticked(stopped: &Receiver<()>) -> bool {
    matches!(stopped.recv_timeout(TICK), Err(RecvTimeoutError::Timeout))
}

fn plain_lines(stopped: &Receiver<()>, every: Duration) {
    // When each wait shown was last printed, by its elapsed time then.
    let mut printed: BTreeMap<u64, Duration> = BTreeMap::new();
    while ticked(stopped) {
        let now = shown_now();
        printed.retain(|id, _| now.iter().any(|w| w.id == *id));
        let mut text = String::new();
        for wait in &now {
            let due = printed
                .get(&wait.id)
                .is_none_or(|at| wait.elapsed.saturating_sub(*at) >= every);
            if due {
                printed.insert(wait.id, wait.elapsed);
                text.push_str(&format!("  … {}\n", line(wait)));
            }
        }
        if !text.is_empty() {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }
}

fn live_lines(stopped: &Receiver<()>) {
    let style = ProgressStyle::with_template("  {spinner} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    *LIVE.lock().unwrap_or_else(PoisonError::into_inner) = Some(Live {
        lines: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
        style,
        bars: BTreeMap::new(),
    });
    while ticked(stopped) {
        if let Some(live) = LIVE.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            live.sync();
        }
    }
    if let Some(live) = LIVE.lock().unwrap_or_else(PoisonError::into_inner).take() {
        for bar in live.bars.values() {
            bar.finish_and_clear();
            live.lines.remove(bar);
        }
        let _ = live.lines.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(subject: Option<&str>, last: Option<&str>, secs: u64, limit: Option<u64>) -> Waiting {
        Waiting {
            id: 1,
            subject: subject.map(str::to_string),
            what: "gate http https://api.example/health".to_string(),
            last: last.map(str::to_string),
            elapsed: Duration::from_millis(secs * 1000 + 730),
            limit: limit.map(Duration::from_secs),
        }
    }

    #[test]
    fn a_line_names_whose_wait_what_it_saw_and_how_long() {
        assert_eq!(
            line(&wait(
                Some("api"),
                Some("expected status 200, got 502 Bad Gateway"),
                12,
                Some(120)
            )),
            "api: gate http https://api.example/health: expected status 200, got 502 Bad \
             Gateway, 12s of 2m"
        );
        assert_eq!(
            line(&wait(None, None, 75, None)),
            "gate http https://api.example/health, 1m 15s"
        );
        assert_eq!(
            line(&wait(Some("db"), Some(""), 1, Some(30))),
            "db: gate http https://api.example/health, 1s of 30s"
        );
    }

    #[test]
    fn a_long_answer_shows_its_first_line_cut_short() {
        let long = format!("{}\nmore lines", "é".repeat(200));
        let shown = line(&wait(Some("api"), Some(&long), 3, Some(30)));
        assert_eq!(
            shown,
            format!(
                "api: gate http https://api.example/health: {}…, 3s of 30s",
                "é".repeat(ANSWER_CHARS - 1)
            )
        );
        assert!(!shown.contains('\n'));
    }

    #[test]
    fn on_a_narrow_terminal_the_answer_is_cut_and_the_time_kept() {
        let w = wait(
            Some("api"),
            Some("expected status 200, got 502 Bad Gateway"),
            12,
            Some(120),
        );
        let shown = line_within(&w, 72);
        assert_eq!(
            shown,
            "api: gate http https://api.example/health: expected status 2…, 12s of 2m"
        );
        assert_eq!(shown.chars().count(), 72);
        // No room for an answer worth reading: none is shown.
        assert_eq!(
            line_within(&w, 50),
            "api: gate http https://api.example/health, 12s of 2m"
        );
    }
}
