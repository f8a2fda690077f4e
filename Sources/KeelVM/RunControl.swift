import KeelSystem
import Synchronization

/// The partition's run state shared by its vCPU threads and the controlling thread: running,
/// paused or stopping, the first stop reason, and the doorbell the controller waits on.
final class RunControl: Sendable {
    enum State: UInt8 { case running = 0, paused = 1, stopping = 2 }

    private let state = Atomic<UInt8>(State.running.rawValue)
    private let reason = Mutex<StopReason?>(nil)
    private let parked = Mutex<Int>(0)
    /// Paused vCPUs sleep on this until `resume` or a stop.
    private let condition = Condition()
    /// Signalled once when the partition starts stopping.
    let stopped: EventFD
    /// Kicks every vCPU out of KVM_RUN so it sees a state change.
    private let kickAll: @Sendable () -> Void

    init(kickAll: @escaping @Sendable () -> Void) throws(SystemError) {
        stopped = try EventFD()
        self.kickAll = kickAll
    }

    var isStopping: Bool { state.load(ordering: .acquiring) == State.stopping.rawValue }
    var isPaused: Bool { state.load(ordering: .acquiring) == State.paused.rawValue }

    /// Records the first reason, moves to stopping and wakes everyone. Later calls keep the
    /// first reason (a vCPU's triple fault wins over the shutdown it causes elsewhere).
    func requestStop(_ why: StopReason) {
        let first = reason.withLock { current -> Bool in
            guard current == nil else { return false }
            current = why
            return true
        }
        guard first else { return }
        // Under the condition's mutex, so a vCPU about to park cannot miss the change.
        condition.locked { state.store(State.stopping.rawValue, ordering: .releasing) }
        condition.broadcast()
        kickAll()
        stopped.signal()
    }

    var stopReason: StopReason? { reason.withLock { $0 } }

    func pause() {
        guard state.compareExchange(expected: State.running.rawValue, desired: State.paused.rawValue,
                                    ordering: .acquiringAndReleasing).exchanged else { return }
        kickAll()
    }

    func resume() {
        condition.locked {
            _ = state.compareExchange(expected: State.paused.rawValue, desired: State.running.rawValue,
                                      ordering: .acquiringAndReleasing)
        }
        condition.broadcast()
    }

    /// Number of vCPUs currently parked by a pause.
    var parkedCount: Int { parked.withLock { $0 } }

    /// Called by a vCPU thread between runs: parks while paused; returns false when stopping.
    @inline(__always)
    func mayRun() -> Bool {
        let s = state.load(ordering: .acquiring)
        if s == State.running.rawValue { return true }
        if s == State.stopping.rawValue { return false }
        condition.locked {
            parked.withLock { $0 += 1 }
            condition.wait { state.load(ordering: .acquiring) != State.paused.rawValue }
            parked.withLock { $0 -= 1 }
        }
        return !isStopping
    }
}
