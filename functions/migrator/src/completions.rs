//! `migrator completions SHELL` and `migrator man`: generated from the clap definition itself
//! (clap_complete, clap_mangen), so they can never list an option the parser does not take.

use std::io::Write;

use clap::CommandFactory;

/// The shells clap_complete writes for.
pub type Shell = clap_complete::Shell;

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: Shell) -> std::io::Result<()> {
    quiet_broken_pipe(write_completions(shell))
}

/// Writes the man page to stdout.
pub fn man() -> std::io::Result<()> {
    quiet_broken_pipe(write_man())
}

/// A reader that stopped reading (`| head`) is not an error worth a message.
fn quiet_broken_pipe(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn write_completions(shell: Shell) -> std::io::Result<()> {
    use clap_complete::Generator;
    let mut command = crate::cli::Cli::command();
    command.set_bin_name("migrator");
    command.build();
    let mut out = std::io::stdout().lock();
    // try_generate, not generate: a closed pipe is an error to return, not a panic.
    shell.try_generate(&command, &mut out)?;
    out.flush()
}

/// The man page, `migrator(1)` with a section per command, as roff.
fn write_man() -> std::io::Result<()> {
    let command = crate::cli::Cli::command();
    let mut out = std::io::stdout().lock();
    let page = clap_mangen::Man::new(command.clone());
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    // One section per command, with its options: the reference a reader of `man migrator`
    // wants, in one page.
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        writeln!(out, ".SH \"MIGRATOR {}\"", name.to_uppercase())?;
        let page = clap_mangen::Man::new(sub.clone().bin_name(format!("migrator {name}")));
        let mut section = Vec::new();
        page.render_synopsis_section(&mut section)?;
        page.render_description_section(&mut section)?;
        page.render_options_section(&mut section)?;
        // Its parts as subsections of the command's section.
        let section = String::from_utf8_lossy(&section).replace(".SH ", ".SS ");
        out.write_all(section.as_bytes())?;
    }
    page.render_version_section(&mut out)?;
    out.flush()
}
