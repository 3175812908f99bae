//! The Vercel simulator (being written).
