#if canImport(Glibc)
import Glibc
#endif

/// The few host facts and file operations the VM needs, without Foundation (which would add
/// several MiB of shared libraries to every worker process).
public enum Host {
    public enum FileKind: Equatable, Sendable { case missing, directory, other }

    /// What is at `path` (following symlinks).
    public static func fileKind(_ path: String) -> FileKind {
        var info = stat()
        guard stat(path, &info) == 0 else { return .missing }
        return info.st_mode & S_IFMT == S_IFDIR ? .directory : .other
    }

    public static func isReadable(_ path: String) -> Bool { access(path, R_OK) == 0 }
    public static func isWritable(_ path: String) -> Bool { access(path, W_OK) == 0 }

    /// Size in bytes of the file at `path` (following symlinks), nil if it cannot be examined.
    public static func fileSize(_ path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(max(0, info.st_size))
    }

    /// The whole file, read into one buffer of the file's size; the error names the path.
    public static func readFile(_ path: String) throws(SystemError) -> [UInt8] {
        let file = try OwnedDescriptor.open(path, flags: O_RDONLY)
        var info = stat()
        guard fstat(file.rawValue, &info) == 0 else { throw SystemError("stat \(path)") }
        let size = Int(info.st_size)
        var failure: SystemError?
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size {
                let n = read(file.rawValue, buffer.baseAddress! + count, size - count)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { failure = SystemError("read \(path)"); return }
                if n == 0 { return }  // the file shrank while we read it
                count += n
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Physical memory of this host in bytes.
    public static var physicalMemory: UInt64 {
        UInt64(max(0, sysconf(Int32(_SC_PHYS_PAGES)))) * UInt64(max(0, sysconf(Int32(_SC_PAGESIZE))))
    }

    /// Online logical processors.
    public static var onlineProcessors: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// An environment variable, or nil.
    public static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
