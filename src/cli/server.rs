//! `shiren migrate`, `shiren gateway-key` and `shiren openapi` (`shiren serve` is `shiren::serve`).
use shiren::config::Config;

/// Runs the migrations and exits.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    shiren::open_database(config).await?;
    println!("migrations applied");
    Ok(())
}

/// Prints the gateway public key (created on first use).
pub fn gateway_key(config: &Config) -> anyhow::Result<()> {
    let key =
        shiren::protocol::alipay::key_file::load_or_create(&config.effective_gateway_key_file())?;
    print!("{}", key.public_key().to_pem());
    Ok(())
}

/// Prints the admin API's OpenAPI document.
pub fn openapi() -> anyhow::Result<()> {
    println!("{}", shiren::api::admin::spec_json());
    Ok(())
}
