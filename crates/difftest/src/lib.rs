//! Support for differential testing of `pharos-promql` against a real
//! Prometheus 2.42: a deterministic data set, a Prometheus process fed with
//! it, and result comparison with Prometheus' ordering guarantees.

pub mod compare;
pub mod corpus;
pub mod data;
pub mod prom;
pub mod rng;
