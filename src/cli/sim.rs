//! `vercel-sim`: the Vercel API simulator as a standalone server, until SIGTERM/SIGINT.

use clap::Args;

use super::CliError;
use crate::vercel::sim::{self, SimConfig};

/// Flags of `vercel-sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0 = any free port; the URL is printed).
    #[arg(long, default_value_t = 4010)]
    port: u16,
    /// Seconds from QUEUED to READY.
    #[arg(long, default_value_t = 2.0)]
    build_secs: f64,
    /// Answer 429 beyond this many calls per minute (default: unlimited).
    #[arg(long)]
    rate_limit_per_min: Option<u32>,
    /// Probability (0..1) of a 500 on any call.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Added to every response.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// The Bearer token it accepts (default: VERCEL_TOKEN, else `sim-token`).
    #[arg(long)]
    token: Option<String>,
}

/// Check the flags, start the simulator, print its URL and serve until a signal.
pub async fn run(args: &SimArgs) -> Result<(), CliError> {
    let config = sim_config(args)?;
    crate::telemetry::init("info", crate::config::LogFormat::Pretty);
    let server = sim::start(config, args.port)
        .await
        .map_err(CliError::Simulator)?;
    println!("Vercel simulator listening on {}", server.url);
    println!(
        "use: VERCEL_API_URL={} (stats: {}/_sim/stats)",
        server.url, server.url
    );
    crate::app::shutdown_signal().await;
    server.stop().await;
    Ok(())
}

/// The simulator's behaviour from the flags; the token defaults to `VERCEL_TOKEN`, else
/// `sim-token`.
fn sim_config(args: &SimArgs) -> Result<SimConfig, CliError> {
    if !(0.0..=1.0).contains(&args.fail_rate) {
        return Err(CliError::invalid("fail-rate", "must be from 0 to 1"));
    }
    if !(args.build_secs >= 0.0 && args.build_secs <= 3600.0) {
        return Err(CliError::invalid("build-secs", "must be from 0 to 3600"));
    }
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var("VERCEL_TOKEN").ok().filter(|t| !t.is_empty()))
        .unwrap_or_else(|| "sim-token".into());
    Ok(SimConfig {
        token,
        build_secs: args.build_secs,
        rate_limit_per_min: args.rate_limit_per_min,
        fail_rate: args.fail_rate,
        latency_ms: args.latency_ms,
    })
}
