//! Whether the command line prints colour: in a terminal, unless `NO_COLOR` is set (to
//! anything but an empty string, as <https://no-color.org> says); never when piped. One rule
//! for the logs (tracing's ANSI output) and for clap's help and usage errors.

use std::io::IsTerminal;

/// Colour on stderr (logs, usage errors).
pub fn on_stderr() -> bool {
    allowed() && std::io::stderr().is_terminal()
}

/// clap's choice for help (stdout) and errors (stderr): never when `NO_COLOR` says so, else
/// clap's own terminal detection per stream.
pub fn clap_choice() -> clap::ColorChoice {
    if allowed() {
        clap::ColorChoice::Auto
    } else {
        clap::ColorChoice::Never
    }
}

fn allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
