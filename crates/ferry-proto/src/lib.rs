//! ferry's gRPC API, generated from `proto/ferry/v1/*.proto`: the message types, the client
//! stubs ([`v1::broker_client::BrokerClient`], [`v1::users_client::UsersClient`],
//! [`v1::auth_client::AuthClient`]) and the server traits the broker implements.
//!
//! Most programs want `ferry-client`, which wraps these stubs with reconnection, typed
//! errors and a consumer stream. Use this crate directly to build another server or to
//! reach a call the client does not wrap.

#![forbid(unsafe_code)]

/// Package `ferry.v1`.
#[allow(unreachable_pub, missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("ferry.v1");
}

/// The encoded `FileDescriptorSet` of every ferry proto file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("ferry_descriptor");
