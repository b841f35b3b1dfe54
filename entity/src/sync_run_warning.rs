//! `sync_run_warnings`: the first warnings of a run, to show (a field cleaned or cut, a record
//! skipped, a member ignored).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_run_warnings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub run_id: i64,
    /// `USER` or `GROUP`.
    pub object_kind: String,
    /// The object's directory id, control characters written as `U+XXXX`.
    pub external_id: String,
    /// The field, as the API spells it; none for the whole record.
    pub field: Option<String>,
    /// `CLEANED`, `TRUNCATED`, `SKIPPED` or `IGNORED_MEMBER`.
    pub action: String,
    pub message: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
