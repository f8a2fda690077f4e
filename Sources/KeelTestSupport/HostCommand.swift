import KeelSystem
#if canImport(Glibc)
import Glibc
#endif

/// Runs a host command to completion and returns its exit status and merged output, for test
/// checks on disk images (`sha256sum`, `e2fsck`, `debugfs`, `mke2fs`).
public func runHostCommand(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let child = try ChildProcess(arguments: arguments)
    var bytes: [UInt8] = []
    while let chunk = try? child.output.read(maxCount: 65536), !chunk.isEmpty { bytes += chunk }
    let status = child.wait()
    return (status, String(decoding: bytes, as: UTF8.self))
}

/// A scratch directory for one test's disk images, removed when the value goes away.
public final class ScratchDirectory: Sendable {
    public let path: String

    public init(_ name: String) throws {
        let base = Host.environment("TMPDIR") ?? "/tmp"
        path = "\(base)/keel-test-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let made = try runHostCommand(["mkdir", "-p", path])
        guard made.status == 0 else { throw GuestBootError(description: "mkdir \(path): \(made.output)") }
    }

    deinit { _ = try? runHostCommand(["rm", "-rf", path]) }

    /// Creates a sparse file of `mebibytes` MiB (or a copy of `copying`) and returns its path.
    public func image(_ name: String, mebibytes: Int = 64, copying source: String? = nil) throws -> String {
        let file = "\(path)/\(name)"
        let made = try source.map { try runHostCommand(["cp", "--sparse=always", $0, file]) }
            ?? runHostCommand(["truncate", "-s", "\(mebibytes)M", file])
        guard made.status == 0 else { throw GuestBootError(description: "creating \(file): \(made.output)") }
        return file
    }

    /// SHA-256 (hex) of `count` bytes at byte `offset` of `file`.
    public static func sha256(_ file: String, offset: Int = 0, count: Int) throws -> String {
        let r = try runHostCommand(["sh", "-c", "tail -c +\(offset + 1) '\(file)' | head -c \(count) | sha256sum"])
        return String(r.output.prefix(64))
    }
}
