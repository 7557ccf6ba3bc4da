//! tonic services of federation-sync: the operator API and the internal key lookup.

mod admin;
mod internal;

pub use admin::AdminGrpc;
pub use internal::InternalGrpc;

fn storage(err: sea_orm::DbErr) -> tonic::Status {
    tracing::error!(error = %err, "federation storage error");
    tonic::Status::unavailable("federation-sync storage is unavailable; try again shortly")
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// page_size 0 means 50; more than 500 is capped.
fn page_size(requested: i32) -> Result<u64, tonic::Status> {
    match requested {
        0 => Ok(50),
        n if n < 0 => Err(tonic::Status::invalid_argument(
            "page_size must not be negative",
        )),
        n => Ok(n.min(500) as u64),
    }
}
