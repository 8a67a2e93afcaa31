//! Several instances on one database, as an orchestrator starts them.
use std::net::SocketAddr;

use crate::common::{self, Backend, Instance};

/// Three `shiren serve` started at the same moment on a fresh database all come up, and the schema is migrated
/// once: one instance applies the migrations while the others wait on the database's lock, then find nothing to
/// do. Each instance has its own data dir; the data key is given to all of them, as a deployment must.
fn three_instances_start_together(backend: Backend) {
    let inst = Instance::new(backend);
    let key = hex::encode(rand::random::<[u8; 32]>());
    let dirs: Vec<String> = (0..3)
        .map(|i| {
            inst.dir
                .path()
                .join(format!("node{i}"))
                .display()
                .to_string()
        })
        .collect();
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let starting: Vec<_> = dirs
        .iter()
        .map(|dir| {
            let env = [
                ("SHIREN_DATA_DIR", dir.as_str()),
                ("SHIREN_DATA_KEY", key.as_str()),
                ("RUST_LOG", "warn,sea_orm_migration=info"),
            ];
            let env: Vec<(String, String)> = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            std::thread::spawn({
                let inst_env = inst.env.clone();
                move || common::serve_env(&inst_env, &env, bind)
            })
        })
        .collect();
    let servers: Vec<common::Server> = starting.into_iter().map(|t| t.join().unwrap()).collect();
    for s in &servers {
        let health = reqwest::blocking::get(format!("{}/healthz", s.addr));
        assert!(health.is_ok(), "{} does not answer: {health:?}", s.addr);
    }
    let applied: usize = servers
        .iter()
        .map(|s| {
            s.log()
                .matches("Applying migration 'm0001_gateway'")
                .count()
        })
        .sum();
    assert_eq!(
        applied, 1,
        "the first migration was applied {applied} times"
    );
}

#[test]
fn three_instances_start_together_on_sqlite() {
    three_instances_start_together(Backend::Sqlite);
}

#[test]
fn three_instances_start_together_on_postgres() {
    three_instances_start_together(Backend::Postgres);
}

#[test]
fn three_instances_start_together_on_mariadb() {
    three_instances_start_together(Backend::MariaDb);
}
