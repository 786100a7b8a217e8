//! An organisational unit: a MAIN division, or a SUB division under a MAIN one.
use sea_orm::entity::prelude::*;

/// Whether a division is top-level or sits under a MAIN division.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(4))")]
pub enum DivisionType {
    #[sea_orm(string_value = "MAIN")]
    Main,
    #[sea_orm(string_value = "SUB")]
    Sub,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "divisions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    /// Case fold of `name`; unique.
    #[sea_orm(unique)]
    pub name_folded: String,
    pub division_type: DivisionType,
    pub parent_id: Option<i64>,
    pub is_active: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "Entity", from = "Column::ParentId", to = "Column::Id")]
    Parent,
    #[sea_orm(has_many = "super::user::Entity")]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
