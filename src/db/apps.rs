//! Merchant apps and their keys.
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};

use super::entities::app;
use crate::domain::rsa::AppPublicKey;

/// Whether an app may call the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppStatus {
    Active,
    Disabled,
}

impl AppStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::Active => "active",
            AppStatus::Disabled => "disabled",
        }
    }
}

/// A registered merchant app.
#[derive(Clone, Debug)]
pub struct App {
    pub app_id: String,
    pub name: String,
    pub public_key: AppPublicKey,
    pub return_url_prefixes: Vec<String>,
    pub status: AppStatus,
    pub created_at: i64,
}

/// What `app create` registers.
#[derive(Clone, Debug)]
pub struct NewApp {
    pub app_id: String,
    pub name: String,
    pub public_key: AppPublicKey,
    pub return_url_prefixes: Vec<String>,
}

/// Whether `id` can be an app id: 1-32 letters, digits, `_` or `-`.
pub fn valid_app_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Smallest merchant RSA key registered unless `[gateway] allow_legacy_rsa_keys` is on.
pub const MIN_RSA_BITS: usize = 2048;

impl NewApp {
    /// Checks what an operator typed (`shiren app create`, the console) and builds the app to register; the error
    /// names the first wrong field. Keys under `MIN_RSA_BITS` are refused unless `allow_legacy_rsa_keys`.
    pub fn parse(
        app_id: &str,
        name: &str,
        public_key_text: &str,
        return_url_prefixes: Vec<String>,
        allow_legacy_rsa_keys: bool,
    ) -> Result<NewApp, String> {
        let app_id = app_id.trim();
        if !valid_app_id(app_id) {
            return Err("the app id must be 1-32 letters, digits, '_' or '-'".into());
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
            return Err("the name must be 1-128 characters".into());
        }
        for prefix in &return_url_prefixes {
            if !crate::domain::request::return_url_prefix_ok(prefix) {
                return Err(format!(
                    "return URL prefix {prefix:?} is not allowed: use an http(s) URL with a host \
                     (https://m.example/back) or an app scheme (alipays://), without whitespace, control \
                     characters, backslashes or user info; script, data and local-file schemes are never allowed"
                ));
            }
        }
        let public_key = AppPublicKey::parse(public_key_text)
            .map_err(|e| format!("the public key is not usable: {e}"))?;
        if public_key.bits() < MIN_RSA_BITS && !allow_legacy_rsa_keys {
            return Err(format!(
                "the public key has {} bits; merchant RSA keys must have at least {MIN_RSA_BITS} bits. Have the \
                 merchant generate a {MIN_RSA_BITS}-bit key pair, or, for a merchant that cannot replace an old key \
                 yet, set [gateway] allow_legacy_rsa_keys = true (SHIREN_ALLOW_LEGACY_RSA_KEYS=1)",
                public_key.bits()
            ));
        }
        Ok(NewApp {
            app_id: app_id.to_string(),
            name: name.to_string(),
            public_key,
            return_url_prefixes,
        })
    }
}

/// Why an app could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum AppStoreError {
    #[error("an app with id {0} already exists")]
    Exists(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn to_domain(m: app::Model) -> Result<App, DbErr> {
    let public_key = AppPublicKey::parse(&m.public_key_pem)
        .map_err(|e| DbErr::Custom(format!("stored key of app {} is unreadable: {e}", m.app_id)))?;
    let return_url_prefixes = serde_json::from_str(&m.return_url_prefixes).map_err(|e| {
        DbErr::Custom(format!(
            "stored return URLs of app {} are unreadable: {e}",
            m.app_id
        ))
    })?;
    Ok(App {
        status: if m.status == "active" {
            AppStatus::Active
        } else {
            AppStatus::Disabled
        },
        app_id: m.app_id,
        name: m.name,
        public_key,
        return_url_prefixes,
        created_at: m.created_at,
    })
}

pub async fn insert(db: &DatabaseConnection, new: NewApp, now: i64) -> Result<App, AppStoreError> {
    if app::Entity::find_by_id(new.app_id.clone())
        .one(db)
        .await?
        .is_some()
    {
        return Err(AppStoreError::Exists(new.app_id));
    }
    let model = app::ActiveModel {
        app_id: Set(new.app_id.clone()),
        name: Set(new.name),
        public_key_pem: Set(new.public_key.to_pem()),
        return_url_prefixes: Set(
            serde_json::to_string(&new.return_url_prefixes).unwrap_or_else(|_| "[]".into())
        ),
        status: Set(AppStatus::Active.as_str().into()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    match app::Entity::insert(model).exec(db).await {
        Ok(_) => {}
        Err(e) if super::is_unique_violation(&e) => return Err(AppStoreError::Exists(new.app_id)),
        Err(e) => return Err(e.into()),
    }
    find(db, &new.app_id)
        .await?
        .ok_or_else(|| AppStoreError::Db(DbErr::RecordNotFound(new.app_id)))
}

pub async fn find(db: &DatabaseConnection, app_id: &str) -> Result<Option<App>, DbErr> {
    app::Entity::find_by_id(app_id.to_string())
        .one(db)
        .await?
        .map(to_domain)
        .transpose()
}

/// Warns, once per active app, about merchant keys under `MIN_RSA_BITS` (registered before the limit, or with
/// `[gateway] allow_legacy_rsa_keys`): they keep working, but the operator should ask for a new key.
pub async fn warn_legacy_keys(db: &DatabaseConnection) {
    match list(db).await {
        Ok(apps) => {
            for a in apps
                .iter()
                .filter(|a| a.status == AppStatus::Active && a.public_key.bits() < MIN_RSA_BITS)
            {
                tracing::warn!(
                    app_id = %a.app_id,
                    bits = a.public_key.bits(),
                    "merchant app signs with an RSA key under {MIN_RSA_BITS} bits; ask the merchant for a new key"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot check the merchant apps' key sizes"),
    }
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<App>, DbErr> {
    app::Entity::find()
        .order_by_asc(app::Column::AppId)
        .all(db)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}

/// Sets an app's status; false when there is no such app.
pub async fn set_status(
    db: &DatabaseConnection,
    app_id: &str,
    status: AppStatus,
    now: i64,
) -> Result<bool, DbErr> {
    let Some(model) = app::Entity::find()
        .filter(app::Column::AppId.eq(app_id))
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let mut active: app::ActiveModel = model.into();
    active.status = Set(status.as_str().into());
    active.updated_at = Set(now);
    active.update(db).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};

    fn public_pem(bits: usize) -> String {
        let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).unwrap();
        private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    #[test]
    fn keys_under_2048_bits_only_with_the_legacy_setting() {
        let short = public_pem(1024);
        let err = NewApp::parse("a1", "A", &short, vec![], false).unwrap_err();
        assert!(
            err.contains("1024 bits") && err.contains("allow_legacy_rsa_keys"),
            "{err}"
        );
        let app = NewApp::parse("a1", "A", &short, vec![], true).unwrap();
        assert_eq!(app.public_key.bits(), 1024);
        let full = public_pem(2048);
        assert!(NewApp::parse("a2", "A", &full, vec![], false).is_ok());
    }

    #[test]
    fn return_url_prefixes_are_checked_at_registration() {
        let pem = public_pem(2048);
        let ok = |p: &str| NewApp::parse("a1", "A", &pem, vec![p.to_string()], false);
        assert!(ok("https://m.example/back").is_ok());
        assert!(ok("alipays://").is_ok());
        for bad in [
            "javascript:",
            "data:text/html",
            "https://u@evil/",
            "m.example",
        ] {
            let err = ok(bad).unwrap_err();
            assert!(err.contains("is not allowed"), "{err}");
        }
    }
}
