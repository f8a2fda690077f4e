import Synchronization

/// A thread-safe log that lets through at most `limit` messages per `interval` and counts the
/// rest. Guests can trigger log lines at will (unclaimed ports, bad register writes), so every
/// guest-driven log goes through one of these. The message is an autoclosure: a suppressed
/// message is never formatted, so the suppressed path does not allocate.
///
/// When a message is let through after some were suppressed, " (N suppressed)" is appended to it.
public final class RateLimitedLog: Sendable {
    private struct State {
        var windowStart: Duration
        var emittedInWindow = 0
        var suppressed = 0
        var totalSuppressed = 0
    }

    private let limit: Int
    private let interval: Duration
    private let clock: @Sendable () -> Duration
    private let sink: @Sendable (String) -> Void
    private let state: Mutex<State>

    /// - Parameters:
    ///   - limit: messages allowed per window (at least 1).
    ///   - interval: window length.
    ///   - clock: monotonic time since an arbitrary origin; the default is `ContinuousClock`.
    ///   - sink: receives each emitted line (the VM passes a stderr writer).
    public init(
        limit: Int = 10,
        interval: Duration = .seconds(10),
        clock: (@Sendable () -> Duration)? = nil,
        sink: @escaping @Sendable (String) -> Void
    ) {
        self.limit = max(1, limit)
        self.interval = interval
        if let clock {
            self.clock = clock
        } else {
            let origin = ContinuousClock.now
            self.clock = { ContinuousClock.now - origin }
        }
        self.sink = sink
        self.state = Mutex(State(windowStart: self.clock()))
    }

    /// Emits `message` unless the limit for the current window is reached.
    /// Returns whether the message was emitted.
    @discardableResult
    public func log(_ message: @autoclosure () -> String) -> Bool {
        let now = clock()
        let (allowed, suppressedBefore) = state.withLock { s -> (Bool, Int) in
            if now - s.windowStart >= interval || now < s.windowStart {
                s.windowStart = now
                s.emittedInWindow = 0
            }
            guard s.emittedInWindow < limit else {
                s.suppressed += 1
                s.totalSuppressed += 1
                return (false, 0)
            }
            s.emittedInWindow += 1
            let n = s.suppressed
            s.suppressed = 0
            return (true, n)
        }
        guard allowed else { return false }
        if suppressedBefore > 0 {
            sink(message() + " (\(suppressedBefore) suppressed)")
        } else {
            sink(message())
        }
        return true
    }

    /// Emits a line reporting messages suppressed since the last emitted one, if any
    /// (e.g. at VM shutdown). Does not count against the limit.
    public func flushSuppressed() {
        let n = state.withLock { s -> Int in
            let n = s.suppressed
            s.suppressed = 0
            return n
        }
        if n > 0 { sink("(\(n) suppressed)") }
    }

    /// Messages suppressed since creation (for statistics and tests).
    public var totalSuppressed: Int { state.withLock { $0.totalSuppressed } }
}
