import Dispatch
import KeelVM
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM stop the VM cleanly (vCPUs leave KVM_RUN and are joined) instead of
/// killing the process mid-exit; the first signal's number is kept for the exit status.
final class StopSignals: Sendable {
    private let first = Mutex<Int32?>(nil)
    nonisolated(unsafe) private var sources: [any DispatchSourceSignal] = []

    init(partition: Partition) {
        for signo in [SIGINT, SIGTERM] {
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo, queue: .global())
            source.setEventHandler { [self] in
                first.withLock { if $0 == nil { $0 = signo } }
                partition.requestStop()
            }
            source.resume()
            sources.append(source)
        }
    }

    var received: Int32? { first.withLock { $0 } }
}
