#if canImport(Glibc)
import Glibc
#endif

/// A spawned child process with its stdin and merged stdout/stderr on pipes, waited for with
/// waitpid. Used by the test harness and benchmarks to run VMMs; it does not depend on
/// Foundation's run loop (whose wake-up socket cannot be created inside the rig).
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// Write end of the child's standard input.
    public let input: OwnedDescriptor
    /// Read end of the child's standard output and standard error, merged.
    public let output: OwnedDescriptor

    /// Starts `arguments[0]` (an absolute path, or a name looked up in PATH).
    public init(arguments: [String]) throws(SystemError) {
        precondition(!arguments.isEmpty, "no program to run")
        signal(SIGPIPE, SIG_IGN)  // a child that exits early must not kill us through its stdin
        var inPipe: [Int32] = [0, 0]
        var outPipe: [Int32] = [0, 0]
        guard pipe(&inPipe) == 0 else { throw SystemError("pipe") }
        guard pipe(&outPipe) == 0 else {
            close(inPipe[0]); close(inPipe[1])
            throw SystemError("pipe")
        }
        // Our ends must not leak into other children (dup2 in the child clears the flag).
        for fd in inPipe + outPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 2)

        // The child starts with no blocked signals and default dispositions, whatever the
        // spawning thread had (test runners block most signals on their threads).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child = pid_t()
        let rc = posix_spawnp(&child, arguments[0], &actions, &attributes, argv, environ)
        close(inPipe[0])
        close(outPipe[1])
        guard rc == 0 else {
            close(inPipe[1]); close(outPipe[0])
            throw SystemError("spawn \(arguments[0])", errno: rc)
        }
        pid = child
        input = OwnedDescriptor(adopting: inPipe[1])
        output = OwnedDescriptor(adopting: outPipe[0])
    }

    /// Sends `signal` to the child (only ever this child's PID).
    public func send(signal: Int32) { kill(pid, signal) }

    /// Waits for the child; returns its exit status, or 128 + signal when a signal ended it.
    public func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }
}
