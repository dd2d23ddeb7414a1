//! The bindings generator of fleetfront-mobile: UniFFI's library mode, from the same UniFFI
//! version as the library, reading the interface from the built library itself.
//!
//! ```text
//! cargo run -p fleetfront-mobile --features bindgen --bin uniffi-bindgen -- \
//!     generate --library <libfleetfront_mobile.so> --language <kotlin|swift|python> \
//!     --out-dir <dir>
//! ```
//!
//! The arguments are those of UniFFI's own `uniffi-bindgen generate --library`, but this is not
//! UniFFI's CLI (`uniffi/cli`): that one pulls `cargo_metadata`, whose serde_json features
//! would rebuild the whole client core whenever the generator is built. We need no `uniffi.toml`,
//! so `uniffi_bindgen` without `cargo-metadata` does, and `mobile/generate-bindings.sh` wraps it.

use std::process::ExitCode;

use camino::Utf8PathBuf;
use uniffi_bindgen::bindings::{
    KotlinBindingGenerator, PythonBindingGenerator, SwiftBindingGenerator,
};
use uniffi_bindgen::library_mode::generate_bindings;
use uniffi_bindgen::EmptyCrateConfigSupplier;

const USAGE: &str = "usage: uniffi-bindgen generate --library <path to the built library> \
                     --language <kotlin|swift|python> --out-dir <dir> [--no-format]";

/// What to generate.
struct Args {
    library: Utf8PathBuf,
    language: String,
    out_dir: Utf8PathBuf,
    format: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    if args.next().as_deref() != Some("generate") {
        return Err(USAGE.to_owned());
    }
    let (mut library, mut language, mut out_dir, mut format) = (None, None, None, true);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--library" => library = Some(Utf8PathBuf::from(value()?)),
            "--language" => language = Some(value()?),
            "--out-dir" => out_dir = Some(Utf8PathBuf::from(value()?)),
            "--no-format" => format = false,
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    match (library, language, out_dir) {
        (Some(library), Some(language), Some(out_dir)) => Ok(Args {
            library,
            language,
            out_dir,
            format,
        }),
        _ => Err(USAGE.to_owned()),
    }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let (library, out, format) = (args.library.as_path(), args.out_dir.as_path(), args.format);
    let config = EmptyCrateConfigSupplier;
    let generated = match args.language.as_str() {
        "kotlin" => generate_bindings(
            library,
            None,
            &KotlinBindingGenerator,
            &config,
            None,
            out,
            format,
        )
        .map(|c| c.len()),
        "swift" => generate_bindings(
            library,
            None,
            &SwiftBindingGenerator,
            &config,
            None,
            out,
            format,
        )
        .map(|c| c.len()),
        "python" => generate_bindings(
            library,
            None,
            &PythonBindingGenerator,
            &config,
            None,
            out,
            format,
        )
        .map(|c| c.len()),
        other => {
            eprintln!("unknown language {other}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match generated {
        Ok(0) => {
            eprintln!("no UniFFI component found in {library}");
            ExitCode::FAILURE
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("generating {} bindings: {e:#}", args.language);
            ExitCode::FAILURE
        }
    }
}
