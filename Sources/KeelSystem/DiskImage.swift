import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// A raw disk image file opened for a VM, locked so no second VM (Keel or not, if it uses
/// `flock`) writes it at the same time: read-write images take an exclusive lock, read-only
/// images a shared one. Data moves straight between the file and guest RAM with vectored
/// I/O after the guest ranges are bounds-checked; nothing is copied through Swift buffers.
public final class DiskImage: Sendable {
    public let path: String
    public let readOnly: Bool
    /// Size in bytes when opened.
    public let size: UInt64
    private let descriptor: OwnedDescriptor

    /// Opens and locks `path`. Errors name the path and say when another process holds it.
    public init(path: String, readOnly: Bool) throws(SystemError) {
        self.path = path
        self.readOnly = readOnly
        descriptor = try OwnedDescriptor.open(path, flags: readOnly ? O_RDONLY : O_RDWR)
        if flock(descriptor.rawValue, (readOnly ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0 {
            let code = errno
            throw SystemError(code == EWOULDBLOCK ? "disk image \(path) is in use by another VM (locked)"
                                                  : "lock \(path)", errno: code)
        }
        let end = lseek(descriptor.rawValue, 0, SEEK_END)
        guard end >= 0 else { throw SystemError("size of \(path)") }
        size = UInt64(end)
    }

    /// Reads `length` bytes at `offset` of the image into guest RAM, in the order of `segments`
    /// (guest-physical address, length). Bytes past the end of the image read as zeros.
    public func read(at offset: UInt64, into segments: [GuestSegment], of ram: GuestRAM) throws(DiskIOError) {
        try transfer(at: offset, segments, ram, write: false)
    }

    /// Writes guest RAM (`segments`, in order) to the image at `offset`.
    public func write(at offset: UInt64, from segments: [GuestSegment], of ram: GuestRAM) throws(DiskIOError) {
        guard !readOnly else { throw .readOnly }
        try transfer(at: offset, segments, ram, write: true)
    }

    /// Makes every completed write durable (fdatasync).
    public func flush() throws(DiskIOError) {
        guard fdatasync(descriptor.rawValue) == 0 else { throw .system(SystemError("fdatasync \(path)")) }
    }

    /// Deallocates a byte range (reads return zeros afterwards); the file keeps its size.
    public func punchHole(at offset: UInt64, length: UInt64) throws(DiskIOError) {
        guard !readOnly else { throw .readOnly }
        guard ckvm_punch_hole(descriptor.rawValue, Int64(clamping: offset), Int64(clamping: length)) == 0 else {
            throw .system(SystemError("fallocate(punch hole) \(path)"))
        }
    }

    private static let maxVectors = 1024   // IOV_MAX

    private func transfer(at offset: UInt64, _ segments: [GuestSegment], _ ram: GuestRAM,
                          write: Bool) throws(DiskIOError) {
        var vectors: [iovec] = []
        vectors.reserveCapacity(segments.count)
        for s in segments where s.length > 0 {
            guard let host = ram.host(s.address, s.length) else {
                throw .outsideGuestMemory(GuestMemoryError(address: s.address, count: s.length))
            }
            vectors.append(iovec(iov_base: host, iov_len: s.length))
        }
        var position = off_t(clamping: offset)
        var index = 0
        while index < vectors.count {
            let batch = min(vectors.count - index, Self.maxVectors)
            let n = vectors[index..<index + batch].withUnsafeBufferPointer { v in
                write ? pwritev(descriptor.rawValue, v.baseAddress, Int32(batch), position)
                      : preadv(descriptor.rawValue, v.baseAddress, Int32(batch), position)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw .system(SystemError("\(write ? "write" : "read") \(path) at \(position)"))
            }
            if n == 0 {
                guard !write else { throw .system(SystemError("write \(path) at \(position)", errno: EIO)) }
                // End of file: the rest reads as zeros.
                for v in vectors[index...] { v.iov_base?.initializeMemory(as: UInt8.self, repeating: 0, count: v.iov_len) }
                return
            }
            position += off_t(n)
            // Skip fully transferred vectors; shorten a partially transferred one.
            var done = n
            while index < vectors.count, done >= vectors[index].iov_len {
                done -= vectors[index].iov_len
                index += 1
            }
            if done > 0, index < vectors.count {
                vectors[index].iov_base = vectors[index].iov_base.map { $0 + done }
                vectors[index].iov_len -= done
            }
        }
    }
}

/// Why a disk transfer failed; the storage device turns it into a SCSI error for the guest.
public enum DiskIOError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The host's read, write, flush or hole punch failed (errno inside; ENOSPC when full).
    case system(SystemError)
    /// A guest buffer is not guest RAM.
    case outsideGuestMemory(GuestMemoryError)
    /// Write or unmap on a read-only image.
    case readOnly

    public var description: String {
        switch self {
        case .system(let e): "\(e)"
        case .outsideGuestMemory(let e): "\(e)"
        case .readOnly: "the disk is read-only"
        }
    }
}
