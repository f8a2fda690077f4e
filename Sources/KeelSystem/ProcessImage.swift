#if canImport(Glibc)
import Glibc
#endif

/// Replacing the current process image, so `keel run` can become `keel-worker` in place: the
/// worker then owns the terminal, signals and exit status directly.
public enum ProcessImage {
    /// The absolute path of the running executable.
    public static var currentExecutable: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }

    /// execv(path, [path] + arguments); returns only on failure.
    public static func replace(with path: String, arguments: [String]) -> SystemError {
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        let error = SystemError("exec \(path)")
        argv.forEach { free($0) }
        return error
    }
}
