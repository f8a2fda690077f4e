#if canImport(Glibc)
import Glibc
#endif

/// Waits until one of a few descriptors is readable or a timeout passes (poll(2)). I/O threads
/// with a handful of eventfds use this instead of epoll: nothing to register or unregister.
public enum Poller {
    /// The indexes of `descriptors` that are readable, empty on timeout or EINTR.
    /// - Parameter timeoutMilliseconds: -1 waits forever.
    public static func waitReadable(_ descriptors: [Int32], timeoutMilliseconds: Int32) -> [Int] {
        var fds = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let n = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeoutMilliseconds) }
        guard n > 0 else { return [] }
        return fds.indices.filter { fds[$0].revents != 0 }
    }
}
