//! Listener binding (SO_REUSEADDR, port 0 allowed) and the data-path lock shared by daemons.
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::Path;

/// Resolves a Go-style listen address: `host:port`, `:port` (all interfaces) or `[v6]:port`.
pub fn resolve_listen_addr(addr: &str) -> io::Result<SocketAddr> {
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    full.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))
}

/// Whether a listen address is `host:port` (TCP) rather than a unix socket path: the rule of
/// Go's `net.SplitHostPort` that NSQ uses (a last colon, and no other colon outside brackets).
pub fn is_tcp_addr(addr: &str) -> bool {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest
            .find("]:")
            .is_some_and(|i| !rest[..i].contains('[') && !rest[i + 2..].contains(':'));
    }
    match addr.rfind(':') {
        Some(i) => !addr[..i].contains(':') && !addr[..i].contains('[') && !addr[..i].contains(']'),
        None => false,
    }
}

/// Binds a TCP listener with SO_REUSEADDR so a restarted daemon can rebind at once.
pub fn bind_tcp(addr: &str) -> io::Result<TcpListener> {
    let sa = resolve_listen_addr(addr)?;
    let domain = socket2::Domain::for_address(sa);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&sa.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Holds an exclusive `flock` on the data directory for the life of the process, so two
/// daemons (ours or Go's, which takes the same lock) never share it.
pub struct DirLock {
    _file: File,
}

fn errno_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => text,
    }
}

pub fn lock_dir(dir: &Path) -> Result<DirLock, String> {
    let file =
        File::open(dir).map_err(|e| format!("open {}: {}", dir.display(), errno_text(&e)))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |e| {
            format!(
                "cannot flock directory {} - {} (possibly in use by another instance of nsqd)",
                dir.display(),
                errno_text(&io::Error::from(e))
            )
        },
    )?;
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails() {
        let d = tempfile_dir();
        let _a = lock_dir(&d).unwrap();
        let e = lock_dir(&d).err().unwrap();
        assert!(e.contains("resource temporarily unavailable"), "{e}");
        let _ = std::fs::remove_dir(&d);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("nsq-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn tcp_or_unix() {
        for tcp in [
            "127.0.0.1:4150",
            ":4150",
            "localhost:0",
            "[::1]:4150",
            "host:port",
        ] {
            assert!(is_tcp_addr(tcp), "{tcp}");
        }
        for unix in ["/tmp/nsqd.sock", "nsqd.sock", "::1:4150", "[::1]"] {
            assert!(!is_tcp_addr(unix), "{unix}");
        }
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(resolve_listen_addr(":4150").unwrap().port(), 4150);
        let l = bind_tcp("127.0.0.1:0").unwrap();
        assert_ne!(l.local_addr().unwrap().port(), 0);
    }
}
