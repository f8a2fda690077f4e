import KeelKVM
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

    /// Counts `exit`; on a kick, samples the guest RIP (this runs on the vCPU's own thread).
    @inline(__always)
    func record(_ exit: VCPUExit, on vcpu: KVMVirtualCPU) {
        switch exit {
        case .io(let port, _, _, _):
            portIO.add(1, ordering: .relaxed)
            lastPort.store(UInt64(port), ordering: .relaxed)
        case .mmio(let address, _, _):
            mmio.add(1, ordering: .relaxed)
            lastMMIO.store(address, ordering: .relaxed)
        case .readMSR(let index), .writeMSR(let index, _):
            msr.add(1, ordering: .relaxed)
            lastMSR.store(UInt64(index), ordering: .relaxed)
        case .interrupted:
            interrupted.add(1, ordering: .relaxed)
            if let rip = try? vcpu.registers().rip { sampledRIP.store(rip, ordering: .relaxed) }
        default:
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
