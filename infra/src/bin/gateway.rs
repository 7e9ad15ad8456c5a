//! The local gateway: serves every route of template.yaml on 127.0.0.1 by calling the functions
//! in-process. With `--create-resources` it first creates the table, bucket and sender identity
//! from the template; with `--seed` it loads demo data and prints the links to open; with
//! `--schedule` it runs the publish job every minute like the template's schedule; with
//! `--demo-json <path>` it also writes the seeded links there (for the browser tests); with
//! `--deployed <path>` each function gets exactly the environment a deployment resolved for it
//! (scripts/deploy-rehearsal).
//!
//! Environment: TABLE_NAME, BUCKET_NAME, SENDER_EMAIL, PUBLIC_BASE_URL, PLATFORM_ADMIN_KEY,
//! MOTO_URL (for the dev mailbox) and the standard AWS variables (AWS_ENDPOINT_URL_*).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use portal_infra::dev_checkout::DevStripe;
use portal_infra::functions::Functions;
use portal_infra::gateway::Gateway;
use portal_infra::mailbox::Mailbox;
use portal_infra::resources::{self, LocalNames};
use portal_infra::seed;
use portal_infra::template::Template;
use portal_shared::foundation::clock::Clock;
use portal_shared::{web::entry, Config};

struct Args {
    port: u16,
    template: String,
    create_resources: bool,
    seed: bool,
    schedule: bool,
    demo_json: Option<String>,
    /// Each function's environment as a deployment resolved it (scripts/deploy-rehearsal).
    deployed: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        port: 3000,
        template: "template.yaml".into(),
        create_resources: false,
        seed: false,
        schedule: false,
        demo_json: None,
        deployed: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--port" => a.port = it.next().and_then(|p| p.parse().ok()).ok_or("--port needs a number")?,
            "--template" => a.template = it.next().ok_or("--template needs a path")?,
            "--create-resources" => a.create_resources = true,
            "--seed" => a.seed = true,
            "--schedule" => a.schedule = true,
            "--demo-json" => a.demo_json = Some(it.next().ok_or("--demo-json needs a path")?),
            "--deployed" => a.deployed = Some(it.next().ok_or("--deployed needs a path")?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// With `PAYMENT_PROVIDER=dev`, the Stripe stand-in on its own origin (the next port, or any free
/// one) and the environment that points Pay Now at it; otherwise the environment as it is.
async fn payments(
    port: u16,
    mut env: HashMap<String, String>,
) -> Result<(HashMap<String, String>, Option<(Arc<DevStripe>, tokio::net::TcpListener)>), Box<dyn std::error::Error>> {
    if env.get("PAYMENT_PROVIDER").map(String::as_str) != Some("dev") {
        return Ok((env, None));
    }
    let want = if port == 0 { 0 } else { port.wrapping_add(1) };
    let listener = match tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], want))).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?,
    };
    let origin = format!("http://{}", listener.local_addr()?);
    let key = format!("sk_test_dev_{}", ulid::Ulid::new().to_string().to_lowercase());
    env.insert("PAYMENT_PROVIDER".into(), "stripe".into());
    env.insert("STRIPE_SECRET_KEY".into(), key.clone());
    env.insert("STRIPE_API_BASE".into(), origin.clone());
    env.insert("STRIPE_CHECKOUT_ORIGIN".into(), origin.clone());
    let secret = env
        .get("PAYMENT_WEBHOOK_SECRETS")
        .and_then(|v| v.split(',').map(str::trim).find(|s| !s.is_empty()))
        .ok_or("PAYMENT_WEBHOOK_SECRETS is required with PAYMENT_PROVIDER=dev")?
        .to_owned();
    let base = env.get("PUBLIC_BASE_URL").cloned().unwrap_or_else(|| "http://127.0.0.1:3000".into());
    let base = base.trim_end_matches('/');
    let stripe = DevStripe::new(origin, key, format!("{base}/webhooks/payments"), secret);
    Ok((env, Some((Arc::new(stripe), listener))))
}

/// A debug build keeps whole async call chains (gateway -> handler -> store -> SDK) on the worker
/// threads' stacks: give them room (Lambda runs optimized release binaries).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    tokio::runtime::Builder::new_multi_thread().thread_stack_size(16 << 20).enable_all().build()?.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    entry::init_tracing();
    let args = args()?;
    let (mut env, dev_payments) = payments(args.port, std::env::vars().collect()).await?;
    let sdk = entry::aws_config().await;
    if args.create_resources {
        let var = |k: &str| env.get(k).cloned().ok_or(format!("{k} is required"));
        let names = LocalNames { table: var("TABLE_NAME")?, bucket: var("BUCKET_NAME")?, sender: var("SENDER_EMAIL")? };
        resources::create_all(&sdk, &Template::load(&args.template)?, &names).await?;
        env.insert("SES_CONFIGURATION_SET".into(), names.configuration_set());
        // The secrets go where the template keeps them (Secrets Manager), from the plain values
        // a local run is given; the functions get only their names.
        let values: Vec<(&str, String)> =
            resources::SECRETS.iter().filter_map(|(id, plain)| Some((*id, env.get(*plain)?.clone()))).collect();
        for (variable, arn) in resources::put_secrets(&sdk, &names.table, &values).await? {
            env.insert(variable, arn);
        }
    }
    let template = Template::load(&args.template)?;
    let (config, functions) = match &args.deployed {
        // Exactly what a deployment gave each function (the bucket for S3 events: the publish
        // function's); local knobs (endpoints, credentials) from this process.
        Some(path) => {
            let deployed: HashMap<String, HashMap<String, String>> = serde_json::from_slice(&std::fs::read(path)?)?;
            let publish = deployed.get("PublishFunction").cloned().unwrap_or_default();
            let config = Config::from_lookup(|k| publish.get(k).or(env.get(k)).cloned())?;
            let functions =
                Functions::from_deployed(&sdk, &template, &deployed, |k| env.get(k).cloned(), Clock::system())?;
            (config, functions)
        }
        None => (
            Config::from_lookup(|k| env.get(k).cloned())?,
            Functions::from_template(&sdk, &template, |k| env.get(k).cloned(), Clock::system())?,
        ),
    };
    let functions = Arc::new(functions);
    let mailbox = std::env::var("MOTO_URL").ok().map(Mailbox::new);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await?;
    let addr = listener.local_addr()?;
    // Uploads complete on their own, as S3 events do on AWS.
    let s3_events = config.bucket_name.clone().map(|bucket| {
        let events =
            portal_infra::s3_events::S3Events::new(&sdk, functions.clone(), bucket, config.s3_force_path_style);
        Arc::new(events).run(Duration::from_secs(1))
    });
    let gateway = Arc::new(Gateway::new(functions.clone(), mailbox, &Template::load(&args.template)?));
    let server = gateway.serve(listener);
    let base = format!("http://{addr}");
    eprintln!("gateway listening on {base}");
    let provider = dev_payments.map(|(stripe, listener)| {
        eprintln!("dev payment provider (Stripe stand-in) listening on {}", stripe.origin);
        let origin = stripe.origin.clone();
        (stripe.serve(listener), origin)
    });

    if args.schedule {
        let functions = functions.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let report = functions.publish.publish_due().await;
                tracing::info!(
                    published = report.published,
                    emails_sent = report.emails.sent,
                    emails_failed = report.emails.failed,
                    status = report.status,
                    "scheduled publish job ran"
                );
            }
        });
    }

    if args.seed {
        // (A rehearsal reads the deployed secret and hands it over as SEED_ADMIN_KEY.)
        let admin = env
            .get("PLATFORM_ADMIN_KEY")
            .or(env.get("SEED_ADMIN_KEY"))
            .ok_or("PLATFORM_ADMIN_KEY is required to seed")?;
        let demo = seed::seed(&base, admin).await?;
        if let Some(path) = &args.demo_json {
            // For the browser and contract tests; holds live links and the staff key, so it goes to
            // a private cache folder only.
            let json = serde_json::json!({
                "base": base,
                "company_id": demo.company_id,
                "inspection_id": demo.inspection_id,
                "staff_api_key": demo.staff_api_key,
                "client_link": demo.client_link,
                "agent_link": demo.agent_link,
                "listing_agent_link": demo.listing_agent_link,
                "share_link": demo.share_link,
                "report_id": demo.report_id,
                "contact_link": demo.contact_link,
                "me_link": format!("{base}/me/{}", demo.company_id),
                "payment_provider": provider.as_ref().map(|(_, origin)| origin.clone()),
            });
            std::fs::write(path, serde_json::to_vec_pretty(&json)?)?;
        }
        println!();
        println!("Inspection portal is running at {base}");
        println!();
        println!("  Client portal (Jane, client):      {}", demo.client_link);
        println!("  Agent portal (Bob, buyer's agent): {}", demo.agent_link);
        println!("  Listing agent portal (Lena, order details only): {}", demo.listing_agent_link);
        println!("  Unknown-user share link:           {}", demo.share_link);
        println!("  Jane's report (through the gate):  {}/documents/{}", demo.client_link, demo.report_id);
        println!("  Customer contact portal (Fran):    {}", demo.contact_link);
        println!("  All my inspections (sign in as jane@example.com): {base}/me/{}", demo.company_id);
        println!("  Dev mailbox (sent emails):         {base}/_dev/mailbox");
        if let Some((_, origin)) = &provider {
            println!("  Dev payment provider (Stripe stand-in, another origin): {origin}/_dev/requests");
        }
        println!();
        println!("  Staff API key:       {}", demo.staff_api_key);
        println!("  Platform admin key:  {admin}");
        println!(
            "  Try: curl -H 'Authorization: Bearer {}' {base}/staff/inspections/{}",
            demo.staff_api_key, demo.inspection_id
        );
        println!();
        println!("Press Ctrl-C to stop.");
    }

    tokio::signal::ctrl_c().await?;
    server.abort();
    if let Some(task) = s3_events {
        task.abort();
    }
    if let Some((task, _)) = provider {
        task.abort();
    }
    Ok(())
}
