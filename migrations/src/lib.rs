//! Database schema of shiren, as sea-orm migrations run at start-up.
pub use sea_orm_migration::prelude::*;

mod m0001_gateway;
mod m0002_hosted;
mod m0003_metering;
mod m0004_cloud_keys;
mod m0005_cloud_verifications;
mod m0006_callbacks;
mod m0007_scene_liveness;
mod m20261204_attempt_submissions;
mod m20261204_certify_tokens;
mod m20261204_console_logout;
mod m20261204_limits;
mod m20261207_sealed_personal_data;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_gateway::Migration),
            Box::new(m0002_hosted::Migration),
            Box::new(m0003_metering::Migration),
            Box::new(m0004_cloud_keys::Migration),
            Box::new(m0005_cloud_verifications::Migration),
            Box::new(m0006_callbacks::Migration),
            Box::new(m0007_scene_liveness::Migration),
            Box::new(m20261204_attempt_submissions::Migration),
            Box::new(m20261204_console_logout::Migration),
            Box::new(m20261204_certify_tokens::Migration),
            Box::new(m20261204_limits::Migration),
            Box::new(m20261207_sealed_personal_data::Migration),
        ]
    }
}
