//! `group_nesting`: which group is a direct member of which group.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_nesting")]
pub struct Model {
    /// The group that has the other as a member.
    #[sea_orm(primary_key, auto_increment = false)]
    pub parent_id: i64,
    /// The group nested in it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub child_id: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "crate::directory_group::Entity",
        from = "Column::ParentId",
        to = "crate::directory_group::Column::Id"
    )]
    Parent,
    #[sea_orm(
        belongs_to = "crate::directory_group::Entity",
        from = "Column::ChildId",
        to = "crate::directory_group::Column::Id"
    )]
    Child,
}

impl ActiveModelBehavior for ActiveModel {}
