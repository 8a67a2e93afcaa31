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
        /// Sealed (see `domain::seal`), like every personal value below.
        pub cert_name: String,
        pub cert_no: String,
        /// Blind index of the ID number.
        pub cert_no_index: Option<String>,
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
        pub decision: Option<String>,
        pub face_image_key: Option<String>,
        pub scene_id: Option<i64>,
        pub callback_url: Option<String>,
        pub callback_token: Option<String>,
        /// `alipay` (the gateway) or `cloud` (the cloud ID-verification API).
        pub api: String,
        /// When its personal data was erased (on instruction or at the end of its retention).
        pub erased_at: Option<i64>,
        /// When the merchant first read its result (`DeleteFaceVerifyResult` with `DeleteAfterQuery` waits for it).
        pub result_read_at: Option<i64>,
        /// When the person agreed on the hosted page, and to which text (`domain::consent`).
        pub consent_at: Option<i64>,
        pub consent_version: Option<String>,
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
        pub session_hash: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod identity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "identities")]
    pub struct Model {
        /// The ID number, sealed like the name and the embedding (clear in a row from before sealing, until the
        /// start-up pass seals it).
        #[sea_orm(primary_key, auto_increment = false)]
        pub cert_no: String,
        /// Blind index of the ID number (none in a row from before sealing).
        pub cert_no_index: Option<String>,
        pub cert_name: String,
        pub photo_key: String,
        pub embedding: String,
        pub embedding_model: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("identity").finish_non_exhaustive()
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod attempt {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "attempts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub challenge_id: String,
        pub certify_id: String,
        pub attempt: i32,
        pub challenge: String,
        pub issued_at: i64,
        pub submitted_at: Option<i64>,
        pub outcome: Option<String>,
        pub fail_reason: Option<String>,
        pub checks: Option<String>,
        pub decision_ms: Option<i32>,
        pub submissions: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod scene {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "scenes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub scene_id: i64,
        pub app_id: String,
        pub name: String,
        pub product: String,
        pub match_far: Option<String>,
        pub max_attempts: Option<i32>,
        pub retention_days: Option<i32>,
        pub keep_photos: bool,
        pub is_default: bool,
        pub status: String,
        pub liveness: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod billing_record {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_records")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub certify_id: String,
        pub event: String,
        pub app_id: String,
        pub scene_id: Option<i64>,
        pub product: String,
        pub outer_order_no: String,
        pub day: String,
        pub billed_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod cloud_access_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "cloud_access_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub access_key_id: String,
        pub app_id: String,
        /// The AccessKeySecret, encrypted (see `crate::access_keys`).
        pub secret_enc: String,
        pub status: String,
        pub created_at: i64,
        pub last_used_at: Option<i64>,
    }

    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("cloud_access_key")
                .field("access_key_id", &self.access_key_id)
                .field("app_id", &self.app_id)
                .field("status", &self.status)
                .finish_non_exhaustive()
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod cloud_nonce {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "cloud_nonces")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub access_key_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub nonce: String,
        pub seen_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod data_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "data_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key_id: String,
        /// A known text sealed under the key: proof that a server's key is the one the data was sealed with.
        pub canary: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit_entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        pub at: i64,
        pub actor: String,
        pub action: String,
        pub target: String,
        pub detail: String,
        pub prev_hash: String,
        pub hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
