//! Generated code is checked in so that an ordinary build needs no protoc. This test regenerates
//! it from the .proto files (pure Rust: protox + tonic-prost-build) and fails when the checked-in
//! copy differs. `make proto` runs it with MZCHAT_PROTO_REGENERATE=1 to rewrite `src/gen/`.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use prost::Message;

fn proto_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.join("mzchat")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("read proto dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "proto") {
                files.push(path.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    files.sort();
    files
}

fn generate(out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fds = protox::compile(proto_files(root), [root]).expect("compile .proto files");
    fs::write(out.join("descriptor.bin"), fds.encode_to_vec()).expect("write descriptor");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .generate_default_stubs(true)
        .emit_rerun_if_changed(false)
        .out_dir(out)
        .compile_fds(fds)
        .expect("generate rust");
    // Well-known types come from prost-types.
    fs::remove_file(out.join("google.protobuf.rs")).ok();
}

fn read_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .expect("read gen dir")
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, fs::read(&path).expect("read generated file"))
        })
        .collect()
}

#[test]
fn checked_in_generated_code_matches_the_proto_files() {
    let gen_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gen");
    let fresh = std::env::temp_dir().join(format!("mzchat-proto-gen-{}", std::process::id()));
    fs::create_dir_all(&fresh).expect("temp dir");
    generate(&fresh);
    let generated = read_dir(&fresh);
    if std::env::var_os("MZCHAT_PROTO_REGENERATE").is_some() {
        fs::remove_dir_all(&gen_dir).ok();
        fs::create_dir_all(&gen_dir).expect("gen dir");
        for (name, bytes) in &generated {
            fs::write(gen_dir.join(name), bytes).expect("write generated file");
        }
    }
    let checked_in = read_dir(&gen_dir);
    fs::remove_dir_all(&fresh).ok();
    let stale: Vec<_> = generated
        .iter()
        .filter(|(name, bytes)| checked_in.get(*name) != Some(bytes))
        .map(|(name, _)| name.clone())
        .chain(
            checked_in
                .keys()
                .filter(|n| !generated.contains_key(*n))
                .cloned(),
        )
        .collect();
    assert!(
        stale.is_empty(),
        "generated code is stale for {stale:?}: run `make proto` and commit proto/src/gen"
    );
}
