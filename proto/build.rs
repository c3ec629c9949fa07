//! Compiles the Mesos v1 schema and tepui's link schema with protox (pure Rust, so
//! a fresh machine needs no `protoc`), then generates prost types from it.

use std::path::{Path, PathBuf};

fn proto_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            proto_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("protos");
    println!("cargo:rerun-if-changed=protos");
    let mut files = Vec::new();
    proto_files(&root, &mut files)?;
    files.sort();

    let fds = protox::compile(&files, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("file_descriptor_set.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    let mut config = prost_build::Config::new();
    config.enable_type_names().btree_map(["."]).bytes(["."]);
    config.compile_fds(fds)?;
    Ok(())
}
