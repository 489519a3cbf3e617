//! The `command` gate: a program of the user's (a smoke test, a migration check) decides whether
//! a change worked, by exiting 0. It runs without a shell, from an argument list, so that a
//! value put in by a reference is one argument whatever it holds. The program gets its own
//! process group: a run that outlives the gate's time, or a Ctrl-C, ends it and whatever it
//! started. A failure shows the exit code and the end of what the program printed, with every
//! secret fabrik knows masked (src/redact.rs), since a script may echo what it was given.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Outcome, POLL};

/// How much of the program's output is kept while it runs: its end is what a report shows.
const KEEP_BYTES: usize = 64 * 1024;
/// What a failure shows of the output: its last lines, and at most this many bytes of them.
const TAIL_LINES: usize = 10;
const TAIL_BYTES: usize = 2048;
/// How long output still arriving after the program exited (from something it left running
/// with the same pipe) is waited for.
const DRAIN: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub(crate) struct CommandCheck {
    /// The program as written, then its arguments.
    pub argv: Vec<String>,
    /// Added to the environment fabrik runs in.
    pub env: Vec<(String, String)>,
    /// Where the program runs, and what a program path with a `/` is relative to.
    pub dir: PathBuf,
}

/// Arguments and `env` values may hold secrets: shown masked, the values of `env` not at all.
impl std::fmt::Debug for CommandCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("CommandCheck")
            .field("command", &self.describe())
            .field("env", &env)
            .field("dir", &self.dir)
            .finish()
    }
}

impl CommandCheck {
    /// "command ./smoke-test.sh --url https://api.example", an argument with blanks (or none)
    /// quoted, secrets masked.
    pub fn describe(&self) -> String {
        let words: Vec<String> = self
            .argv
            .iter()
            .map(|arg| {
                if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '"') {
                    format!("{arg:?}")
                } else {
                    arg.clone()
                }
            })
            .collect();
        crate::redact::redact(&format!("command {}", words.join(" "))).into_owned()
    }

    /// What can be known before the first run, so that a typo fails the gate at once instead
    /// of at its timeout: the directory exists and the program is found.
    pub fn prepare(&self) -> Result<PathBuf, String> {
        if !self.dir.is_dir() {
            return Err(masked(&format!(
                "the directory `{}` (`dir`) does not exist",
                self.dir.display()
            )));
        }
        let program = &self.argv[0];
        let found = if program.contains('/') {
            Some(self.dir.join(program)).filter(|p| p.is_file())
        } else {
            self.on_path(program)
        };
        let Some(found) = found else {
            return Err(masked(&if program.contains('/') {
                format!(
                    "the program `{program}` is not there (looked for {})",
                    self.dir.join(program).display()
                )
            } else {
                format!("the program `{program}` is not on the PATH")
            }));
        };
        if !executable(&found) {
            return Err(masked(&format!(
                "the program `{program}` is not executable ({})",
                found.display()
            )));
        }
        Ok(found)
    }

    /// The first file named `program` in the PATH the program will run with.
    fn on_path(&self, program: &str) -> Option<PathBuf> {
        let path = match self.env.iter().rev().find(|(name, _)| name == "PATH") {
            Some((_, value)) => Some(value.into()),
            None => std::env::var_os("PATH"),
        }?;
        std::env::split_paths(&path)
            .map(|dir| self.dir.join(dir).join(program))
            .find(|candidate| candidate.is_file() && executable(candidate))
    }

    /// Runs the program once: it passes by exiting 0 before `deadline`. A run still going at
    /// the deadline, or when `cancel` is set, is killed with its process group.
    pub fn attempt(&self, program: &Path, deadline: Instant, cancel: &AtomicBool) -> Outcome {
        let (child, output) = match self.spawn(program) {
            Ok(started) => started,
            Err(why) => return Outcome::Failed(masked(&why)),
        };
        let mut run = Run { child, output };
        loop {
            match run.child.try_wait() {
                Ok(Some(status)) => return run.ended(status),
                Ok(None) => {}
                Err(e) => {
                    run.kill();
                    return Outcome::Failed(masked(&format!("cannot watch the program: {e}")));
                }
            }
            if cancel.load(Ordering::Relaxed) {
                run.kill();
                return Outcome::Cancelled;
            }
            if Instant::now() >= deadline {
                run.kill();
                return Outcome::Failed(format!(
                    "still running when the gate's time ran out: killed{}",
                    run.output.tail(Instant::now() + DRAIN)
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Starts the program in a process group of its own, stdout and stderr into one pipe that
    /// a thread reads.
    fn spawn(&self, program: &Path) -> Result<(Child, Output), String> {
        use std::os::unix::process::CommandExt as _;

        let (reader, writer) =
            std::io::pipe().map_err(|e| format!("cannot make a pipe for its output: {e}"))?;
        let writer2 = writer
            .try_clone()
            .map_err(|e| format!("cannot make a pipe for its output: {e}"))?;
        let mut command = Command::new(program);
        command
            .arg0(&self.argv[0])
            .args(&self.argv[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer2)
            .process_group(0);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot run `{}`: {e}", self.argv[0]))?;
        // The command holds the pipe's write ends: dropped, the reader sees the end of the
        // output once the program (and what it started) closes them.
        drop(command);
        Ok((child, Output::read(reader)))
    }
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;

    path.metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// A program running, and what it printed so far.
struct Run {
    child: Child,
    output: Output,
}

impl Run {
    /// Kills the program's process group and reaps the program.
    fn kill(&mut self) {
        let group = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.child.wait();
    }

    fn ended(&self, status: ExitStatus) -> Outcome {
        if status.success() {
            return Outcome::Passed;
        }
        let how = exit_text(status);
        Outcome::Failed(format!("{how}{}", self.output.tail(Instant::now() + DRAIN)))
    }
}

fn exit_text(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;

    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("killed by signal {}", signal_name(signal)),
        (None, None) => format!("ended: {status}"),
    }
}

/// A signal's number with its usual name, for the signals a failing program usually dies of.
fn signal_name(number: i32) -> String {
    let name = match number {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return number.to_string(),
    };
    format!("{number} ({name})")
}

/// The program's combined output, read by a thread of its own so that a chatty program never
/// blocks on a full pipe; only the last [`KEEP_BYTES`] are kept.
struct Output {
    kept: Arc<Mutex<Vec<u8>>>,
    done: Arc<AtomicBool>,
}

impl Output {
    fn read(mut pipe: std::io::PipeReader) -> Output {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let (into, finished) = (kept.clone(), done.clone());
        let spawned = std::thread::Builder::new()
            .name("fabrik-verify-output".to_string())
            .spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n @ 1..) = pipe.read(&mut buf) {
                    let mut kept = into.lock().expect("output buffer");
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > KEEP_BYTES {
                        let cut = kept.len() - KEEP_BYTES;
                        kept.drain(..cut);
                    }
                }
                finished.store(true, Ordering::Relaxed);
            });
        if spawned.is_err() {
            done.store(true, Ordering::Relaxed);
        }
        Output { kept, done }
    }

    /// The end of the output for a failure message (see [`tail_text`]), once the pipe is
    /// closed or `until`, whichever comes first.
    fn tail(&self, until: Instant) -> String {
        while !self.done.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let kept = self.kept.lock().expect("output buffer");
        tail_text(&String::from_utf8_lossy(&kept))
    }
}

/// ", no output", or the last lines of `text` (at most [`TAIL_LINES`] and [`TAIL_BYTES`]), each
/// on a line of its own after the message's first line. Secrets are masked before anything is
/// cut, so that no part of one is left showing.
pub(crate) fn tail_text(text: &str) -> String {
    let clean = masked(text);
    let lines: Vec<String> = clean
        .lines()
        .map(|line| {
            line.trim_end()
                .chars()
                .map(|c| {
                    if c.is_control() && c != '\t' {
                        '\u{fffd}'
                    } else {
                        c
                    }
                })
                .collect()
        })
        .collect();
    let Some(last) = lines.iter().rposition(|l| !l.trim().is_empty()) else {
        return ", no output".to_string();
    };
    let first = (last + 1).saturating_sub(TAIL_LINES);
    let mut shown = lines[first..=last].join("\n");
    if shown.len() > TAIL_BYTES {
        let mut at = shown.len() - TAIL_BYTES;
        while !shown.is_char_boundary(at) {
            at += 1;
        }
        shown = format!("…{}", &shown[at..]);
    }
    shown.lines().map(|l| format!("\n    | {l}")).collect()
}

fn masked(text: &str) -> String {
    crate::redact::redact(text).into_owned()
}
