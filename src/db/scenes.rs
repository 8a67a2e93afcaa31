//! Scenes (认证场景): a merchant-defined id grouping verifications, with its product and thresholds.
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::entities::scene;

/// The name of the scene created for an app on first use.
pub const DEFAULT_SCENE_NAME: &str = "default";

/// A stored scene. Unset thresholds fall back to the server's `[decision]` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scene {
    pub scene_id: i64,
    pub app_id: String,
    pub name: String,
    /// Product code of its verifications (`FACE`, …).
    pub product: String,
    /// Target false-accept rate of the face match (`1e-2`, `1e-3`, `1e-4`).
    pub match_far: Option<String>,
    pub max_attempts: Option<u32>,
    /// Days a kept face image stays.
    pub retention_days: Option<u32>,
    /// Whether face images may be kept at all (the merchant's `face_reserve_strategy` decides within that).
    pub keep_photos: bool,
    /// Liveness strictness: `standard` or `strict` (see [`LIVENESS_LEVELS`]); unset is standard.
    pub liveness: Option<String>,
    /// The app's scene for requests that name none (the Alipay-style gateway).
    pub is_default: bool,
    pub created_at: i64,
}

/// Thresholds of a scene, checked before they are stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SceneSettings {
    pub match_far: Option<String>,
    pub max_attempts: Option<u32>,
    pub retention_days: Option<u32>,
    pub liveness: Option<String>,
}

/// Liveness strictness of a scene. `standard`: the challenge is an open mouth plus one or two of blink and head
/// turns, each held for the server's frame count. `strict`: always an open mouth plus two of them (three actions,
/// so a replayed or puppeted video must match a longer random sequence), and mouth and turns must hold one frame
/// longer.
pub const LIVENESS_LEVELS: &[&str] = &["standard", "strict"];

impl SceneSettings {
    /// Names the first invalid value.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(f) = &self.match_far {
            if crate::face::compare::TargetFar::parse(f).is_none() {
                return Err(format!("match FAR must be 1e-2, 1e-3 or 1e-4, not {f:?}"));
            }
        }
        if let Some(n) = self.max_attempts {
            if !(1..=5).contains(&n) {
                return Err(format!("max attempts must be 1 to 5, not {n}"));
            }
        }
        if let Some(d) = self.retention_days {
            if d > 3650 {
                return Err(format!("retention must be at most 3650 days, not {d}"));
            }
        }
        if let Some(l) = &self.liveness {
            if !LIVENESS_LEVELS.contains(&l.as_str()) {
                return Err(format!("liveness must be standard or strict, not {l:?}"));
            }
        }
        Ok(())
    }
}

/// What `scene create` stores.
#[derive(Clone, Debug)]
pub struct NewScene {
    /// The id to use; the next free one when unset.
    pub scene_id: Option<i64>,
    pub app_id: String,
    pub name: String,
    pub product: String,
    pub settings: SceneSettings,
    pub keep_photos: bool,
    pub is_default: bool,
}

/// Changes `scene update` makes; `None` leaves a field as it is (`Some(None)` clears a threshold).
#[derive(Clone, Debug, Default)]
pub struct SceneChanges {
    pub name: Option<String>,
    pub match_far: Option<Option<String>>,
    pub max_attempts: Option<Option<u32>>,
    pub retention_days: Option<Option<u32>>,
    pub liveness: Option<Option<String>>,
    pub keep_photos: Option<bool>,
}

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

fn check_name(name: &str) -> Result<(), SceneStoreError> {
    if name.trim().is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(SceneStoreError::Invalid(
            "the name must be 1-128 characters".into(),
        ));
    }
    Ok(())
}

pub async fn insert(
    db: &DatabaseConnection,
    new: NewScene,
    now: i64,
) -> Result<Scene, SceneStoreError> {
    check_name(&new.name)?;
    new.settings.validate().map_err(SceneStoreError::Invalid)?;
    if crate::domain::product::Product::parse(&new.product).is_none() {
        return Err(SceneStoreError::Invalid(format!(
            "unknown product {:?}; one of {}",
            new.product,
            crate::domain::product::Product::codes().join(", ")
        )));
    }
    if matches!(new.scene_id, Some(id) if id <= 0) {
        return Err(SceneStoreError::Invalid(
            "the scene id must be a positive number".into(),
        ));
    }
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
    let settings = SceneSettings {
        match_far: changes.match_far.clone().unwrap_or(current.match_far),
        max_attempts: changes.max_attempts.unwrap_or(current.max_attempts),
        retention_days: changes.retention_days.unwrap_or(current.retention_days),
        liveness: changes.liveness.clone().unwrap_or(current.liveness),
    };
    settings.validate().map_err(SceneStoreError::Invalid)?;
    let mut active: scene::ActiveModel = model.into();
    if let Some(name) = &changes.name {
        check_name(name)?;
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
