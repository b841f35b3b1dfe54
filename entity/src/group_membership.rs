//! `group_memberships`: which user is in which group.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_memberships")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub group_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "crate::directory_group::Entity",
        from = "Column::GroupId",
        to = "crate::directory_group::Column::Id"
    )]
    Group,
    #[sea_orm(
        belongs_to = "crate::directory_user::Entity",
        from = "Column::UserId",
        to = "crate::directory_user::Column::Id"
    )]
    User,
}

impl ActiveModelBehavior for ActiveModel {}

impl Related<crate::directory_group::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Group.def()
    }
}

impl Related<crate::directory_user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}
