//! Actor tests against real repositories changed by `git` while sessions watch them.

mod session;
