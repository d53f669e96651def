//! The `imgstore` command line's definition, apart from the binary that
//! runs it: its arguments ([`args`]) and the clap [`command`] built from
//! them, which shell completions (`imgstore completion`) and the man pages
//! (`cargo xtask dist`) are generated from.
//!
//! ```
//! let command = imgstore_cli::command();
//! assert_eq!(command.get_name(), "imgstore");
//! ```

pub mod args;

/// The whole command tree, as clap describes it.
pub fn command() -> clap::Command {
    <args::Cli as clap::CommandFactory>::command()
}
