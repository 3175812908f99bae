//! Vercel: the real REST client (`client`) and the simulator that stands in for Vercel in tests and
//! the demo (`sim`). Every call from task handlers goes through the VercelActor
//! (`gateway`), which owns rate limiting and retries.

pub mod client;
pub mod gateway;
pub mod handlers;
pub mod sim;
