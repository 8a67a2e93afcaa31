//! Scenes: create, change, list. The values and their checks are `domain::scene`'s.
use super::{Error, Operator, Result, Scene, SceneChanges};
use crate::db::scenes::{self, SceneStoreError};
use crate::domain::scene::{normalize_product, NewScene};

/// A scene to create, as an operator asked for it.
#[derive(Clone, Debug, Default)]
pub struct SceneRequest {
    pub app_id: String,
    pub name: String,
    /// The id to use (default: the next free one).
    pub scene_id: Option<i64>,
    /// Product code, in any case.
    pub product: String,
    /// Its settings; what is not given is the server's (and face images may be kept).
    pub settings: SceneChanges,
    /// Make it the app's default scene.
    pub make_default: bool,
}

fn store_error(e: SceneStoreError) -> Error {
    match e {
        SceneStoreError::Db(e) => e.into(),
        e @ SceneStoreError::NotFound(_) => Error::NotFound(e.to_string()),
        e @ (SceneStoreError::IdTaken(_) | SceneStoreError::NameTaken(..)) => {
            Error::Conflict(e.to_string())
        }
        SceneStoreError::Invalid(m) => Error::Invalid(m),
    }
}

impl Operator {
    /// Creates a scene of an existing app.
    pub async fn create_scene(&self, r: SceneRequest) -> Result<Scene> {
        let app_id = r.app_id.trim().to_string();
        self.existing_app(&app_id).await?;
        let s = r.settings;
        let new = NewScene {
            scene_id: r.scene_id,
            app_id,
            name: r.name,
            product: normalize_product(&r.product),
            settings: crate::domain::scene::SceneSettings {
                match_far: s.match_far.flatten(),
                max_attempts: s.max_attempts.flatten(),
                retention_days: s.retention_days.flatten(),
                liveness: s.liveness.flatten(),
            },
            keep_photos: s.keep_photos.unwrap_or(true),
            is_default: false,
        };
        let scene = scenes::insert(&self.db, new, self.now())
            .await
            .map_err(store_error)?;
        if r.make_default {
            scenes::set_default(&self.db, scene.scene_id, self.now()).await?;
        }
        Ok(scene)
    }

    /// Changes a scene (and makes it its app's default when asked); the scene as it is afterwards.
    pub async fn update_scene(
        &self,
        scene_id: i64,
        changes: SceneChanges,
        make_default: bool,
    ) -> Result<Scene> {
        let scene = scenes::update(&self.db, scene_id, changes, self.now())
            .await
            .map_err(store_error)?;
        if make_default {
            scenes::set_default(&self.db, scene_id, self.now()).await?;
        }
        Ok(scenes::find(&self.db, scene_id).await?.unwrap_or(scene))
    }

    /// Scenes, of one app or of all, by id.
    pub async fn scenes(&self, app_id: Option<&str>) -> Result<Vec<Scene>> {
        Ok(scenes::list(&self.db, app_id).await?)
    }
}
