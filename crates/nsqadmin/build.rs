//! Embeds every file under `assets/` into the binary: generates a table of
//! `(name, include_bytes!(..))` so `nsqadmin` ships as one file with no runtime lookups.
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut table = String::from("&[\n");
    let mut add_dir = |dir: &Path, prefix: &str| {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for path in files {
            if !path.is_file() {
                continue;
            }
            println!("cargo:rerun-if-changed={}", path.display());
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let _ = writeln!(
                table,
                "    ({:?}, include_bytes!({:?}) as &[u8]),",
                format!("{prefix}{name}"),
                path.display().to_string()
            );
        }
    };
    add_dir(&root, "");
    add_dir(&root.join("static"), "static/");
    table.push(']');
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("assets.rs");
    if let Err(e) = std::fs::write(&out, table) {
        panic!("cannot write {}: {e}", out.display());
    }
}
