//! The cloud ID-verification API's actions (version 2019-03-07), free of wire details: the front door
//! (`api::cloud`) authenticates the caller, merges the parameters and hands them here; what comes back is either a
//! business result (`Code` "200" with a `ResultObject`) or a business error (`Code` 4xx/500, still HTTP 200).
use std::collections::BTreeMap;

use serde_json::Value;

use crate::db::apps::App;

/// The merged request parameters (query and form), by name.
pub type Params = BTreeMap<String, String>;

/// What an action answered.
#[derive(Debug)]
pub enum CloudOutcome {
    /// `Code` "200": the `ResultObject`.
    Ok(Value),
    /// A business error: `Code` (e.g. "404") and its message, at HTTP 200.
    Business { code: &'static str, message: String },
    /// The action is not one this server implements (the front door answers `InvalidAction.NotFound`).
    UnknownAction,
}

/// The actions' service.
#[derive(Clone)]
pub struct CloudService {
    db: sea_orm::DatabaseConnection,
}

impl CloudService {
    pub fn new(db: sea_orm::DatabaseConnection) -> CloudService {
        CloudService { db }
    }

    /// Runs `action` for `app` (already authenticated) with the merged parameters.
    pub async fn call(
        &self,
        app: &App,
        action: &str,
        params: &Params,
    ) -> anyhow::Result<CloudOutcome> {
        match action {
            "DescribeFaceVerify" => {
                let Some(scene) = params.get("SceneId").filter(|s| !s.is_empty()) else {
                    return Ok(business("400", "SceneId is required"));
                };
                let Ok(scene_id) = scene.parse::<i64>() else {
                    return Ok(business("401", "SceneId must be an integer"));
                };
                match crate::db::scenes::find(&self.db, scene_id).await? {
                    Some(s) if s.app_id == app.app_id => {}
                    _ => return Ok(business("404", "SceneId names no scene of this app")),
                }
                Ok(business("406", "CertifyId names no verification"))
            }
            _ => Ok(CloudOutcome::UnknownAction),
        }
    }
}

fn business(code: &'static str, message: &str) -> CloudOutcome {
    CloudOutcome::Business {
        code,
        message: message.to_string(),
    }
}
