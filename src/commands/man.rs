//! `fabrik man`: the manual page, generated from the command line's clap tree. One page holds
//! every subcommand (each with its usage, arguments and flags), so `fabrik man > fabrik.1`
//! installs the whole manual; generating it on request rather than at build time keeps the
//! build free of a build script.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::Error;

pub fn run() -> Result<i32, Error> {
    let command = Cli::command();
    let mut page = Vec::new();
    let io = |e| Error::io("writing the manual page", e);
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(&mut page).map_err(io)?;
    man.render_name_section(&mut page).map_err(io)?;
    man.render_synopsis_section(&mut page).map_err(io)?;
    man.render_description_section(&mut page).map_err(io)?;
    man.render_options_section(&mut page).map_err(io)?;
    man.render_subcommands_section(&mut page).map_err(io)?;
    // Each subcommand's own usage and flags, as a section of the one page.
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        subcommand_section(&mut page, command.get_name(), sub).map_err(io)?;
    }
    man.render_version_section(&mut page).map_err(io)?;
    out!("{}", title_first(&String::from_utf8_lossy(&page)));
    Ok(0)
}

/// clap_mangen defines the apostrophe string (`Aq`) before every section it renders; one
/// definition, after the `.TH` line, serves the whole page, and a page must open with `.TH`
/// for `man` and `whatis` to read its title.
fn title_first(page: &str) -> String {
    const DEFINE: [&str; 2] = [".ie \\n(.g .ds Aq \\(aq", ".el .ds Aq '"];
    let mut out = String::with_capacity(page.len());
    for line in page.lines().filter(|line| !DEFINE.contains(line)) {
        out.push_str(line);
        out.push('\n');
        if line.starts_with(".TH ") {
            for define in DEFINE {
                out.push_str(define);
                out.push('\n');
            }
        }
    }
    out
}

/// `fabrik NAME`'s section: its about, its synopsis and its options, then its own subcommands.
fn subcommand_section(
    page: &mut Vec<u8>,
    parent: &str,
    sub: &clap::Command,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let full = format!("{parent} {}", sub.get_name());
    // A section of the page, titled by the command line that runs it.
    writeln!(page, ".SH \"{}\"", full.to_uppercase())?;
    let sub = sub.clone().bin_name(&full);
    let man = clap_mangen::Man::new(sub.clone());
    let mut body = Vec::new();
    man.render_synopsis_section(&mut body)?;
    man.render_description_section(&mut body)?;
    man.render_options_section(&mut body)?;
    // The sections it renders would start new top-level headings; inside this one they are
    // sub-headings.
    let body = String::from_utf8_lossy(&body).replace(".SH ", ".SS ");
    page.write_all(body.as_bytes())?;
    for inner in sub.get_subcommands().filter(|s| s.get_name() != "help") {
        subcommand_section(page, &full, inner)?;
    }
    Ok(())
}
