//! sea-orm entities; used only inside `db`, which hands out domain types.

pub mod app {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "apps")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub app_id: String,
        pub name: String,
        pub public_key_pem: String,
        /// JSON array of strings.
        pub return_url_prefixes: String,
        pub status: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod verification {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "verifications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub certify_id: String,
        pub app_id: String,
        pub outer_order_no: String,
        pub biz_code: String,
        pub request_digest: String,
        pub cert_type: String,
        pub cert_name: String,
        pub cert_no: String,
        pub return_url: String,
        pub face_reserve_strategy: String,
        pub contrast_picture_key: Option<String>,
        pub state: String,
        pub passed: Option<bool>,
        pub fail_reason: Option<String>,
        pub identity_info: String,
        pub material_info: String,
        pub created_at: i64,
        pub updated_at: i64,
        pub expires_at: i64,
        pub decided_at: Option<i64>,
    }

    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("verification")
                .field("certify_id", &self.certify_id)
                .field("app_id", &self.app_id)
                .field("state", &self.state)
                .finish_non_exhaustive()
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod certify_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "certify_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub certify_id: String,
        pub created_at: i64,
        pub expires_at: i64,
        pub used_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
