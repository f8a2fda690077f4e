import KeelDevices
import KeelHyperV
import KeelKVM
import KeelPlatform
import KeelSystem
import Synchronization

/// The Hyper-V interface of one partition, entirely in user space: the CPUID leaves, the
/// synthetic MSRs (through KVM's MSR filter, so a host KVM with its own Hyper-V support never
/// sees them), the hypercall ports of the page Keel writes into the guest, SynIC interrupts as
/// MSIs, and the VMBus host behind HvPostMessage / HvSignalEvent.
final class HyperVInterface: MSRHandler, HypercallPortHandler {
    /// `out` port of the hypercall page's generic path (an exit to user space).
    static let hypercallPort: UInt8 = 0xE0
    /// `out` port of the HvSignalEvent fast path (ioeventfd per channel connection id).
    static let signalEventPort: UInt8 = 0xE4
    /// Synthetic MSRs that reach user space (KVM_X86_SET_MSR_FILTER denies them to KVM).
    static let msrRange: ClosedRange<UInt32> = 0x4000_0000...0x4000_01FF

    let configuration: HyperVConfiguration
    let synic: SynIC
    let msrs: SyntheticMSRs
    let vmbus: VMBusHost
    private let ports: HypercallPorts
    private let log: @Sendable (String) -> Void
    private let guestLog: RateLimitedLog
    private let crashed: @Sendable (GuestCrashReport) -> Void
    private let identified: @Sendable (GuestOSIdentity) -> Void

    /// - Parameters:
    ///   - crashed: called once per crash report the guest writes to CRASH_CTL.
    ///   - identified: called when the guest writes a non-zero GUEST_OS_ID.
    init(vm: KVMVirtualMachine, ram: GuestRAM, vpCount: Int, hostCPUs: Int, time: GuestTimeSource,
         log: @escaping @Sendable (String) -> Void, crashed: @escaping @Sendable (GuestCrashReport) -> Void,
         identified: @escaping @Sendable (GuestOSIdentity) -> Void) throws {
        configuration = HyperVConfiguration(
            vpCount: vpCount, hostLogicalProcessors: hostCPUs, hypercallPort: Self.hypercallPort,
            signalEventPort: Self.signalEventPort, tscFrequencyHz: time.parameters == nil ? nil : time.tscFrequencyHz,
            guestTSCAtStart: time.guestTSCAtStart)
        self.log = log
        self.crashed = crashed
        self.identified = identified
        guestLog = RateLimitedLog(sink: log)
        let synic = SynIC(vpCount: vpCount, memory: ram, queueLimit: configuration.messageQueueLimit)
        self.synic = synic
        msrs = SyntheticMSRs(configuration: configuration, memory: ram, synic: synic,
                             referenceTime: { time.referenceTime() })
        let routes = MSIRoutes(vm: vm, log: log)
        let inject: @Sendable (SynICInterrupt) -> Void = { routes.inject(vp: $0.vp, vector: $0.vector) }
        let vmbus = try VMBusHost(vm: vm, memory: ram, synic: synic, vpCount: vpCount,
                                  signalEventPort: Self.signalEventPort, inject: inject, log: log)
        self.vmbus = vmbus
        let hypercalls = HypercallDispatcher(memory: ram, postMessage: { vmbus.postMessage($0) },
                                             signalEvent: { vmbus.signalEvent($0) })
        ports = HypercallPorts(dispatcher: hypercalls, hypercallPort: Self.hypercallPort,
                               signalEventPort: Self.signalEventPort, log: log)
        self.inject = inject
    }

    private let inject: @Sendable (SynICInterrupt) -> Void

    /// The hypervisor CPUID leaves (0x40000000–0x4000000A) in Keel's CPUID entry form.
    var cpuidLeaves: [CpuidEntry] {
        HyperVCPUID(configuration).leaves.map {
            CpuidEntry(function: $0.function, index: $0.index, eax: $0.eax, ebx: $0.ebx, ecx: $0.ecx, edx: $0.edx)
        }
    }

    // MARK: MSRHandler (VP threads)

    func readMSR(_ index: UInt32, processor: UInt32) -> UInt64? {
        msrs.read(index, vp: Int(processor))
    }

    func writeMSR(_ index: UInt32, value: UInt64, processor: UInt32) -> Bool {
        switch msrs.write(index, value: value, vp: Int(processor)) {
        case .rejected:
            return false
        case .accepted:
            if index == HyperVMSR.guestOSID, value != 0, processor == 0 {
                identified(GuestOSIdentity(rawValue: value))
            }
            return true
        case .acceptedWithEffect(let effect):
            apply(effect)
            return true
        }
    }

    private func apply(_ effect: MSRWriteEffect) {
        switch effect {
        case let .hypercallPageInstalled(gpa, written), let .referenceTSCPageInstalled(gpa, written):
            if !written { _ = guestLog.log("Hyper-V: page at 0x\(String(gpa, radix: 16)) is outside guest memory") }
        case .guestCrashed(let report):
            crashed(report)
        case .synICUpdated(let update):
            if update.autoEOIRequested {
                _ = guestLog.log("Hyper-V: VP \(update.vp) asked for auto-EOI on a SINT, which KVM's LAPIC cannot do; "
                                 + "the guest ignored the deprecate-AEOI hint and will lose interrupts")
            }
            for irq in update.interrupts { inject(irq) }
        }
    }

    // MARK: HypercallPortHandler (VP threads)

    func portWrite(_ port: UInt16, value: UInt32, on vcpu: KVMVirtualCPU) -> Bool {
        ports.portWrite(port, value: value, on: vcpu)
    }
}
