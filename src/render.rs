//! Everything fabrik shows people. The only module that styles output: colours through `console`
//! when stdout is a terminal and `NO_COLOR` is not set, plain text otherwise; multi-line values are
//! diffed line by line with `similar`. The same plan always renders to the same bytes. The
//! waits of a run (a gate retrying, a deployment in progress) are shown by [`waits`].

use std::fmt::Write;
use std::io::IsTerminal;
use std::time::Duration;

use console::Style;
use fabrik_provider::Value;

use crate::executor::{Outcome, Progress, Verb};
use crate::plan::{Action, AttributeChange, Change, OutputChange, Plan, ReplaceOrder};

mod list;
pub mod waits;

#[derive(Debug, Clone, Copy)]
pub struct Painter {
    color: bool,
}

impl Painter {
    /// Colours only for a terminal, and never with `NO_COLOR` set (to anything but empty).
    pub fn for_stdout(no_color_flag: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Painter {
            color: !no_color_flag && !no_color && std::io::stdout().is_terminal(),
        }
    }

    pub fn plain() -> Self {
        Painter { color: false }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        style.force_styling(self.color).apply_to(text).to_string()
    }

    fn green(&self, t: &str) -> String {
        self.paint(Style::new().green(), t)
    }
    fn yellow(&self, t: &str) -> String {
        self.paint(Style::new().yellow(), t)
    }
    fn red(&self, t: &str) -> String {
        self.paint(Style::new().red(), t)
    }
    fn magenta(&self, t: &str) -> String {
        self.paint(Style::new().magenta(), t)
    }
    fn bold(&self, t: &str) -> String {
        self.paint(Style::new().bold(), t)
    }
    fn dim(&self, t: &str) -> String {
        self.paint(Style::new().dim(), t)
    }

    fn symbol(&self, change: &Change) -> String {
        match (change.action, change.replace_order) {
            (Action::Create, _) => self.green("+"),
            (Action::Update, _) => self.yellow("~"),
            (Action::Replace, Some(ReplaceOrder::CreateBeforeDestroy)) => self.magenta("+/-"),
            (Action::Replace, _) => self.magenta("-/+"),
            (Action::Delete, _) => self.red("-"),
            (Action::Adopt, _) => self.green("="),
            (Action::NoOp, _) => " ".to_string(),
        }
    }

    /// The plan as people read it.
    pub fn plan(&self, plan: &Plan) -> String {
        let mut out = String::new();
        let adopting = plan.summary.adopt > 0;
        if !plan.has_changes() && !adopting {
            let _ = writeln!(
                out,
                "No changes. Stack `{}` matches the {}.",
                plan.stack,
                if plan.destroy {
                    "request: nothing to destroy"
                } else {
                    "spec"
                }
            );
            return out;
        }
        let _ = writeln!(
            out,
            "fabrik will make these changes to stack `{}`:\n",
            plan.stack
        );
        // A large plan is rendered on every core, in order.
        let shown: Vec<&Change> = plan
            .changes
            .iter()
            .filter(|c| c.action != Action::NoOp)
            .collect();
        for m in &plan.moves {
            let _ = writeln!(
                out,
                "  {} {} → {} {}\n",
                self.yellow("~>"),
                self.bold(&m.from),
                self.bold(&m.to),
                self.dim(&format!("({})", m.type_name))
            );
        }
        for part in crate::parallel::map_runs(&shown, 512, |run| {
            let mut part = String::new();
            for change in run {
                self.change(&mut part, change);
            }
            part
        }) {
            out.push_str(&part);
        }
        for pause in &plan.pauses {
            self.pause(&mut out, pause);
        }
        if !plan.outputs.is_empty() {
            self.outputs(&mut out, &plan.outputs);
        }
        if !plan.gates.is_empty() {
            let _ = writeln!(
                out,
                "{}",
                self.bold("Stack gates, once every change is made:")
            );
            self.gates(&mut out, &plan.gates);
            out.push('\n');
        }
        let s = plan.summary;
        let adopt = if adopting {
            format!("{} to adopt, ", s.adopt)
        } else {
            String::new()
        };
        let adopt = match s.moved {
            0 => adopt,
            n => format!("{n} to move, {adopt}"),
        };
        let _ = writeln!(
            out,
            "{}",
            self.bold(&format!(
                "Plan: {adopt}{} to add, {} to change, {} to destroy.",
                s.add, s.change, s.destroy
            ))
        );
        out
    }

    fn change(&self, out: &mut String, change: &Change) {
        let mut header = format!(
            "  {} {} {}",
            self.symbol(change),
            self.bold(&change.name),
            self.dim(&format!("({})", change.type_name))
        );
        if let Some(id) = &change.deposed {
            let _ = write!(header, " deposed object {id}");
        }
        if change.action == Action::Replace {
            header.push_str(match change.replace_order {
                Some(ReplaceOrder::CreateBeforeDestroy) => "  create before destroy",
                _ => "  destroy then create: this cannot be rolled back",
            });
        }
        if let Some(reason) = &change.reason {
            let _ = write!(header, "  {}", self.dim(&format!("# {reason}")));
        }
        let _ = writeln!(out, "{header}");
        if !matches!(change.action, Action::Delete | Action::Adopt) {
            let width = change
                .attributes
                .iter()
                .map(|a| a.name.len())
                .max()
                .unwrap_or(0);
            for attr in &change.attributes {
                self.attribute(out, attr, width);
            }
        }
        self.gates(out, &change.gates);
        out.push('\n');
    }

    /// The gates that run after a change, under it, as the apply's progress will name them.
    fn gates(&self, out: &mut String, gates: &[String]) {
        for gate in gates {
            let _ = writeln!(out, "    {} {gate}", self.dim("gate:"));
        }
    }

    /// An object the apply pauses while what it watches changes, after the resources.
    fn pause(&self, out: &mut String, pause: &crate::plan::Pause) {
        let (what, their) = match pause.watches.as_slice() {
            [one] => (format!("{one} changes"), "its"),
            [rest @ .., last] => (format!("{} and {last} change", rest.join(", ")), "their"),
            [] => return,
        };
        let _ = writeln!(
            out,
            "  {} {} {}: paused while {what}, resumed once {their} gates pass\n",
            self.dim("‖"),
            self.bold(&pause.name),
            self.dim(&format!("({})", pause.type_name)),
        );
    }

    /// The stack outputs that change, after the resources (Terraform's "Changes to Outputs").
    fn outputs(&self, out: &mut String, outputs: &[OutputChange]) {
        let _ = writeln!(out, "{}", self.bold("Outputs:"));
        let width = outputs.iter().map(|o| o.name.len()).max().unwrap_or(0);
        for output in outputs {
            let pad = " ".repeat(width - output.name.len());
            let shown = |v: &Value| {
                if output.sensitive || crate::secrets::is_masked(v) {
                    "(sensitive)".to_string()
                } else {
                    value(v)
                }
            };
            let after = match (&output.after, output.after_unknown) {
                (_, true) => self.dim("(known after apply)"),
                (Some(v), false) => shown(v),
                (None, false) => String::new(),
            };
            let name = &output.name;
            let line = match (output.action, &output.before) {
                (Action::Delete, Some(before)) => {
                    format!("  {} {name}{pad} = {}", self.red("-"), shown(before))
                }
                (Action::Update, _) if output.sensitive && !output.after_unknown => {
                    format!(
                        "  {} {name}{pad}: (sensitive value changed)",
                        self.yellow("~")
                    )
                }
                (Action::Update, Some(before)) if !output.sensitive => {
                    format!(
                        "  {} {name}{pad} = {} → {after}",
                        self.yellow("~"),
                        shown(before)
                    )
                }
                (Action::Update, _) => format!("  {} {name}{pad} = {after}", self.yellow("~")),
                _ => format!("  {} {name}{pad} = {after}", self.green("+")),
            };
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }

    fn attribute(&self, out: &mut String, attr: &AttributeChange, width: usize) {
        let pad = " ".repeat(width - attr.name.len());
        let masked = |v: &Option<Value>| v.as_ref().is_some_and(crate::secrets::is_masked);
        if masked(&attr.before) || masked(&attr.after) {
            let name = &attr.name;
            let line = match (&attr.before, &attr.after, attr.after_unknown) {
                (None, _, _) => format!("      {} {name}{pad} = (sensitive)", self.green("+")),
                (Some(_), None, false) => {
                    format!("      {} {name}{pad} = (sensitive)", self.red("-"))
                }
                _ => format!(
                    "      {} {name}{pad}: (sensitive value changed)",
                    self.yellow("~")
                ),
            };
            let _ = writeln!(out, "{line}");
            return;
        }
        let force = if attr.force_new {
            self.red("  # forces replacement")
        } else {
            String::new()
        };
        let after = match (&attr.after, attr.after_unknown) {
            (_, true) => Some(self.dim("(known after apply)")),
            (Some(v), false) => Some(value(v)),
            (None, false) => None,
        };
        let name = &attr.name;
        match (&attr.before, after) {
            (None, Some(after)) => {
                if let Some(Value::String(s)) = &attr.after
                    && s.contains('\n')
                {
                    let _ = writeln!(out, "      {} {name}{pad} = <<EOT", self.green("+"));
                    for line in s.lines() {
                        let _ = writeln!(out, "          {line}");
                    }
                    let _ = writeln!(out, "        EOT");
                } else {
                    let _ = writeln!(
                        out,
                        "      {} {name}{pad} = {after}{force}",
                        self.green("+")
                    );
                }
            }
            (Some(before), None) => {
                let _ = writeln!(
                    out,
                    "      {} {name}{pad} = {}",
                    self.red("-"),
                    value(before)
                );
            }
            (Some(Value::Array(before)), Some(_))
                if let Some(Value::Array(after)) = &attr.after =>
            {
                self.list_change(out, name, &force, before, after);
            }
            (Some(before), Some(after)) => {
                let multi = matches!((before, &attr.after), (Value::String(a), Some(Value::String(b))) if a.contains('\n') || b.contains('\n'));
                if multi {
                    let (Value::String(a), Some(Value::String(b))) = (before, &attr.after) else {
                        unreachable!()
                    };
                    let _ = writeln!(out, "      {} {name}:{force}", self.yellow("~"));
                    self.line_diff(out, a, b);
                } else {
                    let _ = writeln!(
                        out,
                        "      {} {name}{pad} = {} → {after}{force}",
                        self.yellow("~"),
                        value(before)
                    );
                }
            }
            (None, None) => {}
        }
    }

    /// A multi-line value, changed lines marked, with three lines of context.
    fn line_diff(&self, out: &mut String, before: &str, after: &str) {
        let diff = similar::TextDiff::from_lines(before, after);
        for (i, group) in diff.grouped_ops(3).iter().enumerate() {
            if i > 0 {
                let _ = writeln!(out, "          {}", self.dim("…"));
            }
            for op in group {
                for change in diff.iter_changes(op) {
                    let line = change.value().trim_end_matches('\n');
                    let text = match change.tag() {
                        similar::ChangeTag::Equal => format!("    {line}"),
                        similar::ChangeTag::Delete => self.red(&format!("  - {line}")),
                        similar::ChangeTag::Insert => self.green(&format!("  + {line}")),
                    };
                    let _ = writeln!(out, "        {text}");
                    if change.missing_newline() {
                        let _ = writeln!(out, "          {}", self.dim("(no newline at end)"));
                    }
                }
            }
        }
    }

    pub fn apply_summary(&self, outcome: Outcome, took: Duration) -> String {
        let adopted = match outcome.adopted {
            0 => String::new(),
            n => format!("{n} adopted, "),
        };
        let moved = match outcome.moved {
            0 => String::new(),
            n => format!("{n} moved, "),
        };
        self.bold(&format!(
            "Apply complete: {moved}{adopted}{} added, {} changed, {} destroyed in {}.",
            outcome.added,
            outcome.changed,
            outcome.destroyed,
            seconds(took)
        ))
    }

    pub fn destroy_summary(&self, outcome: Outcome, took: Duration) -> String {
        self.bold(&format!(
            "Destroy complete: {} destroyed in {}.",
            outcome.destroyed,
            seconds(took)
        ))
    }
}

/// A value as it is written in plan output: JSON, so strings are quoted and escaped.
pub fn value(v: &Value) -> String {
    serde_json::to_string(v).expect("values serialize")
}

fn seconds(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// Progress lines while applying: one per resource, as it completes, written when the
/// executor flushes.
pub struct Lines {
    painter: Painter,
    held: std::sync::Mutex<String>,
}

impl Lines {
    pub fn new(painter: Painter) -> Lines {
        Lines {
            painter,
            held: Default::default(),
        }
    }

    fn line(&self, text: std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(held, "{text}");
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.flush();
    }
}

impl Progress for Lines {
    fn flush(&self) {
        let held = std::mem::take(
            &mut *self
                .held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if !held.is_empty() {
            // Above a wait's live line, if one is drawn (`out!` sees to it).
            out!("{held}");
        }
    }

    fn done(&self, name: &str, type_name: &str, verb: Verb, took: Duration) {
        let p = &self.painter;
        let mark = match verb {
            Verb::Created => p.green("+"),
            Verb::Found => p.green("="),
            Verb::Updated => p.yellow("~"),
            Verb::Replaced => p.magenta("±"),
            Verb::Destroyed => p.red("-"),
            Verb::Moved => p.yellow("~>"),
            Verb::Unchanged => " ".to_string(),
            Verb::RolledBack | Verb::Forgotten => p.yellow("↩"),
            Verb::Released => p.red("-"),
            Verb::Paused => p.dim("‖"),
            Verb::Resumed => p.dim("▸"),
        };
        self.line(format_args!(
            "  {mark} {name} {}: {} {}",
            p.dim(&format!("({type_name})")),
            verb.as_str(),
            p.dim(&format!("[{}]", millis(took)))
        ));
    }

    fn failed(&self, name: &str, type_name: &str, what: &str, why: Option<&str>) {
        let p = &self.painter;
        let text = match why {
            Some(why) => format!("{what}: {why}"),
            None => what.to_string(),
        };
        self.line(format_args!(
            "  {} {name} {}: {}",
            p.red("✗"),
            p.dim(&format!("({type_name})")),
            p.red(&text)
        ));
    }

    fn verified(&self, subject: &str, gate: &str, took: Duration) {
        let p = &self.painter;
        self.line(format_args!(
            "  {} {subject}: verified {gate} {}",
            p.green("✓"),
            p.dim(&format!("[{}]", millis(took)))
        ));
    }

    fn rolling_back(&self) {
        self.line(format_args!(
            "{}",
            self.painter
                .yellow("Rolling back the changes this run made…")
        ));
    }
}

fn millis(d: Duration) -> String {
    if d.as_millis() >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}
