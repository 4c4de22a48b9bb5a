//! Attach frames: how the engine hands a container's or an exec's streams to a front end.
//! A stream from [`crate::containers::Containers::attach`] or `exec_start` is a sequence of
//! Docker's multiplexed frames (an 8-byte header: the stream number, three zero bytes, the
//! payload's length big-endian), and an exec's ends with a frame of stream [`EXIT`] whose
//! payload is the exit code in decimal. The shim writes them; this is their vocabulary for
//! front ends, which never talk to the shim themselves.

pub use berth_shim::{frame_header as header, EXIT, STDERR, STDIN, STDOUT};
