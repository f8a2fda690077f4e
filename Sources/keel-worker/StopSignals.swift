import KeelSystem
import KeelVM
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT stops the VM at once (vCPUs leave KVM_RUN and are joined). SIGTERM asks the guest to
/// shut down through the Hyper-V shutdown service, as Hyper-V's Stop-VM does, and forces the
/// stop when the guest has not powered off within the timeout, has no shutdown service, or a
/// second signal arrives. The number of the signal that forced the stop is kept for the exit
/// status. Create this before any other thread starts: the signals are blocked and collected by
/// a dedicated thread with sigwait.
final class StopSignals: Sendable {
    private let forcing = Mutex<Int32?>(nil)

    init(partition: Partition, shutdownTimeoutSeconds: Int, log: @escaping @Sendable (String) -> Void) throws {
        let signals = SignalSet([SIGINT, SIGTERM])
        signals.blockInCurrentThread()
        _ = try NamedThread(name: "keel-signals") { [self] in
            var askedGuest = false
            while true {
                let signo = signals.wait()
                if signo == SIGTERM, !askedGuest, shutdownTimeoutSeconds > 0 {
                    askedGuest = true
                    if partition.requestGuestShutdown() {
                        log("asking the guest to shut down; forcing power-off in \(shutdownTimeoutSeconds) s")
                        startDeadline(partition: partition, seconds: shutdownTimeoutSeconds, signal: signo, log: log)
                        continue
                    }
                    log("the guest has no shutdown service; stopping it now")
                }
                force(partition, signal: signo)
            }
        }
    }

    /// The signal that forced the stop, if one did.
    var received: Int32? { forcing.withLock { $0 } }

    private func force(_ partition: Partition, signal: Int32) {
        forcing.withLock { if $0 == nil { $0 = signal } }
        partition.requestStop()
    }

    private func startDeadline(partition: Partition, seconds: Int, signal: Int32, log: @escaping @Sendable (String) -> Void) {
        do {
            _ = try NamedThread(name: "keel-shutdown") { [self] in
                let deadline = HostClock.monotonicNanoseconds() + UInt64(seconds) * 1_000_000_000
                while HostClock.monotonicNanoseconds() < deadline {
                    usleep(100_000)
                }
                log("the guest did not shut down within \(seconds) s; powering it off")
                force(partition, signal: signal)
            }
        } catch {
            force(partition, signal: signal)
        }
    }
}
