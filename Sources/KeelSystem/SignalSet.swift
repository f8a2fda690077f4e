#if canImport(Glibc)
import Glibc
#endif

/// Synchronous signal handling: block a set of signals in the calling thread (and so in every
/// thread it creates afterwards), then collect them with `wait` on a dedicated thread. No
/// asynchronous handler runs, so stopping a VM on SIGTERM needs no async-signal-safe code.
public struct SignalSet: Sendable {
    public let signals: [Int32]

    public init(_ signals: [Int32]) { self.signals = signals }

    private var set: sigset_t {
        var s = sigset_t()
        sigemptyset(&s)
        for signal in signals { sigaddset(&s, signal) }
        return s
    }

    /// Blocks the signals in the calling thread; threads created later inherit the mask.
    public func blockInCurrentThread() {
        var s = set
        pthread_sigmask(SIG_BLOCK, &s, nil)
    }

    /// Waits until one of the (blocked) signals arrives and returns its number.
    public func wait() -> Int32 {
        var s = set
        var received: Int32 = 0
        while sigwait(&s, &received) != 0 {}
        return received
    }
}
