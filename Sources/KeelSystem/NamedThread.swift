import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// A dedicated pthread with a name visible in `ps -L` and /proc. vCPUs and I/O loops run on
/// these, never on Swift's cooperative pool, because they block in the kernel for long times.
public final class NamedThread: @unchecked Sendable {
    // @unchecked: `handle` is written once before `start` returns and only read afterwards.
    private var handle = pthread_t()
    public let name: String

    private final class Box {
        let body: () -> Void
        let name: String
        init(_ body: @escaping () -> Void, _ name: String) { self.body = body; self.name = name }
    }

    /// Starts `body` on a new thread named `name` (truncated to 15 bytes, the kernel's limit).
    public init(name: String, _ body: sending @escaping () -> Void) throws(SystemError) {
        self.name = name
        let box = Unmanaged.passRetained(Box(body, String(name.utf8.prefix(15))!))
        let rc = pthread_create(&handle, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            _ = ckvm_set_thread_name(box.name)
            box.body()
            return nil
        }, box.toOpaque())
        if rc != 0 {
            box.release()
            throw SystemError("pthread_create \(name)", errno: rc)
        }
    }

    /// Sends `signal` to the thread (used to kick vCPUs out of KVM_RUN).
    public func send(signal: Int32) { pthread_kill(handle, signal) }

    /// Waits for the thread to finish.
    public func join() { pthread_join(handle, nil) }

    /// Lets another runnable thread on this CPU run first (sched_yield); returns at once if none.
    public static func yieldProcessor() { sched_yield() }
}
