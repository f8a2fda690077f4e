import KeelSystem
import KeelVM
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM stop the VM cleanly (vCPUs leave KVM_RUN and are joined) instead of
/// killing the process mid-exit; the first signal's number is kept for the exit status.
/// Create it before any other thread starts: the signals are blocked and collected by a
/// dedicated thread with sigwait.
final class StopSignals: Sendable {
    private let first = Mutex<Int32?>(nil)

    init(partition: Partition) throws {
        let signals = SignalSet([SIGINT, SIGTERM])
        signals.blockInCurrentThread()
        _ = try NamedThread(name: "keel-signals") { [self] in
            while true {
                let signo = signals.wait()
                first.withLock { if $0 == nil { $0 = signo } }
                partition.requestStop()
            }
        }
    }

    var received: Int32? { first.withLock { $0 } }
}
