#if canImport(Glibc)
import Glibc
#endif

/// Unix domain stream sockets for the management plane: keeld's API socket and each worker's
/// control socket. Paths are limited to `maximumPathLength` bytes (the kernel's sun_path).
public enum UnixSocket {
    /// Longest socket path `sockaddr_un` holds (108 bytes with the terminating NUL).
    public static let maximumPathLength = 107

    /// Binds and listens on `path` with permissions `mode` (owner-only by default). A stale
    /// socket file nobody listens on is replaced; a live one is an error (EADDRINUSE).
    public static func listen(path: String, mode: mode_t = 0o600, backlog: Int32 = 64) throws(SystemError) -> OwnedDescriptor {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else { throw SystemError("bind \(path) (not a socket)", errno: EEXIST) }
            if (try? connect(path: path)) != nil { throw SystemError("bind \(path) (another process listens there)", errno: EADDRINUSE) }
            unlink(path)
        }
        let socket = try makeSocket()
        // The file gets its permissions at bind time from the umask: never wider than `mode`.
        let old = umask(~mode & 0o777)
        let rc = withAddress(path) { bind(socket.rawValue, $0, $1) }
        let bindErrno = errno
        umask(old)
        guard let rc, rc == 0 else { throw SystemError("bind \(path)", errno: rc == nil ? ENAMETOOLONG : bindErrno) }
        guard chmod(path, mode) == 0 else { throw SystemError("chmod \(path)") }
        guard Glibc.listen(socket.rawValue, backlog) == 0 else { throw SystemError("listen \(path)") }
        return socket
    }

    /// Waits for and returns the next connection on `listener`.
    public static func accept(_ listener: OwnedDescriptor) throws(SystemError) -> OwnedDescriptor {
        while true {
            let fd = Glibc.accept(listener.rawValue, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return OwnedDescriptor(adopting: fd)
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            throw SystemError("accept")
        }
    }

    /// Connects to the socket at `path`.
    public static func connect(path: String) throws(SystemError) -> OwnedDescriptor {
        let socket = try makeSocket()
        while true {
            let rc = withAddress(path) { Glibc.connect(socket.rawValue, $0, $1) }
            guard let rc else { throw SystemError("connect \(path)", errno: ENAMETOOLONG) }
            if rc == 0 { return socket }
            if errno == EINTR { continue }
            throw SystemError("connect \(path)")
        }
    }

    private static func makeSocket() throws(SystemError) -> OwnedDescriptor {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        return OwnedDescriptor(adopting: fd)
    }

    /// Calls `body` with a `sockaddr_un` for `path`; nil when the path is too long.
    private static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maximumPathLength, !bytes.contains(0) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}

extension OwnedDescriptor {
    /// Writes all of `bytes` to a socket without raising SIGPIPE when the peer has gone (the
    /// error is EPIPE instead).
    public func sendAll(_ bytes: some Collection<UInt8>) throws(SystemError) {
        var result: SystemError?
        Array(bytes).withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = send(rawValue, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    result = SystemError("send"); return
                }
                offset += n
            }
        }
        if let result { throw result }
    }

    /// Sends what the socket takes now without blocking: the count sent, 0 when its buffer is
    /// full, nil when the peer has gone or the socket failed.
    public func sendWithoutBlocking(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes { buffer in
            while true {
                let n = send(rawValue, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if n >= 0 { return n }
                if errno == EINTR { continue }
                return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : nil
            }
        }
    }

    /// Reads fail with EAGAIN after `milliseconds` without data (SO_RCVTIMEO); 0 waits forever.
    public func setReceiveTimeout(milliseconds: Int) {
        var tv = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        _ = setsockopt(rawValue, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Closes the sending direction: the peer reads end of file.
    public func shutdownWriting() { _ = shutdown(rawValue, Int32(SHUT_WR)) }

    /// Closes both directions (wakes a thread blocked reading this socket).
    public func shutdownBoth() { _ = shutdown(rawValue, Int32(SHUT_RDWR)) }
}
