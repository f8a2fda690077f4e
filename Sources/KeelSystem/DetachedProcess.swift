#if canImport(Glibc)
import Glibc
#endif

/// Processes the management service starts and watches: per-VM workers run detached (their own
/// session, stdin from /dev/null, stdout and stderr appended to a log file), so they outlive the
/// service that started them and never share its terminal or signals.
public enum DetachedProcess {
    /// How a process ended, or that it still runs.
    public enum Status: Equatable, Sendable {
        case running
        case exited(Int32)
        case signalled(Int32)
    }

    /// Starts `arguments[0]` (an absolute path) detached; returns its PID.
    public static func spawn(arguments: [String], logPath: String) throws(SystemError) -> pid_t {
        precondition(!arguments.isEmpty, "no program to run")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        let setSID: Int32 = 0x80  // POSIX_SPAWN_SETSID (glibc >= 2.26)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | setSID))

        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child = pid_t()
        let rc = posix_spawn(&child, arguments[0], &actions, &attributes, argv, environ)
        guard rc == 0 else { throw SystemError("spawn \(arguments[0])", errno: rc) }
        return child
    }

    /// Collects the status of our own child `pid` without blocking. nil when `pid` is not
    /// (or no longer) our child: ask `isAlive` instead.
    public static func reap(_ pid: pid_t) -> Status? {
        var status: Int32 = 0
        while true {
            let rc = waitpid(pid, &status, WNOHANG)
            if rc == 0 { return .running }
            if rc == pid { break }
            if errno == EINTR { continue }
            return nil
        }
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
    }

    /// True when `pid` exists and is not a zombie.
    public static func isAlive(_ pid: pid_t) -> Bool {
        guard pid > 0, let stat = Host.readSmallFile("/proc/\(pid)/stat") else { return false }
        // "pid (comm) S ...": the state follows the last ')'.
        guard let close = stat.lastIndex(of: UInt8(ascii: ")")), close + 2 < stat.count else { return false }
        let state = stat[close + 2]
        return state != UInt8(ascii: "Z") && state != UInt8(ascii: "X")
    }

    /// The command line of process `pid`, nil if it cannot be read.
    public static func commandLine(_ pid: pid_t) -> [String]? {
        guard pid > 0, let bytes = Host.readSmallFile("/proc/\(pid)/cmdline"), !bytes.isEmpty else { return nil }
        return bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
    }

    /// Sends `signal` to `pid`; false when no such process (or not permitted).
    @discardableResult
    public static func send(_ signal: Int32, to pid: pid_t) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, signal) == 0
    }

    /// This process's id.
    public static var currentID: pid_t { getpid() }
}

extension Host {
    /// Reads a small file to its end (works for /proc files, whose size reads as 0); nil on error.
    public static func readSmallFile(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        guard let file = try? OwnedDescriptor.open(path, flags: O_RDONLY) else { return nil }
        var bytes: [UInt8] = []
        while bytes.count < limit {
            guard let chunk = try? file.read(maxCount: 16_384) else { return nil }
            if chunk.isEmpty { break }
            bytes += chunk
        }
        return bytes
    }

    /// Replaces `path` atomically with `bytes`: writes a temporary file in the same directory,
    /// fsyncs it, renames it over `path` and fsyncs the directory. A reader sees the old or the
    /// new content, never a mix, even after a crash.
    public static func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws(SystemError) {
        let directory = parentDirectory(path)
        let temporary = "\(directory)/.\(path.split(separator: "/").last ?? "file").tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do throws(SystemError) {
            let file = try OwnedDescriptor.open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL, mode: mode)
            try file.writeAll(bytes)
            guard fsync(file.rawValue) == 0 else { throw SystemError("fsync \(temporary)") }
        } catch {
            unlink(temporary)
            throw error
        }
        guard Glibc.rename(temporary, path) == 0 else {
            let error = SystemError("rename \(temporary) to \(path)")
            unlink(temporary)
            throw error
        }
        try syncDirectory(directory)
    }

    /// fsync of a directory, so renames and new entries in it are durable.
    public static func syncDirectory(_ path: String) throws(SystemError) {
        let directory = try OwnedDescriptor.open(path, flags: O_RDONLY | O_DIRECTORY)
        guard fsync(directory.rawValue) == 0 else { throw SystemError("fsync \(path)") }
    }

    /// Appends `bytes` to `path` (created with `mode` if missing) in one write.
    public static func append(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws(SystemError) {
        let file = try OwnedDescriptor.open(path, flags: O_WRONLY | O_CREAT | O_APPEND, mode: mode)
        try file.writeAll(bytes)
    }

    /// Creates a directory (and missing parents) with `mode`; an existing directory is fine.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o700) throws(SystemError) {
        if fileKind(path) == .directory { return }
        let parent = parentDirectory(path)
        if parent != path && parent != "/" && parent != "." { try makeDirectories(parent, mode: mode) }
        guard mkdir(path, mode) == 0 || errno == EEXIST else { throw SystemError("mkdir \(path)") }
    }

    /// rename(2): atomic within one file system; renaming a directory onto an existing
    /// non-empty directory fails (ENOTEMPTY/EEXIST).
    public static func rename(_ from: String, to: String) throws(SystemError) {
        guard Glibc.rename(from, to) == 0 else { throw SystemError("rename \(from) to \(to)") }
    }

    /// unlink(2); a missing file is not an error.
    public static func removeFile(_ path: String) {
        _ = unlink(path)
    }

    /// The entries of a directory (without "." and ".."), nil if it cannot be read.
    public static func directoryEntries(_ path: String) -> [String]? {
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Holds an exclusive `flock` on `path` (created if missing) while the descriptor lives;
    /// nil when another process holds it.
    public static func tryLock(_ path: String) throws(SystemError) -> OwnedDescriptor? {
        let file = try OwnedDescriptor.open(path, flags: O_RDWR | O_CREAT, mode: 0o600)
        if flock(file.rawValue, LOCK_EX | LOCK_NB) == 0 { return file }
        if errno == EWOULDBLOCK { return nil }
        throw SystemError("flock \(path)")
    }

    /// The effective user id of this process.
    public static var userID: uid_t { geteuid() }

    private static func parentDirectory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
