use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    #[sea_orm(unique)]
    pub event_id: String,
    pub subject: String,
    pub payload: Vec<u8>,
    /// JSON array of [name, value] pairs (trace context).
    pub headers: String,
    pub created_at: i64,
    /// Milliseconds since the epoch before which the row is not offered again.
    pub not_before: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
