//! shiren (实人): self-hostable, financial-grade real-person verification.
pub mod access_keys;
pub mod api;
#[cfg(test)]
mod architecture;
pub mod authority;
pub mod billing;
pub mod callback;
pub mod certify;
pub mod config;
pub mod console;
pub mod db;
pub mod domain;
pub mod face;
pub mod files;
/// The entry points of the fuzz targets (`fuzz/`) and of the corpus replay test.
pub mod fuzzing;
pub mod limits;
pub mod media;
pub mod metrics;
pub mod net;
pub mod operator;
pub mod privacy;
pub mod protocol;
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
use protocol::alipay::SigningKey;

/// Everything a request handler may use; built once at start-up and shared.
pub struct AppContext {
    pub config: Config,
    pub db: DatabaseConnection,
    pub certify: CertifyService,
    pub gateway: protocol::alipay::gateway::Gateway,
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
    pub cloud: protocol::aliyun::actions::CloudService,
    /// Fetches merchants' pictures by URL under `[picture_url]`.
    pub pictures: net::PictureFetcher,
    /// How callbacks are delivered (and `CallbackUrl`s validated) under `[callback]`.
    pub callback_settings: callback::CallbackSettings,
    /// Wakes the callback dispatcher: `notify_one()` after a transaction that enqueued a delivery commits.
    pub callback_wake: Arc<tokio::sync::Notify>,
    /// The cloud API's front door (authentication, then `cloud`).
    pub cloud_gate: protocol::aliyun::gateway::CloudGate,
    /// Sessions of the operator console (none without an admin token).
    pub console: console::session::Sessions,
    /// Apps, scenes, keys, search, statistics, billing reports and admin auth: what the console and the admin API
    /// call (as the CLI does).
    pub operator: operator::Operator,
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
                config.testing.allow_http_authority,
            )?)
        }
        None => Arc::new(authority::local::LocalRegistry::new(
            db.clone(),
            store.clone(),
            recogniser,
        )),
    })
}

/// The hosted-page and console templates, compiled into the binary so it runs from anywhere.
pub fn templates() -> anyhow::Result<tera::Tera> {
    let mut t = tera::Tera::default();
    t.add_raw_templates(vec![
        ("h5/base.html", include_str!("../templates/h5/base.html")),
        ("h5/error.html", include_str!("../templates/h5/error.html")),
        (
            "h5/certify.html",
            include_str!("../templates/h5/certify.html"),
        ),
        (
            "console/base.html",
            include_str!("../templates/console/base.html"),
        ),
        (
            "console/login.html",
            include_str!("../templates/console/login.html"),
        ),
        (
            "console/error.html",
            include_str!("../templates/console/error.html"),
        ),
        (
            "console/overview.html",
            include_str!("../templates/console/overview.html"),
        ),
        (
            "console/apps.html",
            include_str!("../templates/console/apps.html"),
        ),
        (
            "console/scenes.html",
            include_str!("../templates/console/scenes.html"),
        ),
        (
            "console/search.html",
            include_str!("../templates/console/search.html"),
        ),
        (
            "console/billing.html",
            include_str!("../templates/console/billing.html"),
        ),
    ])
    .context("templates")?;
    // `urlencode` (tera's own is behind a feature this build leaves out): a path segment or query value.
    t.register_filter(
        "urlencode",
        |v: &tera::Value, _: &std::collections::HashMap<String, tera::Value>| {
            let s = tera::try_get_value!("urlencode", "value", String, v);
            Ok(tera::Value::String(
                percent_encoding::utf8_percent_encode(&s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            ))
        },
    );
    Ok(t)
}

/// Opens and migrates the database named by the config.
pub async fn open_database(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = config.effective_database_url();
    let cannot_open = || format!("cannot open database {}", config::redact_url(&url));
    files::prepare_sqlite(&url).with_context(cannot_open)?;
    let db = db::connect(&url).await.with_context(cannot_open)?;
    db::migrate(&db)
        .await
        .context("database migration failed")?;
    Ok(db)
}

/// The object store the config names, sealing with the configured data keys once they are checked against the
/// database (a server with the wrong key stops here, before it reads or writes anything personal).
pub async fn open_store(
    config: &Config,
    db: &DatabaseConnection,
) -> anyhow::Result<storage::ObjectStore> {
    let keys = privacy::DataKeys::from_config(config)?;
    if privacy::admit(db, &keys, chrono::Utc::now().timestamp()).await? {
        tracing::info!(
            key = keys.ring().current().id(),
            "registered a new data key"
        );
    }
    Ok(storage::ObjectStore::new(
        config.data_dir.join("objects"),
        keys,
    ))
}

/// Builds the shared context for a server reachable at `public_url`.
pub fn build_context(
    config: Config,
    db: DatabaseConnection,
    store: storage::ObjectStore,
    key: SigningKey,
    public_url: String,
    face: Arc<dyn face::engine::FaceEngine>,
) -> anyhow::Result<Arc<AppContext>> {
    // One bound on decode and analysis work for the whole process: hosted attempts, merchants' pictures and the
    // cloud API's server-side actions all queue on it.
    let work = config.analysis.pool();
    let secrets = access_keys::SecretBox::from_config(&config)?;
    // Counted in the database, keyed (ID numbers, addresses) under a key every instance derives alike.
    let limiter = limits::Limiter::new(
        db.clone(),
        limits::LimitSettings::from_config(&config)?,
        &secrets.derive_key(limits::KEY_PURPOSE),
    );
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
    )
    .with_pictures(certify::reference::PictureEncoder::new(
        face.clone(),
        work.clone(),
    ))
    .with_page_token_secret(key.to_pkcs8_pem().as_bytes())
    .with_limits(limiter.clone());
    let gateway = protocol::alipay::gateway::Gateway::new(
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
    let pictures = net::PictureFetcher::new(net::FetchPolicy::from_config(&config));
    let callback_settings = callback::CallbackSettings::from_config(&config);
    let callback_wake = Arc::new(tokio::sync::Notify::new());
    let hosted = certify::hosted::HostedService::new(
        db.clone(),
        store.clone(),
        face.clone(),
        authority,
        hosted_settings,
        Arc::new(SystemClock),
    )
    .with_metrics(metrics.clone())
    .with_callback_wake(callback_wake.clone())
    .with_work(work)
    .with_limits(limiter);
    let cloud = protocol::aliyun::actions::CloudService::new(
        db.clone(),
        store.clone(),
        certify.clone(),
        hosted.clone(),
        public_url.clone(),
        Arc::new(SystemClock),
    )
    .with_outbound(pictures.clone(), callback_settings.clone());
    let cloud = cloud.with_picture_links(secrets.clone());
    let cloud_gate = protocol::aliyun::gateway::CloudGate::new(
        db.clone(),
        cloud.clone(),
        secrets,
        Arc::new(SystemClock),
        config.timestamp_skew_secs,
        &public_url,
    );
    Ok(Arc::new(AppContext {
        console: console::session::Sessions::new(config.admin_token.as_deref()),
        operator: operator::Operator::new(
            db.clone(),
            store.clone(),
            operator::OperatorSettings::from_config(&config),
        ),
        cloud,
        cloud_gate,
        pictures,
        callback_settings,
        callback_wake,
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
    // The data dir is for this user only (0700), and so is what older versions left in it.
    files::secure_data_dir(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
    let db = open_database(&config).await?;
    db::apps::warn_legacy_keys(&db).await;
    let keys = privacy::DataKeys::from_config(&config)?;
    let new_key = privacy::admit(&db, &keys, chrono::Utc::now().timestamp()).await?;
    let store = storage::ObjectStore::new(config.data_dir.join("objects"), keys);
    // Personal data stored before sealing existed: sealed under the current key before the first request (batched,
    // and safe beside other instances doing the same). Objects are looked at when the key is new to the database
    // (the first start that seals); a rotation's objects are `shiren keys rotate`'s.
    let report = privacy::reseal(&db, &store, store.keys(), new_key, |kind, done, total| {
        if total > 0 {
            eprint!("\rsealing personal data at rest: {kind} {done}/{total}   ");
        }
    })
    .await
    .context("cannot seal the personal data stored in clear")?;
    if report.total() > 0 || report.failed > 0 {
        eprintln!();
        tracing::info!(?report, "sealed personal data at rest");
    }
    store.keys().spawn_reload(std::time::Duration::from_secs(2));
    // The face engine: provisioned on first run (with progress), verified on every start, loaded once.
    let models_dir = config.effective_models_dir();
    let settings = face::engine::EngineSettings::from_config(&config);
    let engine =
        tokio::task::spawn_blocking(move || -> anyhow::Result<face::engine::OnnxEngine> {
            let installed = face::models::provision::ensure(
                &models_dir,
                &face::models::provision::Manifest::builtin(),
                &face::models::provision::StderrProgress,
            )
            .context("cannot provision the face models")?;
            Ok(face::engine::OnnxEngine::load(&installed, settings)?)
        })
        .await
        .context("model loading panicked")??;
    let key = protocol::alipay::key_file::load_or_create(&config.effective_gateway_key_file())?;
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
    let ctx = build_context(config, db, store, key, public_url.clone(), Arc::new(engine))?;
    // Personal data is erased once its retention period is over: now, then every hour.
    let purge = ctx.hosted.clone();
    tokio::spawn(async move {
        loop {
            match purge.purge_personal_data().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(verifications = n, "erased personal data past its retention")
                }
                Err(e) => tracing::warn!(error = %e, "retention purge failed"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
    // Callbacks of finished verifications: delivered (and retried) from the database, woken after each enqueue.
    callback::CallbackDispatcher::new(ctx.db.clone(), ctx.callback_settings.clone())
        .with_wake(ctx.callback_wake.clone())
        .spawn();
    // Signature nonces of the cloud API older than twice the clock window: every ten minutes (requests also
    // trigger this now and then).
    let (nonce_db, skew) = (ctx.db.clone(), ctx.config.timestamp_skew_secs);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(600)).await;
            let before = chrono::Utc::now().timestamp() - 2 * skew - 60;
            if let Err(e) = db::cloud_keys::purge_nonces(&nonce_db, before).await {
                tracing::warn!(error = %e, "nonce purge failed");
            }
        }
    });
    // Page tokens of verifications expired for longer than certify_ttl_secs: now, then every certify_ttl_secs
    // (at most ten minutes). Several instances may do this at once.
    let (tokens, every) = (
        ctx.certify.clone(),
        ctx.config.certify_ttl_secs.clamp(1, 600),
    );
    tokio::spawn(async move {
        loop {
            if let Err(e) = tokens.purge_tokens().await {
                tracing::warn!(error = %e, "page token purge failed");
            }
            tokio::time::sleep(std::time::Duration::from_secs(every as u64)).await;
        }
    });
    // Rate counters of past windows: every minute, on every instance (deleting what is past is idempotent).
    let counters = ctx.certify.limits().clone();
    tokio::spawn(async move {
        loop {
            match counters.purge(chrono::Utc::now().timestamp()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(counters = n, "purged rate counters of past windows"),
                Err(e) => tracing::warn!(error = %e, "rate counter purge failed"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
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
