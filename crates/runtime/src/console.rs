//! The container's terminal. As runc does, the pty is created inside the container (from its
//! own devpts instance), its master is sent over `--console-socket` with SCM_RIGHTS, and the
//! slave becomes the process's stdio and controlling terminal, bind-mounted on /dev/console.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;

use crate::error::{Context, Error, Result};

/// Connects to the console socket given on the command line.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path)
        .ctx(|| format!("connect to console socket {}", path.display()))?;
    Ok(s.into())
}

/// Opens a new pty pair from /dev/ptmx: (master, slave, slave path).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd, String)> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "open /dev/ptmx".to_string())?;
    nix::pty::grantpt(&master).ctx(|| "grantpt".to_string())?;
    nix::pty::unlockpt(&master).ctx(|| "unlockpt".to_string())?;
    let name = nix::pty::ptsname_r(&master).ctx(|| "ptsname".to_string())?;
    let slave = open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {name}"))?;
    // SAFETY: posix_openpt returned a fresh descriptor that only `master` owns; into_raw_fd
    // hands that ownership to the OwnedFd.
    let master = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(master)) };
    Ok((master, slave, name))
}

/// Sends the pty master over the console socket, with the pty's name as the payload.
pub fn send_master(socket: &OwnedFd, master: &OwnedFd, name: &str) -> Result<()> {
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .ctx(|| "send pty master to console socket".to_string())?;
    Ok(())
}

/// Sets the window size.
pub fn set_size(fd: RawFd, height: u16, width: u16) {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a valid winsize struct.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// Makes the slave the stdio and controlling terminal of a new session.
pub fn make_controlling(slave: &OwnedFd) -> Result<()> {
    nix::unistd::setsid().ctx(|| "setsid".to_string())?;
    // SAFETY: TIOCSCTTY takes an integer argument.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(Error::Sys {
            context: "make the pty the controlling terminal".into(),
            source: nix::errno::Errno::last(),
        });
    }
    for target in 0..3 {
        // SAFETY: dup2 onto 0..2 replaces the process's stdio; no Rust object owns those numbers.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(Error::Sys {
                context: format!("dup pty onto fd {target}"),
                source: nix::errno::Errno::last(),
            });
        }
    }
    Ok(())
}

/// Bind-mounts the pty slave onto /dev/console.
pub fn mount_console(slave_path: &str) -> Result<()> {
    let console = Path::new("/dev/console");
    if !console.exists() {
        std::fs::File::create(console).ctx(|| "create /dev/console".to_string())?;
    }
    mount(
        Some(slave_path),
        console,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| format!("bind {slave_path} to /dev/console"))
}
