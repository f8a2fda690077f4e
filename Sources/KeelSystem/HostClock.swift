#if canImport(Glibc)
import Glibc
#endif

/// The host's clocks, for device timers (monotonic) and time synchronisation (wall clock).
public enum HostClock {
    /// CLOCK_MONOTONIC in nanoseconds.
    public static func monotonicNanoseconds() -> UInt64 { read(CLOCK_MONOTONIC) }

    /// CLOCK_REALTIME in nanoseconds since the Unix epoch.
    public static func realtimeNanoseconds() -> UInt64 { read(CLOCK_REALTIME) }

    private static func read(_ clock: clockid_t) -> UInt64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
