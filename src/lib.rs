//! shiren (实人): self-hostable, financial-grade real-person verification.
pub mod api;
pub mod authority;
pub mod billing;
pub mod certify;
pub mod config;
pub mod db;
pub mod error;
pub mod face;
pub mod gateway;
pub mod keys;
pub mod media;
pub mod metrics;
pub mod openplatform;
pub mod sensitive;
pub mod storage;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpListener};
use sea_orm::DatabaseConnection;

use certify::service::ServiceSettings;
use certify::{CertifyService, SystemClock};
use config::Config;
use openplatform::SigningKey;

/// Everything a request handler may use; built once at start-up and shared.
pub struct AppContext {
    pub config: Config,
    pub db: DatabaseConnection,
    pub certify: CertifyService,
    pub gateway: gateway::Gateway,
    pub templates: tera::Tera,
    pub public_url: String,
    /// The face engine (used by the hosted flow's decision).
    pub face: Arc<dyn face::engine::FaceEngine>,
    /// The hosted page's flow: sessions, challenges, attempts, decisions.
    pub hosted: certify::hosted::HostedService,
    /// The object store (pictures, kept face images).
    pub store: storage::ObjectStore,
    /// Prometheus metrics (`/metrics`).
    pub metrics: Arc<metrics::Metrics>,
    /// The cloud ID-verification API's actions.
    pub cloud: certify::cloud::CloudService,
}

/// The authority a config names: the external one when `authority.url` is set, else the local registry.
pub fn build_authority(
    config: &Config,
    db: &DatabaseConnection,
    store: &storage::ObjectStore,
    recogniser: String,
) -> anyhow::Result<Arc<dyn authority::Authority>> {
    Ok(match &config.authority.url {
        Some(url) => {
            let secret = config.authority.secret.as_deref().context(
                "authority.secret (SHIREN_AUTHORITY_SECRET) is required with authority.url",
            )?;
            Arc::new(authority::http::HttpAuthority::new(
                url.clone(),
                secret,
                std::time::Duration::from_millis(config.authority.timeout_ms.unwrap_or(3000)),
            )?)
        }
        None => Arc::new(authority::local::LocalRegistry::new(
            db.clone(),
            store.clone(),
            recogniser,
        )),
    })
}

/// The hosted-page templates, compiled into the binary so it runs from anywhere.
pub fn templates() -> anyhow::Result<tera::Tera> {
    let mut t = tera::Tera::default();
    t.add_raw_templates(vec![
        ("h5/base.html", include_str!("../templates/h5/base.html")),
        ("h5/error.html", include_str!("../templates/h5/error.html")),
        (
            "h5/certify.html",
            include_str!("../templates/h5/certify.html"),
        ),
    ])
    .context("templates")?;
    Ok(t)
}

/// Opens and migrates the database named by the config.
pub async fn open_database(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = config.effective_database_url();
    let db = db::connect(&url)
        .await
        .with_context(|| format!("cannot open database {}", config::redact_url(&url)))?;
    db::migrate(&db)
        .await
        .context("database migration failed")?;
    Ok(db)
}

/// Builds the shared context for a server reachable at `public_url`.
pub fn build_context(
    config: Config,
    db: DatabaseConnection,
    key: SigningKey,
    public_url: String,
    face: Arc<dyn face::engine::FaceEngine>,
) -> anyhow::Result<Arc<AppContext>> {
    let store = storage::ObjectStore::new(config.data_dir.join("objects"));
    let certify = CertifyService::new(
        db.clone(),
        store.clone(),
        ServiceSettings {
            certify_ttl_secs: config.certify_ttl_secs,
            token_ttl_secs: config.token_ttl_secs,
            max_contrast_picture_bytes: config.max_contrast_picture_bytes,
            default_scenes: config.default_scenes.clone(),
        },
        Arc::new(SystemClock),
    );
    let gateway = gateway::Gateway::new(
        db.clone(),
        certify.clone(),
        Arc::new(key),
        config.timestamp_skew_secs,
        public_url.clone(),
    );
    let hosted_settings = certify::hosted::HostedSettings::from_config(&config)?;
    if config.testing.any() {
        tracing::warn!(
            testing = ?config.testing,
            "TEST-ONLY SETTINGS ARE ON: this server must not verify real people"
        );
        eprintln!(
            "WARNING: test-only settings are on ({:?}); this server must not verify real people",
            config.testing
        );
    }
    let authority = build_authority(&config, &db, &store, face.recogniser_id())?;
    let metrics = Arc::new(metrics::Metrics::default());
    let hosted = certify::hosted::HostedService::new(
        db.clone(),
        store.clone(),
        face.clone(),
        authority,
        hosted_settings,
        Arc::new(SystemClock),
    )
    .with_metrics(metrics.clone());
    let cloud = certify::cloud::CloudService::new(db.clone());
    Ok(Arc::new(AppContext {
        cloud,
        templates: templates()?,
        hosted,
        store,
        metrics,
        config,
        db,
        certify,
        gateway,
        public_url,
        face,
    }))
}

/// The whole HTTP application.
pub fn build_app(ctx: Arc<AppContext>) -> impl poem::Endpoint {
    api::routes(ctx)
}

/// `shiren serve`: migrate, load or create the gateway key, bind, print the address, serve until Ctrl-C/SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let db = open_database(&config).await?;
    // The face engine: provisioned on first run (with progress), verified on every start, loaded once.
    let models_dir = config.effective_models_dir();
    let settings = face::engine::EngineSettings::from_config(&config);
    let engine =
        tokio::task::spawn_blocking(move || -> anyhow::Result<face::engine::OnnxEngine> {
            let installed = face::provision::ensure(
                &models_dir,
                &face::provision::Manifest::builtin(),
                &face::provision::StderrProgress,
            )
            .context("cannot provision the face models")?;
            Ok(face::engine::OnnxEngine::load(&installed, settings)?)
        })
        .await
        .context("model loading panicked")??;
    let key = keys::load_or_create(&config.effective_gateway_key_file())?;
    let acceptor = TcpListener::bind(config.bind)
        .into_acceptor()
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let bound: SocketAddr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .context("listener has no socket address")?;
    let public_url = config.effective_public_url(bound);
    let ctx = build_context(config, db, key, public_url.clone(), Arc::new(engine))?;
    // Kept images are deleted once their retention period is over: now, then every hour.
    let purge = ctx.hosted.clone();
    tokio::spawn(async move {
        loop {
            match purge.purge_images().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(verifications = n, "deleted images past their retention"),
                Err(e) => tracing::warn!(error = %e, "image retention purge failed"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
    tracing::info!(%bound, %public_url, "shiren is serving");
    // Scripts and tests read this line to learn the bound address.
    println!("listening on http://{bound}");
    poem::Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            build_app(ctx),
            shutdown_signal(),
            Some(std::time::Duration::from_secs(10)),
        )
        .await
        .context("server failed")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
