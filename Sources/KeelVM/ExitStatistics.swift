import Synchronization

/// Per-vCPU exit counters (relaxed atomics: one add per exit, no allocation), for diagnosing a
/// guest that hangs or storms: `KEEL_DEBUG_EXITS=1` makes `keel run` print them periodically.
final class ExitStatistics: Sendable {
    let portIO = Atomic<UInt64>(0)
    let mmio = Atomic<UInt64>(0)
    let msr = Atomic<UInt64>(0)
    let interrupted = Atomic<UInt64>(0)
    let lastPort = Atomic<UInt64>(0)
    let lastMMIO = Atomic<UInt64>(0)
    let lastMSR = Atomic<UInt64>(0)
    /// Guest RIP sampled when a kick interrupted KVM_RUN (see `Partition.sampleProcessors`).
    let sampledRIP = Atomic<UInt64>(0)

    @inline(__always)
    func record(_ exit: VCPUExitKind) {
        switch exit {
        case .port(let port):
            portIO.add(1, ordering: .relaxed)
            lastPort.store(port, ordering: .relaxed)
        case .mmio(let address):
            mmio.add(1, ordering: .relaxed)
            lastMMIO.store(address, ordering: .relaxed)
        case .msr(let index):
            msr.add(1, ordering: .relaxed)
            lastMSR.store(index, ordering: .relaxed)
        case .interrupted:
            interrupted.add(1, ordering: .relaxed)
        case .other:
            break
        }
    }

    var summary: String {
        func h(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        return "io=\(portIO.load(ordering: .relaxed)) (last \(h(lastPort.load(ordering: .relaxed)))) "
            + "mmio=\(mmio.load(ordering: .relaxed)) (last \(h(lastMMIO.load(ordering: .relaxed)))) "
            + "msr=\(msr.load(ordering: .relaxed)) (last \(h(lastMSR.load(ordering: .relaxed)))) "
            + "interrupted=\(interrupted.load(ordering: .relaxed)) rip=\(h(sampledRIP.load(ordering: .relaxed)))"
    }
}

/// The part of an exit the statistics keep.
enum VCPUExitKind {
    case port(UInt64), mmio(UInt64), msr(UInt64), interrupted, other
}
