use std::sync::Arc;

use mzchat_platform::Origin;
use mzchat_proto::federation::{
    DeadLetter, Destination, DestinationHealth, FederationJob, ListDeadLettersRequest,
    ListDeadLettersResponse, ListDestinationsRequest, ListDestinationsResponse,
    RetryDeadLetterRequest, RetryDeadLetterResponse,
    federation_admin_service_server::FederationAdminService,
};
use prost::Message;
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use super::{page_size, storage, timestamp};
use crate::{
    store::{
        dead_letters,
        destinations::{self, Health},
    },
    worker::Worker,
};

pub struct AdminGrpc {
    db: DatabaseConnection,
    worker: Arc<Worker>,
}

impl AdminGrpc {
    pub fn new(db: DatabaseConnection, worker: Arc<Worker>) -> Self {
        Self { db, worker }
    }
}

fn dead_letter_id(text: &str, what: &str) -> Result<String, Status> {
    uuid::Uuid::parse_str(text)
        .map(|id| id.to_string())
        .map_err(|_| Status::invalid_argument(format!("{what} is not a dead letter id")))
}

#[tonic::async_trait]
impl FederationAdminService for AdminGrpc {
    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        let request = request.into_inner();
        let limit = page_size(request.page_size)?;
        let before = match request.page_token.as_str() {
            "" => None,
            token => Some(dead_letter_id(token, "page_token")?),
        };
        let destination = match request.destination.as_str() {
            "" => None,
            text => Some(
                Origin::parse(text, true)
                    .map_err(|e| Status::invalid_argument(format!("destination: {e}")))?
                    .to_string(),
            ),
        };
        let rows = dead_letters::page(&self.db, destination.as_deref(), before.as_deref(), limit)
            .await
            .map_err(storage)?;
        let next_page_token = if rows.len() as u64 == limit {
            rows.last().map(|r| r.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        let dead_letters = rows
            .into_iter()
            .map(|row| DeadLetter {
                job: FederationJob::decode(row.payload.as_slice()).ok(),
                id: row.id,
                attempts: row.attempts.max(0) as u32,
                last_error: row.last_error,
                dead_at: Some(timestamp(row.dead_at)),
            })
            .collect();
        Ok(Response::new(ListDeadLettersResponse {
            dead_letters,
            next_page_token,
        }))
    }

    async fn retry_dead_letter(
        &self,
        request: Request<RetryDeadLetterRequest>,
    ) -> Result<Response<RetryDeadLetterResponse>, Status> {
        let id = dead_letter_id(&request.into_inner().id, "id")?;
        if self.worker.requeue(&id).await.map_err(storage)? {
            tracing::info!(dead_letter = %id, "dead letter requeued by an operator");
            Ok(Response::new(RetryDeadLetterResponse {}))
        } else {
            Err(Status::not_found(format!("no dead letter {id}")))
        }
    }

    async fn list_destinations(
        &self,
        request: Request<ListDestinationsRequest>,
    ) -> Result<Response<ListDestinationsResponse>, Status> {
        let request = request.into_inner();
        let limit = page_size(request.page_size)?;
        let after = match request.page_token.as_str() {
            "" => None,
            token => Some(
                Origin::parse(token, true)
                    .map_err(|_| {
                        Status::invalid_argument("page_token is not from a previous response")
                    })?
                    .to_string(),
            ),
        };
        let rows = destinations::page(&self.db, after.as_deref(), limit)
            .await
            .map_err(storage)?;
        let next_page_token = if rows.len() as u64 == limit {
            rows.last().map(|r| r.origin.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        let destinations = rows
            .into_iter()
            .map(|row| {
                let health = match destinations::health(&row) {
                    Health::Healthy => DestinationHealth::Healthy,
                    Health::BackingOff => DestinationHealth::BackingOff,
                    Health::Down => DestinationHealth::Down,
                };
                Destination {
                    health: health as i32,
                    consecutive_failures: row.consecutive_failures.max(0) as u32,
                    last_success_at: row.last_success_at.map(timestamp),
                    next_attempt_at: row.next_attempt_at.map(timestamp),
                    last_error: row.last_error,
                    origin: row.origin,
                }
            })
            .collect();
        Ok(Response::new(ListDestinationsResponse {
            destinations,
            next_page_token,
        }))
    }
}
