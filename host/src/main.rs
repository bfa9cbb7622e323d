//! `portico`: the command-line entry point. Every subcommand goes through the same host
//! operations as the admin API.

use anyhow::Context;
use clap::{Parser, Subcommand};
use portico_host::config::{Config, StoreKind};
use portico_host::secrets::Sealer;
use portico_host::store::embedded::EmbeddedStore;
use portico_host::store::mongo::{self, MongoStore};
use portico_host::store::{copy, Store};
use portico_host::{demo, keys, registry, server, tls, Portico};
use portico_sdk::{InstallInput, InstallationId, OrgId, Secret};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

/// mimalloc instead of glibc malloc: under sustained writes from many threads (the store's
/// blocking pool) glibc's per-thread arenas kept growing RSS; see bench/README.md ("Load and
/// soak").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "portico",
    version,
    about = "A host for connected apps; CardDAV included"
)]
struct Cli {
    /// TOML configuration file (also PORTICO_CONFIG).
    #[arg(long, global = true, env = "PORTICO_CONFIG")]
    config: Option<PathBuf>,
    /// Override one setting, e.g. --set server.listen=0.0.0.0:8080 (repeatable).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Data directory (store.data_dir).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on (server.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run the server with a demo organization, its customers and the apps installed.
    Demo {
        /// Address to listen on.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Organizations.
    #[command(subcommand)]
    Org(OrgCmd),
    /// Installations.
    #[command(subcommand)]
    App(AppCmd),
    /// Customers.
    #[command(subcommand)]
    Customers(CustomerCmd),
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Stores.
    #[command(subcommand)]
    Store(StoreCmd),
    /// Print the admin API's OpenAPI document (the one served at /admin/api/openapi.json).
    Openapi,
    /// Master keys: their ids, and re-sealing every secret under the active key.
    #[command(subcommand)]
    Keys(KeysCmd),
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Print the id of the active key and of each previous key (from secrets.key or
    /// secrets.key_file, secrets.previous_keys and secrets.previous_key_files).
    Id,
    /// Re-seal every secret under the active key and print a JSON report. Values under a
    /// previous key keep opening meanwhile; run it again after an interruption to finish (only
    /// what is left is re-sealed). On MongoDB it runs while the servers serve (give every
    /// process the new key first). The embedded store is single-process: stop the server
    /// first. Exits with status 3 if any value could not be re-sealed (see "unreadable" and
    /// "skipped"): keep the previous keys until a run reports "complete": true.
    Rotate,
}

#[derive(Subcommand)]
enum StoreCmd {
    /// Copy everything (organizations, installations, customers and their cards, change logs
    /// with their sequence numbers, so phones keep syncing) from one store into an empty one.
    /// Stop the Portico processes using the source first.
    Copy {
        /// The source: an embedded data directory, or a mongodb:// or mongodb+srv:// URI.
        #[arg(long)]
        from: String,
        /// The target (must be empty): an embedded data directory, or a MongoDB URI.
        #[arg(long)]
        to: String,
        /// The source's MongoDB database (default: the URI's, else "portico").
        #[arg(long)]
        from_database: Option<String>,
        /// The target's MongoDB database (default: the URI's, else "portico").
        #[arg(long)]
        to_database: Option<String>,
    },
}

#[derive(Subcommand)]
enum OrgCmd {
    /// Create an organization.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        id: Option<String>,
    },
    /// List organizations.
    List,
}

#[derive(Subcommand)]
enum AppCmd {
    /// Install an app kind for an organization (idempotent).
    Install {
        #[arg(long)]
        org: String,
        #[arg(long)]
        kind: String,
        /// Keep this installation id (migration from an older system).
        #[arg(long)]
        id: Option<String>,
        /// App configuration as JSON.
        #[arg(long)]
        config_json: Option<String>,
        /// A secret carried over, e.g. --secret password=… (repeatable).
        #[arg(long = "secret", value_name = "NAME=VALUE")]
        secrets: Vec<String>,
    },
    /// List an organization's installations.
    List {
        #[arg(long)]
        org: String,
    },
    /// Show an installation's status.
    Status {
        #[arg(long)]
        org: String,
        #[arg(long)]
        id: String,
    },
    /// Run an action (e.g. regenerate-password).
    Action {
        #[arg(long)]
        org: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        input_json: Option<String>,
    },
    /// Uninstall.
    Uninstall {
        #[arg(long)]
        org: String,
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand)]
enum CustomerCmd {
    /// Import customers from a JSON-lines file.
    Import {
        #[arg(long)]
        org: String,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print the effective configuration, secrets redacted.
    Print,
}

fn split_kv(s: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .with_context(|| format!("'{s}' is not KEY=VALUE"))?;
    Ok((k.trim().to_owned(), v.to_owned()))
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut overrides: Vec<(String, String)> = cli
        .set
        .iter()
        .map(|s| split_kv(s))
        .collect::<anyhow::Result<_>>()?;
    let is_demo = matches!(cli.command, Command::Demo { .. });
    if let Some(d) = &cli.data_dir {
        overrides.push(("store.data_dir".into(), d.display().to_string()));
    } else if is_demo {
        overrides.push(("store.data_dir".into(), "./data-demo".into()));
    }
    match &cli.command {
        Command::Serve { listen: Some(l) } | Command::Demo { listen: Some(l) } => {
            overrides.push(("server.listen".into(), l.clone()));
        }
        _ => {}
    }
    if is_demo {
        overrides.push(("secrets.create_key_file".into(), "true".into()));
    }
    let mut cfg = Config::load(cli.config.as_deref(), std::env::vars(), &overrides)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cfg.log.filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Command::Openapi = cli.command {
        use std::io::Write;
        let doc = portico_host::admin::openapi().to_pretty_json()?;
        // A closed pipe (`| head`) is an error, not a panic.
        writeln!(std::io::stdout(), "{doc}")?;
        return Ok(());
    }
    if let Command::Config(ConfigCmd::Print) = cli.command {
        print!("{}", cfg.print_redacted());
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve { .. } => {
            let listener = TcpListener::bind(&cfg.server.listen)
                .with_context(|| format!("cannot listen on {}", cfg.server.listen))?;
            let tls = tls::Tls::from_config(&cfg)?;
            if cfg.server.public_url.is_none() {
                let origin = format!("{}://{}", cfg.scheme(), listener.local_addr()?);
                cfg.server.public_url = Some(origin);
            }
            let portico = rt.block_on(server::build(&cfg, registry::builtin()?))?;
            eprintln!("portico listening on {}", cfg.public_url());
            rt.block_on(async { server::start_with_tls(portico, &cfg, listener, tls)?.await })?;
        }
        Command::Demo { .. } => {
            let listener = TcpListener::bind(&cfg.server.listen)
                .with_context(|| format!("cannot listen on {}", cfg.server.listen))?;
            let tls = tls::Tls::from_config(&cfg)?;
            if cfg.server.public_url.is_none() {
                let origin = format!("{}://{}", cfg.scheme(), listener.local_addr()?);
                cfg.server.public_url = Some(origin);
            }
            let data_dir = cfg.store.data_dir.clone();
            let token = match &cfg.admin.token {
                Some(t) => t.expose().clone(),
                None => demo::admin_token(&data_dir)?,
            };
            cfg.admin.token = Some(Secret::new(token.clone()));
            let portico = rt.block_on(server::build(&cfg, registry::builtin()?))?;
            let creds = rt.block_on(demo::seed(&portico, &data_dir, &token))?;
            println!("Portico demo is running at {}", cfg.public_url());
            println!(
                "  data directory: {} (master key: {})",
                data_dir.display(),
                cfg.key_file().display()
            );
            println!(
                "  admin page:     {}/admin/  (sign in with the admin token below; it has a QR code \
                 and a one-tap profile for phones)",
                cfg.public_url()
            );
            println!(
                "  admin API:      {}/admin/api  (Authorization: Bearer {})",
                cfg.public_url(),
                creds.admin_token
            );
            println!();
            println!("CardDAV — paste into your contacts app:");
            println!("  server URL: {}", creds.carddav_url);
            println!("  username:   {}", creds.carddav_username);
            println!("  password:   {}", creds.carddav_password);
            println!();
            println!(
                "Example app (hello): {}  (Authorization: Bearer {})",
                creds.hello_url, creds.hello_token
            );
            rt.block_on(async { server::start_with_tls(portico, &cfg, listener, tls)?.await })?;
        }
        Command::Org(cmd) => {
            let portico = rt.block_on(server::build(&cfg, registry::builtin()?))?;
            rt.block_on(org_cmd(&portico, cmd))?;
        }
        Command::App(cmd) => {
            let portico = rt.block_on(server::build(&cfg, registry::builtin()?))?;
            rt.block_on(app_cmd(&portico, cmd))?;
        }
        Command::Customers(CustomerCmd::Import { org, file }) => {
            let portico = rt.block_on(server::build(&cfg, registry::builtin()?))?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let report = rt.block_on(portico.import_customers(&OrgId::parse(&org)?, &text))?;
            print_json(&report)?;
        }
        Command::Config(_) | Command::Openapi => {}
        Command::Keys(KeysCmd::Id) => {
            // Reads the keys only: never creates a key file, never opens the store.
            let mut keys_cfg = cfg.clone();
            keys_cfg.secrets.create_key_file = false;
            let (sealer, _) = Sealer::from_config(&keys_cfg)?;
            print_json(&serde_json::json!({
                "active": sealer.active_id(),
                "previous": sealer.previous_ids(),
            }))?;
        }
        Command::Keys(KeysCmd::Rotate) => {
            let portico = match rt.block_on(server::build(&cfg, registry::builtin()?)) {
                Ok(p) => p,
                Err(e)
                    if cfg.store.kind == StoreKind::Embedded
                        && format!("{e:#}").contains("already open") =>
                {
                    anyhow::bail!(
                        "the embedded store in {} is in use by another process: it is \
                         single-process, so stop the server before running `portico keys rotate` \
                         ({e:#})",
                        cfg.store.data_dir.display()
                    )
                }
                Err(e) => return Err(e),
            };
            let report = rt.block_on(keys::rotate(&portico))?;
            print_json(&report)?;
            if !report.complete {
                eprintln!(
                    "rotation incomplete: {} value(s) unreadable, {} installation(s) skipped; \
                     keep the previous keys configured (see the report)",
                    report.unreadable.len(),
                    report.skipped.len()
                );
                std::process::exit(3);
            }
        }
        Command::Store(StoreCmd::Copy {
            from,
            to,
            from_database,
            to_database,
        }) => {
            let report = rt.block_on(async {
                let src = open_store(&from, from_database, true).await?;
                let dst = open_store(&to, to_database, false).await?;
                anyhow::Ok(copy::copy_all(src.as_ref(), dst.as_ref()).await?)
            })?;
            print_json(&report)?;
            eprintln!(
                "copied. Installation secrets stay sealed with the source's master key: start the \
                 hosts on the target with the same key (secrets.key or secrets.key_file)."
            );
        }
    }
    Ok(())
}

fn is_mongodb_uri(s: &str) -> bool {
    s.starts_with("mongodb://") || s.starts_with("mongodb+srv://")
}

/// A store named on the command line: a MongoDB URI, or an embedded data directory (a source
/// must already hold a store: a typo must not copy an empty one).
async fn open_store(
    spec: &str,
    database: Option<String>,
    source: bool,
) -> anyhow::Result<Arc<dyn Store>> {
    if is_mongodb_uri(spec) {
        let db = match database {
            Some(d) => d,
            None => mongo::client_options(spec)
                .await?
                .default_database
                .unwrap_or_else(|| "portico".into()),
        };
        // Copying writes no customer through the transactional path: detection is enough.
        return Ok(Arc::new(MongoStore::connect(spec, &db).await?));
    }
    anyhow::ensure!(
        database.is_none(),
        "--from-database/--to-database only apply to a MongoDB URI, not '{spec}'"
    );
    let dir = PathBuf::from(spec);
    if source {
        let file = dir.join("portico.redb");
        anyhow::ensure!(
            file.is_file(),
            "{} does not exist: '{spec}' is not an embedded data directory",
            file.display()
        );
    }
    Ok(Arc::new(EmbeddedStore::open(&dir)?))
}

async fn org_cmd(p: &Arc<Portico>, cmd: OrgCmd) -> anyhow::Result<()> {
    match cmd {
        OrgCmd::Create { slug, name, id } => {
            let id = id.map(|i| OrgId::parse(&i)).transpose()?;
            print_json(&p.create_org(&slug, &name, id).await?)
        }
        OrgCmd::List => print_json(&p.store.list_orgs().await?),
    }
}

async fn app_cmd(p: &Arc<Portico>, cmd: AppCmd) -> anyhow::Result<()> {
    match cmd {
        AppCmd::Install {
            org,
            kind,
            id,
            config_json,
            secrets,
        } => {
            let config = match config_json {
                Some(j) => serde_json::from_str(&j).context("--config-json is not JSON")?,
                None => serde_json::Value::Null,
            };
            let mut input = InstallInput {
                config,
                ..Default::default()
            };
            for s in secrets {
                let (k, v) = split_kv(&s)?;
                input.secrets.insert(k, Secret::new(v));
            }
            let id = id.map(|i| InstallationId::parse(&i)).transpose()?;
            print_json(&p.install(&OrgId::parse(&org)?, &kind, input, id).await?)
        }
        AppCmd::List { org } => print_json(&p.installations(&OrgId::parse(&org)?).await?),
        AppCmd::Status { org, id } => {
            let (view, status) = p
                .status(&OrgId::parse(&org)?, &InstallationId::parse(&id)?)
                .await?;
            print_json(&serde_json::json!({ "installation": view, "status": status }))
        }
        AppCmd::Action {
            org,
            id,
            name,
            input_json,
        } => {
            let input = match input_json {
                Some(j) => serde_json::from_str(&j).context("--input-json is not JSON")?,
                None => serde_json::json!({}),
            };
            let r = p
                .action(
                    &OrgId::parse(&org)?,
                    &InstallationId::parse(&id)?,
                    &name,
                    input,
                )
                .await?;
            match r.file {
                Some(f) => {
                    use std::io::Write;
                    std::io::stdout().write_all(&f.content)?;
                    Ok(())
                }
                None => print_json(&r.result),
            }
        }
        AppCmd::Uninstall { org, id } => {
            p.uninstall(&OrgId::parse(&org)?, &InstallationId::parse(&id)?)
                .await?;
            println!("uninstalled");
            Ok(())
        }
    }
}
