import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// A host TAP interface: one Ethernet frame per read or write, non-blocking, each behind a
/// 10-byte virtio-net header (IFF_VNET_HDR) that carries checksum and segmentation offload
/// requests both ways. The VM's synthetic network adapter is bridged to it; the host side
/// (address, routes, namespace) is the user's.
public final class TapDevice: @unchecked Sendable {
    public let name: String
    public let descriptor: OwnedDescriptor
    /// Read buffer, header for writes and iovec array, used only from the adapter's I/O thread.
    private let scratch: UnsafeMutableRawBufferPointer
    private let headerScratch: UnsafeMutableRawPointer
    private let vectors: UnsafeMutablePointer<iovec>
    /// iovecs that `vectors` holds: a GPA-direct send's 64 pages and more.
    private let vectorCapacity = 80

    public static let headerSize = VirtioNetHeader.size
    /// Largest frame read: a 64 KiB IP packet the kernel did not segment, tagged.
    public static let maxFrameSize = 0xFFFF + 18

    /// Set for one end of a `pair`: there is no interface behind it, and its link is always up.
    private let isSocket: Bool

    /// Opens `name`, creating the interface when it does not exist (that needs CAP_NET_ADMIN).
    public convenience init(name: String) throws(SystemError) {
        let fd = ckvm_tap_open(name)
        guard fd >= 0 else {
            let code = errno
            let hint = code == EPERM || code == EACCES
                ? " (needs CAP_NET_ADMIN, or a TAP created for this user: ip tuntap add \(name) mode tap user $USER)" : ""
            throw SystemError("open TAP \(name)\(hint)", errno: code)
        }
        self.init(name: name, descriptor: OwnedDescriptor(adopting: fd), isSocket: false)
    }

    private init(name: String, descriptor: OwnedDescriptor, isSocket: Bool) {
        self.name = name
        self.descriptor = descriptor
        self.isSocket = isSocket
        scratch = .allocate(byteCount: Self.headerSize + Self.maxFrameSize, alignment: 16)
        headerScratch = .allocate(byteCount: Self.headerSize, alignment: 8)
        vectors = .allocate(capacity: vectorCapacity)
    }

    /// Two connected non-blocking `SOCK_SEQPACKET` sockets that behave like a TAP and its host
    /// side: one header-and-frame record per read or write, each way. For driving the network
    /// adapter without CAP_NET_ADMIN or a kernel network stack (the data-path benchmark).
    /// `setOffloads` fails on them; their link is always up. `bufferBytes` sizes the socket
    /// buffers (forced beyond the system limit when running as root).
    public static func pair(name: String, bufferBytes: Int = 8 << 20) throws(SystemError) -> (TapDevice, peer: TapDevice) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                         0, &fds) == 0 else {
            throw SystemError("socketpair for \(name)", errno: errno)
        }
        var size = Int32(clamping: bufferBytes)
        for fd in fds {
            for (forced, plain) in [(SO_SNDBUFFORCE, SO_SNDBUF), (SO_RCVBUFFORCE, SO_RCVBUF)]
            where setsockopt(fd, SOL_SOCKET, forced, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
                _ = setsockopt(fd, SOL_SOCKET, plain, &size, socklen_t(MemoryLayout<Int32>.size))
            }
        }
        return (TapDevice(name: name, descriptor: OwnedDescriptor(adopting: fds[0]), isSocket: true),
                TapDevice(name: name + "-peer", descriptor: OwnedDescriptor(adopting: fds[1]), isSocket: true))
    }

    deinit {
        scratch.deallocate()
        headerScratch.deallocate()
        vectors.deallocate()
    }

    /// Which offloads frames read from the TAP may still need: a checksum to complete
    /// (TUN_F_CSUM) and TCP segmentation (TUN_F_TSO4/6, which need the checksum one).
    public func setOffloads(checksum: Bool, tcpv4: Bool, tcpv6: Bool) throws(SystemError) {
        let flags: UInt32 = (checksum ? 1 : 0) | (checksum && tcpv4 ? 2 : 0) | (checksum && tcpv6 ? 4 : 0)
        guard ckvm_tap_set_offload(descriptor.rawValue, flags) == 0 else {
            throw SystemError("TUNSETOFFLOAD \(name)", errno: errno)
        }
    }

    /// The next frame and its virtio-net header, or nil when none is waiting.
    public func read() -> (header: VirtioNetHeader, frame: [UInt8])? {
        let n = Glibc.read(descriptor.rawValue, scratch.baseAddress, scratch.count)
        guard n > Self.headerSize, let base = scratch.baseAddress else { return nil }
        return (VirtioNetHeader(at: base), Array(UnsafeRawBufferPointer(rebasing: scratch[Self.headerSize..<n])))
    }

    /// Reads the next frame straight into guest memory, `guestRanges` in order (the kernel copies
    /// it there; nothing is copied here). Returns its virtio-net header and length, or nil
    /// when no frame is waiting or a range is not guest RAM. A frame longer than the ranges is
    /// truncated by the kernel; the caller sizes them for the largest frame it accepts.
    public func read(intoGuest guestRanges: [GuestSegment], in memory: GuestRAM)
        -> (header: VirtioNetHeader, length: Int)? {
        let n = withVectors(count: guestRanges.count + 1) { vectors -> Int in
            vectors[0] = iovec(iov_base: scratch.baseAddress, iov_len: Self.headerSize)
            guard let count = Self.fill(vectors, from: 1, with: guestRanges, in: memory) else { return -1 }
            return readv(descriptor.rawValue, vectors, Int32(count))
        }
        guard n > Self.headerSize, let base = scratch.baseAddress else { return nil }
        return (VirtioNetHeader(at: base), n - Self.headerSize)
    }

    /// Sends one frame behind its virtio-net header: its first bytes are `head`, the rest (if
    /// any) is read by the kernel straight from guest memory (no copy here). False if a range is
    /// not guest RAM, or the host side is not ready (down, queue full) or refused the frame.
    public func write(header: VirtioNetHeader, head: [UInt8], guestRanges: [GuestSegment],
                      in memory: GuestRAM) -> Bool {
        header.store(at: headerScratch)
        return head.withUnsafeBytes { f in
            withVectors(count: guestRanges.count + 2) { vectors in
                vectors[0] = iovec(iov_base: headerScratch, iov_len: Self.headerSize)
                vectors[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: f.baseAddress), iov_len: f.count)
                guard let count = Self.fill(vectors, from: 2, with: guestRanges, in: memory) else { return false }
                let total = (0..<count).reduce(0) { $0 + vectors[$1].iov_len }
                return writev(descriptor.rawValue, vectors, Int32(count)) == total
            }
        }
    }

    /// Runs `body` with room for `count` iovecs: the device's own array (one frame at a time, on
    /// the adapter's thread), or a temporary one for an unusually long list.
    private func withVectors<R>(count: Int, _ body: (UnsafeMutablePointer<iovec>) -> R) -> R {
        if count <= vectorCapacity { return body(vectors) }
        let temporary = UnsafeMutablePointer<iovec>.allocate(capacity: count)
        defer { temporary.deallocate() }
        return body(temporary)
    }

    /// Puts the host addresses of `ranges` (empty ones skipped) into `vectors` from `start`;
    /// returns the iovec count, or nil if a range is not guest RAM.
    private static func fill(_ vectors: UnsafeMutablePointer<iovec>, from start: Int, with ranges: [GuestSegment],
                             in memory: GuestRAM) -> Int? {
        var count = start
        for range in ranges where range.length > 0 {
            guard let base = memory.host(range.address, range.length) else { return nil }
            vectors[count] = iovec(iov_base: base, iov_len: range.length)
            count += 1
        }
        return count
    }

    /// Whether the host side of the interface is administratively up (IFF_UP in sysfs flags).
    public var isUp: Bool {
        if isSocket { return true }
        guard let text = try? Host.readFile("/sys/class/net/\(name)/flags"),
              let flags = UInt32(String(decoding: text, as: UTF8.self)
                  .trimmingPrefix("0x").filter { !$0.isWhitespace }, radix: 16) else { return false }
        return flags & 1 != 0
    }
}
