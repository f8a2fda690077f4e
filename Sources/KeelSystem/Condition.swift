#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex and condition variable pair, for threads that must sleep until another
/// thread changes some state (paused vCPUs waiting for resume).
public final class Condition: @unchecked Sendable {
    // @unchecked: the pthread objects live at stable heap addresses and are only used through
    // pthread calls, which synchronise.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with the mutex held.
    public func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits (mutex held by the caller through `locked`) until `done` returns true.
    public func wait(until done: () -> Bool) {
        while !done() { pthread_cond_wait(condition, mutex) }
    }

    /// Wakes every waiter.
    public func broadcast() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }
}
