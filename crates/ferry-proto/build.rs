//! Compiles `proto/ferry/v1/*.proto` with protox (pure Rust: no `protoc` needed) and
//! generates the messages and the client and server stubs with tonic-prost-build. The
//! encoded descriptor set is kept too, for gRPC server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = ["ferry/v1/types.proto", "ferry/v1/broker.proto", "ferry/v1/users.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("ferry_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    // `bytes` fields as `bytes::Bytes`: a message body is then a slice of the buffer it
    // arrived in, and goes out without a copy.
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
