//! The event loop: one poll over the control socket, the signalfd, the container's input and outputs, the clients and the execs' inputs.

use super::*;

impl Shim {
    pub(crate) fn run(&mut self) {
        loop {
            self.persist();
            let now = Instant::now();
            if let Some(f) = self.finished {
                let flushed = self.clients.iter().all(|c| c.out.is_empty());
                if flushed || now >= f + LINGER {
                    break;
                }
            }
            if self.kill_at.is_some_and(|t| now >= t) {
                self.kill_at = None;
                if let Some(c) = &self.container {
                    let _ = c.kill(Signal::SIGKILL, true);
                }
            }
            if self.restart_at.is_some_and(|t| now >= t) {
                self.restart_at = None;
                self.restart();
            }
            let deadline = [
                self.kill_at,
                self.restart_at,
                self.finished.map(|f| f + LINGER),
            ]
            .into_iter()
            .flatten()
            .min();
            let timeout = deadline
                .map(|d| d.saturating_duration_since(now).as_millis().min(60_000) as i32 + 1)
                .unwrap_or(-1);
            self.poll_once(timeout);
        }
        self.persist();
        for c in &mut self.clients {
            c.flush();
        }
        let _ = std::fs::remove_file(&self.cfg.socket);
    }

    pub(super) fn poll_once(&mut self, timeout: i32) {
        // Slots: 0 listener, 1 signalfd, 2 the container's input, then outputs, then
        // clients, then the execs' inputs.
        let writable = |i: Option<&Input>| match i.and_then(Input::poll_fd) {
            Some(fd) => pollfd(fd, libc::POLLOUT),
            None => pollfd(-1, 0),
        };
        let mut fds = vec![
            pollfd(self.listener.as_raw_fd(), libc::POLLIN),
            pollfd(self.sigfd.as_fd().as_raw_fd(), libc::POLLIN),
            writable(self.input.as_ref()),
        ];
        for (_, fd, _) in &self.outputs {
            fds.push(pollfd(fd.as_raw_fd(), libc::POLLIN));
        }
        for c in &self.clients {
            let mut ev = 0;
            if !(c.eof || self.input_full(&c.kind)) {
                ev |= libc::POLLIN;
            }
            if !c.out.is_empty() {
                ev |= libc::POLLOUT;
            }
            fds.push(pollfd(c.stream.as_raw_fd(), ev));
        }
        let first_exec = fds.len();
        for e in &self.execs {
            fds.push(writable(e.input.as_ref()));
        }
        // SAFETY: `fds` is a valid, initialised array of pollfd of the length passed.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n <= 0 {
            return;
        }
        let ready = |i: usize| fds[i].revents != 0;
        if ready(2) {
            if let Some(i) = &mut self.input {
                i.pump();
            }
        }
        for (k, fd) in fds.iter().enumerate().skip(first_exec) {
            if fd.revents != 0 {
                if let Some(i) = &mut self.execs[k - first_exec].input {
                    i.pump();
                }
            }
        }
        // The slots were laid out for these outputs; reaping (which replaces them) comes last.
        let nout = first_exec - 3 - self.clients.len();
        let mut closed = Vec::new();
        for i in 0..nout {
            if ready(3 + i) && !self.read_output(i) {
                closed.push(i);
            }
        }
        for (k, fd) in fds.iter().enumerate().take(first_exec).skip(3 + nout) {
            if fd.revents & libc::POLLOUT != 0 {
                self.clients[k - 3 - nout].flush();
            }
            if fd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                self.read_client(k - 3 - nout);
            }
        }
        for i in closed.into_iter().rev() {
            self.outputs.remove(i);
        }
        if ready(0) {
            while let Ok((s, _)) = self.listener.accept() {
                let _ = s.set_nonblocking(true);
                self.clients.push(Client {
                    stream: s,
                    kind: Kind::Pending,
                    inbuf: Vec::new(),
                    out: VecDeque::new(),
                    eof: false,
                    dead: false,
                });
            }
        }
        if ready(1) {
            while let Ok(Some(_)) = self.sigfd.read_signal() {}
            self.reap();
        }
        // Last: reaping may have finished clients (an exec's stream).
        self.clients.retain(|c| !c.dead);
    }

    /// Reads what output stream `i` has, up to [`OUTPUT_BURST`] reads, so that a container
    /// printing without end cannot starve the control socket (poll reports the rest on the
    /// next round); false once it is closed.
    pub(super) fn read_output(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 32 * 1024];
        for _ in 0..OUTPUT_BURST {
            let (stream, fd, owner) = &self.outputs[i];
            let (stream, owner) = (*stream, *owner);
            // SAFETY: reading into a stack buffer of the given length from a descriptor we own.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                return match e.kind() {
                    std::io::ErrorKind::WouldBlock => true,
                    std::io::ErrorKind::Interrupted => continue,
                    // EIO: the pty's last slave is closed.
                    _ => false,
                };
            }
            if n == 0 {
                return false;
            }
            let data = &buf[..n as usize];
            let hdr = frame_header(stream, data.len());
            if owner != 0 {
                for c in &mut self.clients {
                    if c.kind == (Kind::Exec { key: owner }) {
                        c.queue(&hdr);
                        c.queue(data);
                    }
                }
                continue;
            }
            if let Err(e) = self.log.write(stream, data) {
                log(&format!("write log: {e}"));
            }
            for c in &mut self.clients {
                if let Kind::Attach { stdout, stderr, .. } = c.kind {
                    if (stream == STDOUT && stdout) || (stream == STDERR && stderr) {
                        c.queue(&hdr);
                        c.queue(data);
                    }
                }
            }
        }
        true
    }

    /// The input that a client of this kind feeds is at its limit.
    pub(super) fn input_full(&self, kind: &Kind) -> bool {
        match kind {
            Kind::Attach { .. } => self.input.as_ref().is_some_and(Input::full),
            Kind::Exec { key } => self
                .execs
                .iter()
                .find(|e| e.key == *key)
                .and_then(|e| e.input.as_ref())
                .is_some_and(Input::full),
            _ => false,
        }
    }

    /// The input that a client of this kind feeds, if it feeds one.
    pub(super) fn input_of(&mut self, kind: &Kind) -> Option<&mut Input> {
        match kind {
            Kind::Attach { stdin: true, .. } => self.input.as_mut(),
            Kind::Exec { key } => self
                .execs
                .iter_mut()
                .find(|e| e.key == *key)
                .and_then(|e| e.input.as_mut()),
            _ => None,
        }
    }

    pub(super) fn read_client(&mut self, i: usize) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let c = &mut self.clients[i];
            if c.eof || c.dead {
                return;
            }
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    c.eof = true;
                    let kind = std::mem::replace(&mut c.kind, Kind::Pending);
                    if kind == Kind::Pending || kind == Kind::Subscriber {
                        c.dead = true;
                    }
                    // The writer is done: its input is closed once everything it sent has
                    // been written (a container's stdin only with StdinOnce, and never its
                    // terminal).
                    let closes = match kind {
                        Kind::Exec { .. } => true,
                        Kind::Attach { stdin: true, .. } => {
                            self.cfg.stdin_once && self.pty.is_none()
                        }
                        _ => false,
                    };
                    if closes {
                        if let Some(input) = self.input_of(&kind) {
                            input.close();
                        }
                    }
                    self.clients[i].kind = kind;
                    return;
                }
                Ok(n) => {
                    if c.kind == Kind::Pending {
                        c.inbuf.extend_from_slice(&buf[..n]);
                        if let Some(nl) = c.inbuf.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = c.inbuf.drain(..=nl).collect();
                            let rest = std::mem::take(&mut c.inbuf);
                            self.handle(i, &line);
                            // Input sent right behind the request line.
                            let kind = std::mem::replace(&mut self.clients[i].kind, Kind::Pending);
                            if let Some(input) = self.input_of(&kind) {
                                input.push(&rest);
                            }
                            self.clients[i].kind = kind;
                        } else if c.inbuf.len() > 64 * 1024 {
                            c.dead = true;
                            return;
                        }
                        continue;
                    }
                    let kind = std::mem::replace(&mut c.kind, Kind::Pending);
                    let full = match self.input_of(&kind) {
                        Some(input) => {
                            input.push(&buf[..n]);
                            input.full()
                        }
                        None => false,
                    };
                    self.clients[i].kind = kind;
                    if full {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    c.dead = true;
                    return;
                }
            }
        }
    }
}
