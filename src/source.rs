//! Source files and diagnostics: every error about a spec points at a file, a line and a column,
//! and shows the line with a caret under the culprit.

use std::fmt::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// A position in a source file: 1-based line and column (in characters), and how many characters
/// the culprit spans (at least one caret is drawn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub line: u32,
    pub column: u32,
    pub len: u32,
}

impl Loc {
    pub fn new(line: u32, column: u32, len: u32) -> Self {
        Loc { line, column, len }
    }

    pub fn is_known(self) -> bool {
        self.line > 0
    }
}

/// A spec file's name (as the user gave it) and text.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    /// Byte offset of each line's start, computed on the first lookup.
    line_starts: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    pub fn new(path: PathBuf, text: String) -> Self {
        SourceFile {
            path,
            text,
            line_starts: std::sync::OnceLock::new(),
        }
    }

    /// The text of a 1-based line, without its line break.
    pub fn line(&self, line: u32) -> Option<&str> {
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        let start = *starts.get(line.checked_sub(1)? as usize)?;
        if start >= self.text.len() {
            return None;
        }
        let rest = &self.text[start..];
        let end = rest.find('\n').unwrap_or(rest.len());
        Some(rest[..end].trim_end_matches('\r'))
    }

    /// Where `needle` first appears on `loc`'s line at or after its column: lets a reference
    /// inside a longer string point at itself rather than at the string's first character.
    pub fn refine(&self, loc: Loc, needle: &str) -> Loc {
        let Some(line) = self.line(loc.line) else {
            return loc;
        };
        let start: usize = line
            .char_indices()
            .nth(loc.column.saturating_sub(1) as usize)
            .map_or(line.len(), |(i, _)| i);
        match line[start..].find(needle) {
            Some(offset) => {
                let column = line[..start + offset].chars().count() as u32 + 1;
                Loc::new(loc.line, column, needle.chars().count() as u32)
            }
            None => loc,
        }
    }
}

/// One problem found in a spec.
#[derive(Debug, Clone, Default)]
pub struct Diagnostic {
    pub message: String,
    pub loc: Loc,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(loc: Loc, message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            loc,
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a help line only when none is there yet (no suggestion was found).
    pub fn help_if_none(self, help: impl Into<String>) -> Self {
        if self.help.is_some() {
            self
        } else {
            self.help(help)
        }
    }

    /// [`Diagnostic::help_if_none`] when there is a help to add.
    pub fn help_if_absent(self, help: Option<&str>) -> Self {
        match help {
            Some(help) => self.help_if_none(help),
            None => self,
        }
    }

    /// Adds "did you mean `x`?" when one of `candidates` is close to `wrong`.
    pub fn suggest<'a>(self, wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match closest(wrong, candidates) {
            Some(best) => self.help(format!("did you mean `{best}`?")),
            None => self,
        }
    }
}

/// The candidate closest to `wrong`, if any is close enough to be a plausible typo.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // Jaro-Winkler ranks; a small edit distance (a swapped or dropped letter) also qualifies, as
    // it matters most in short names where Jaro-Winkler scores a swap low.
    // One edit per three letters: none for names so short that any edit makes another name.
    let edits_allowed = wrong.chars().count() / 3;
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(wrong, c), c))
        .filter(|(score, c)| {
            *score >= 0.8
                || (edits_allowed > 0 && strsim::damerau_levenshtein(wrong, c) <= edits_allowed)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, c)| c)
}

/// Every problem found in one spec, rendered together.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub source: Arc<SourceFile>,
    pub items: Vec<Diagnostic>,
}

/// The most problems shown at once: past a screenful, more of them tell the reader nothing new
/// (a generated spec with one mistake repeated can hold thousands), and the count says how
/// many there are.
pub const MAX_SHOWN: usize = 50;

impl Diagnostics {
    /// Problems found by several checks, in file order, each reported once.
    pub fn sorted(source: Arc<SourceFile>, mut items: Vec<Diagnostic>) -> Self {
        // Stable: problems at one place keep the order their check found them in.
        items.sort_by_key(|d| (d.loc.line, d.loc.column));
        let mut seen = std::collections::HashSet::new();
        items.retain(|d| seen.insert((d.loc.line, d.loc.column, d.message.clone())));
        Diagnostics { source, items }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().take(MAX_SHOWN).enumerate() {
            if i > 0 {
                f.write_char('\n')?;
            }
            render(f, &self.source, d)?;
        }
        if let Some(more) = self.items.len().checked_sub(MAX_SHOWN).filter(|&n| n > 0) {
            writeln!(
                f,
                "\n… and {more} more problem{}",
                if more == 1 { "" } else { "s" }
            )?;
        }
        if self.items.len() > 1 {
            writeln!(
                f,
                "\n{} errors in {}",
                self.items.len(),
                self.source.path.display()
            )?;
        }
        Ok(())
    }
}

fn render(f: &mut fmt::Formatter<'_>, source: &SourceFile, d: &Diagnostic) -> fmt::Result {
    writeln!(f, "error: {}", d.message)?;
    let path = source.path.display();
    let number = d.loc.line.to_string();
    let pad = " ".repeat(number.len());
    if d.loc.is_known() {
        writeln!(f, "{pad} --> {path}:{}:{}", d.loc.line, d.loc.column)?;
        if let Some(line) = source.line(d.loc.line) {
            // Tabs would misalign the caret; show them as one space each.
            let shown: String = line
                .chars()
                .map(|c| if c == '\t' { ' ' } else { c })
                .collect();
            let shown = truncate_line(&shown, d.loc.column as usize);
            writeln!(f, "{pad} |")?;
            writeln!(f, "{number} | {}", shown.trim_end())?;
            let caret_at = d.loc.column.saturating_sub(1) as usize;
            let carets = d.loc.len.max(1) as usize;
            writeln!(f, "{pad} | {}{}", " ".repeat(caret_at), "^".repeat(carets))?;
        }
    } else {
        writeln!(f, "{pad} --> {path}")?;
    }
    if let Some(help) = &d.help {
        writeln!(f, "{pad} = help: {help}")?;
    }
    Ok(())
}

/// Very long lines (a generated spec, a base64 blob) are cut after the column of interest.
fn truncate_line(line: &str, column: usize) -> String {
    const KEEP_AFTER: usize = 80;
    let limit = column + KEEP_AFTER;
    if line.chars().count() <= limit {
        line.to_string()
    } else {
        let mut cut: String = line.chars().take(limit).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names_a_plausible_typo_only() {
        let fields = ["path", "content", "mode"];
        assert_eq!(closest("contnt", fields), Some("content"));
        assert_eq!(closest("pth", fields), Some("path"));
        assert_eq!(closest("zzzzzz", fields), None);
        assert_eq!(closest("mdi", ["mid", "top"]), Some("mid"));
        assert_eq!(
            closest("x", ["a", "b"]),
            None,
            "one letter is no basis for a guess"
        );
    }

    #[test]
    fn refine_points_at_the_reference_inside_a_string() {
        let source = SourceFile::new("f.yaml".into(), "a:\n  b: \"x ${c.d} y\"\n".into());
        assert_eq!(source.line(2), Some("  b: \"x ${c.d} y\""));
        assert_eq!(source.line(3), None);
        let loc = source.refine(Loc::new(2, 6, 1), "${c.d}");
        assert_eq!(loc, Loc::new(2, 9, 6));
    }
}
