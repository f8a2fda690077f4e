import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// A host TAP interface: one Ethernet frame per read or write, non-blocking. The VM's synthetic
/// network adapter is bridged to it; the host side (address, routes, namespace) is the user's.
public final class TapDevice: Sendable {
    public let name: String
    public let descriptor: OwnedDescriptor

    /// Largest frame read or written (Ethernet header + 1500 bytes MTU + VLAN tag room).
    public static let maxFrameSize = 1522

    /// Opens `name`, creating the interface when it does not exist (that needs CAP_NET_ADMIN).
    public init(name: String) throws(SystemError) {
        let fd = ckvm_tap_open(name)
        guard fd >= 0 else {
            let code = errno
            let hint = code == EPERM || code == EACCES
                ? " (needs CAP_NET_ADMIN, or a TAP created for this user: ip tuntap add \(name) mode tap user $USER)" : ""
            throw SystemError("open TAP \(name)\(hint)", errno: code)
        }
        self.name = name
        descriptor = OwnedDescriptor(adopting: fd)
    }

    /// The next frame, or nil when none is waiting.
    public func read() -> [UInt8]? {
        var frame = [UInt8](repeating: 0, count: Self.maxFrameSize + 64)
        let n = frame.withUnsafeMutableBytes { Glibc.read(descriptor.rawValue, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        frame.removeSubrange(n...)
        return frame
    }

    /// Sends one frame to the host; false if the host side is not ready (down, queue full).
    @discardableResult
    public func write(_ frame: [UInt8]) -> Bool {
        frame.withUnsafeBytes { Glibc.write(descriptor.rawValue, $0.baseAddress, $0.count) } == frame.count
    }

    /// Whether the host side of the interface is administratively up (IFF_UP in sysfs flags).
    public var isUp: Bool {
        guard let text = try? Host.readFile("/sys/class/net/\(name)/flags"),
              let flags = UInt32(String(decoding: text, as: UTF8.self)
                  .trimmingPrefix("0x").filter { !$0.isWhitespace }, radix: 16) else { return false }
        return flags & 1 != 0
    }
}
