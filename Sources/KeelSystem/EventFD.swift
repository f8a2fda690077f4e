import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// A Linux eventfd: the doorbell between KVM (irqfd, ioeventfd) and Keel's threads.
public final class EventFD: Sendable {
    public let descriptor: OwnedDescriptor
    public var rawValue: Int32 { descriptor.rawValue }

    public init(nonBlocking: Bool = false) throws(SystemError) {
        let fd = eventfd(0, Int32(EFD_CLOEXEC) | (nonBlocking ? Int32(EFD_NONBLOCK) : 0))
        guard fd >= 0 else { throw SystemError("eventfd") }
        descriptor = OwnedDescriptor(adopting: fd)
    }

    /// Adds `value` to the counter (wakes readers; for an irqfd, injects the interrupt).
    public func signal(_ value: UInt64 = 1) {
        var v = value
        _ = withUnsafeBytes(of: &v) { write(rawValue, $0.baseAddress, 8) }
    }

    /// Blocks until the counter is non-zero (unless non-blocking), returns and clears it.
    /// Returns 0 when a non-blocking eventfd had nothing pending.
    public func wait() -> UInt64 {
        var v: UInt64 = 0
        while true {
            let n = withUnsafeMutableBytes(of: &v) { Glibc.read(rawValue, $0.baseAddress, 8) }
            if n == 8 { return v }
            if n < 0 && errno == EINTR { continue }
            return 0
        }
    }
}
