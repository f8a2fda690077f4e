#if canImport(Glibc)
import Glibc
#endif

/// An owned file descriptor, closed when the owner goes away. Reference semantics so that
/// devices, threads and the VM can share one descriptor without double closes.
public final class OwnedDescriptor: Sendable {
    public let rawValue: Int32

    public init(adopting fd: Int32) {
        precondition(fd >= 0, "invalid file descriptor")
        rawValue = fd
    }

    deinit { close(rawValue) }

    /// Opens `path`; the error names the path.
    public static func open(_ path: String, flags: Int32, mode: mode_t = 0) throws(SystemError) -> OwnedDescriptor {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError("open \(path)") }
        return OwnedDescriptor(adopting: fd)
    }

    /// Writes all of `bytes`, retrying on EINTR and short writes.
    public func writeAll(_ bytes: some Collection<UInt8>) throws(SystemError) {
        var result: SystemError?
        Array(bytes).withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(rawValue, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    result = SystemError("write"); return
                }
                offset += n
            }
        }
        if let result { throw result }
    }

    /// Reads up to `maxCount` bytes; an empty result means end of file.
    public func read(maxCount: Int) throws(SystemError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: maxCount)
        var n = -1
        repeat {
            n = out.withUnsafeMutableBytes { Glibc.read(rawValue, $0.baseAddress, maxCount) }
        } while n < 0 && errno == EINTR
        guard n >= 0 else { throw SystemError("read") }
        out.removeLast(maxCount - n)
        return out
    }
}
