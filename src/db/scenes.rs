//! Scenes (认证场景): a merchant-defined id grouping verifications, with its product and thresholds.
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::entities::scene;

pub use crate::domain::scene::{
    NewScene, Scene, SceneChanges, SceneSettings, DEFAULT_SCENE_NAME, LIVENESS_LEVELS,
};

/// Why a scene could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SceneStoreError {
    #[error("scene {0} already exists")]
    IdTaken(i64),
    #[error("app {0} already has a scene named {1:?}")]
    NameTaken(String, String),
    #[error("no scene {0}")]
    NotFound(i64),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn to_domain(m: scene::Model) -> Scene {
    Scene {
        scene_id: m.scene_id,
        app_id: m.app_id,
        name: m.name,
        product: m.product,
        match_far: m.match_far,
        max_attempts: m.max_attempts.map(|v| v.max(0) as u32),
        retention_days: m.retention_days.map(|v| v.max(0) as u32),
        keep_photos: m.keep_photos,
        liveness: m.liveness,
        is_default: m.is_default,
        created_at: m.created_at,
    }
}

pub async fn insert(
    db: &DatabaseConnection,
    new: NewScene,
    now: i64,
) -> Result<Scene, SceneStoreError> {
    new.validate().map_err(SceneStoreError::Invalid)?;
    let name_taken = scene::Entity::find()
        .filter(scene::Column::AppId.eq(&new.app_id))
        .filter(scene::Column::Name.eq(new.name.trim()))
        .one(db)
        .await?
        .is_some();
    if name_taken {
        return Err(SceneStoreError::NameTaken(new.app_id, new.name));
    }
    // A chosen id is tried once; a free id is retried when a concurrent insert takes it.
    for _ in 0..5 {
        let id = match new.scene_id {
            Some(id) => id,
            None => {
                let max: Option<Option<i64>> = scene::Entity::find()
                    .select_only()
                    .column_as(scene::Column::SceneId.max(), "max")
                    .into_tuple()
                    .one(db)
                    .await?;
                max.flatten().unwrap_or(1000) + 1
            }
        };
        let model = scene::ActiveModel {
            scene_id: Set(id),
            app_id: Set(new.app_id.clone()),
            name: Set(new.name.trim().to_string()),
            product: Set(new.product.clone()),
            match_far: Set(new.settings.match_far.clone()),
            max_attempts: Set(new.settings.max_attempts.map(|v| v as i32)),
            retention_days: Set(new.settings.retention_days.map(|v| v as i32)),
            liveness: Set(new.settings.liveness.clone()),
            keep_photos: Set(new.keep_photos),
            is_default: Set(new.is_default),
            status: Set("active".into()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        match scene::Entity::insert(model)
            .exec_without_returning(db)
            .await
        {
            Ok(_) => {
                return find(db, id).await?.ok_or(SceneStoreError::NotFound(id));
            }
            Err(e) if super::is_unique_violation(&e) => {
                if find(db, id).await?.is_none() {
                    return Err(SceneStoreError::NameTaken(new.app_id, new.name));
                }
                if new.scene_id.is_some() {
                    return Err(SceneStoreError::IdTaken(id));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(SceneStoreError::Db(DbErr::Custom(
        "scene ids kept colliding".into(),
    )))
}

pub async fn find(db: &DatabaseConnection, scene_id: i64) -> Result<Option<Scene>, DbErr> {
    Ok(scene::Entity::find_by_id(scene_id)
        .one(db)
        .await?
        .map(to_domain))
}

/// Scenes, of one app or of all, by id.
pub async fn list(db: &DatabaseConnection, app_id: Option<&str>) -> Result<Vec<Scene>, DbErr> {
    let mut q = scene::Entity::find().order_by_asc(scene::Column::SceneId);
    if let Some(a) = app_id {
        q = q.filter(scene::Column::AppId.eq(a));
    }
    Ok(q.all(db).await?.into_iter().map(to_domain).collect())
}

pub async fn update(
    db: &DatabaseConnection,
    scene_id: i64,
    changes: SceneChanges,
    now: i64,
) -> Result<Scene, SceneStoreError> {
    let Some(model) = scene::Entity::find_by_id(scene_id).one(db).await? else {
        return Err(SceneStoreError::NotFound(scene_id));
    };
    let current = to_domain(model.clone());
    let settings = changes
        .settings_after(&current.settings())
        .map_err(SceneStoreError::Invalid)?;
    let mut active: scene::ActiveModel = model.into();
    if let Some(name) = &changes.name {
        active.name = Set(name.trim().to_string());
    }
    active.match_far = Set(settings.match_far);
    active.max_attempts = Set(settings.max_attempts.map(|v| v as i32));
    active.retention_days = Set(settings.retention_days.map(|v| v as i32));
    active.liveness = Set(settings.liveness);
    if let Some(k) = changes.keep_photos {
        active.keep_photos = Set(k);
    }
    active.updated_at = Set(now);
    match active.update(db).await {
        Ok(m) => Ok(to_domain(m)),
        Err(e) if super::is_unique_violation(&e) => Err(SceneStoreError::NameTaken(
            current.app_id,
            changes.name.unwrap_or_default(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The app's default scene, created on first use.
pub async fn default_for_app(
    db: &DatabaseConnection,
    app_id: &str,
    product: &str,
    now: i64,
) -> Result<Scene, DbErr> {
    let find_default = || async {
        scene::Entity::find()
            .filter(scene::Column::AppId.eq(app_id))
            .filter(
                sea_orm::Condition::any()
                    .add(scene::Column::IsDefault.eq(true))
                    .add(scene::Column::Name.eq(DEFAULT_SCENE_NAME)),
            )
            .order_by_desc(scene::Column::IsDefault)
            .order_by_asc(scene::Column::SceneId)
            .one(db)
            .await
    };
    if let Some(m) = find_default().await? {
        return Ok(to_domain(m));
    }
    let created = insert(
        db,
        NewScene {
            scene_id: None,
            app_id: app_id.to_string(),
            name: DEFAULT_SCENE_NAME.into(),
            product: product.to_string(),
            settings: SceneSettings::default(),
            keep_photos: true,
            is_default: true,
        },
        now,
    )
    .await;
    match created {
        Ok(s) => Ok(s),
        // Created concurrently: read the winner.
        Err(SceneStoreError::NameTaken(..)) | Err(SceneStoreError::IdTaken(_)) => find_default()
            .await?
            .map(to_domain)
            .ok_or_else(|| DbErr::Custom("default scene vanished".into())),
        Err(SceneStoreError::Db(e)) => Err(e),
        Err(e) => Err(DbErr::Custom(e.to_string())),
    }
}

/// Makes `scene_id` its app's default scene (and no other).
pub async fn set_default(db: &DatabaseConnection, scene_id: i64, now: i64) -> Result<bool, DbErr> {
    let Some(s) = find(db, scene_id).await? else {
        return Ok(false);
    };
    scene::Entity::update_many()
        .col_expr(scene::Column::IsDefault, Expr::value(false))
        .col_expr(scene::Column::UpdatedAt, Expr::value(now))
        .filter(scene::Column::AppId.eq(&s.app_id))
        .filter(scene::Column::SceneId.ne(scene_id))
        .exec(db)
        .await?;
    scene::Entity::update_many()
        .col_expr(scene::Column::IsDefault, Expr::value(true))
        .col_expr(scene::Column::UpdatedAt, Expr::value(now))
        .filter(scene::Column::SceneId.eq(scene_id))
        .exec(db)
        .await?;
    Ok(true)
}
