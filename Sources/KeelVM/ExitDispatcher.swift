import KeelDevices
import KeelKVM

/// Model-specific registers that Keel emulates itself (the Hyper-V synthetic MSRs later).
/// A nil read or a false write makes the guest take #GP, as on hardware for an unknown MSR.
public protocol MSRHandler: Sendable {
    func readMSR(_ index: UInt32, processor: UInt32) -> UInt64?
    func writeMSR(_ index: UInt32, value: UInt64, processor: UInt32) -> Bool
}

/// Port writes that need the vCPU itself rather than a device: the Hyper-V hypercall ports,
/// whose handler reads and writes guest registers. Returns false for ports it does not own.
public protocol HypercallPortHandler: Sendable {
    func portWrite(_ port: UInt16, value: UInt32, on vcpu: KVMVirtualCPU) -> Bool
}

/// An access no device claimed; reported so the VM can log it at a rate limit.
public struct UnclaimedAccess: Sendable, Equatable {
    public enum Kind: Sendable { case port, mmio, msr }
    public let kind: Kind
    public let address: UInt64
    public let size: Int
    public let isWrite: Bool
    public let value: UInt64

    public init(kind: Kind, address: UInt64, size: Int, isWrite: Bool, value: UInt64) {
        self.kind = kind
        self.address = address
        self.size = size
        self.isWrite = isWrite
        self.value = value
    }
}

/// Why a partition stopped running.
public enum StopReason: Sendable, Equatable, CustomStringConvertible {
    case powerOff
    case reset
    /// Triple fault, KVM internal error or failed entry: the guest cannot go on.
    case guestCrash(String)
    /// The guest reported a panic (pvpanic).
    case guestPanic
    /// The host asked the VM to stop (signal or API).
    case stopRequested
    case hostError(String)

    public var description: String {
        switch self {
        case .powerOff: "guest powered off"
        case .reset: "guest requested a reset"
        case .guestCrash(let why): "guest crashed: \(why)"
        case .guestPanic: "guest kernel panicked"
        case .stopRequested: "stop requested"
        case .hostError(let why): "host error: \(why)"
        }
    }
}

/// What the run loop does after an exit.
public enum ExitOutcome: Sendable, Equatable {
    case resume
    /// HLT reached user space (only without an in-kernel LAPIC, i.e. in small test payloads).
    case halted
    /// The kick signal interrupted KVM_RUN: check for pause/stop requests.
    case interrupted
    case stop(StopReason)
}

/// The VM-exit handler: decodes one exit and dispatches it to the device bus or MSR handler.
/// Called on the vCPU's own thread; allocates nothing for claimed accesses.
public struct ExitDispatcher: Sendable {
    public let bus: DeviceBus
    public let msrs: (any MSRHandler)?
    public let hypercalls: (any HypercallPortHandler)?
    public let unclaimed: @Sendable (UnclaimedAccess) -> Void

    public init(bus: DeviceBus, msrs: (any MSRHandler)?, hypercalls: (any HypercallPortHandler)? = nil,
                unclaimed: @escaping @Sendable (UnclaimedAccess) -> Void) {
        self.bus = bus
        self.msrs = msrs
        self.hypercalls = hypercalls
        self.unclaimed = unclaimed
    }

    public func handle(_ exit: VCPUExit, on vcpu: KVMVirtualCPU) -> ExitOutcome {
        switch exit {
        case .io(let port, let size, let isWrite, let count):
            handlePortIO(port: port, size: size, isWrite: isWrite, count: count, vcpu: vcpu)
            return .resume
        case .mmio(let address, let size, let isWrite):
            handleMMIO(address: address, size: size, isWrite: isWrite, vcpu: vcpu)
            return .resume
        case .readMSR(let index):
            let value = msrs?.readMSR(index, processor: vcpu.id)
            if value == nil { unclaimed(UnclaimedAccess(kind: .msr, address: UInt64(index), size: 8, isWrite: false, value: 0)) }
            vcpu.completeMSRRead(value)
            return .resume
        case .writeMSR(let index, let value):
            let accepted = msrs?.writeMSR(index, value: value, processor: vcpu.id) ?? false
            if !accepted { unclaimed(UnclaimedAccess(kind: .msr, address: UInt64(index), size: 8, isWrite: true, value: value)) }
            vcpu.completeMSRWrite(accepted: accepted)
            return .resume
        case .halt:
            return .halted
        case .interrupted:
            return .interrupted
        case .shutdown:
            return .stop(.guestCrash("triple fault (vCPU \(vcpu.id) shut down)\n" + describeRegisters(vcpu)))
        case .systemEvent(let type):
            switch type {
            case 1: return .stop(.powerOff)  // KVM_SYSTEM_EVENT_SHUTDOWN
            case 2: return .stop(.reset)     // KVM_SYSTEM_EVENT_RESET
            default: return .stop(.guestCrash("system event \(type) on vCPU \(vcpu.id)"))
            }
        case .internalError(let suberror):
            return .stop(.guestCrash("KVM internal error, suberror \(suberror), vCPU \(vcpu.id)\n" + describeRegisters(vcpu)))
        case .failedEntry(let reason):
            return .stop(.guestCrash("vCPU \(vcpu.id) failed to enter the guest (reason 0x\(String(reason, radix: 16)))\n"
                                     + describeRegisters(vcpu)))
        case .other(let reason):
            return .stop(.guestCrash("unexpected KVM exit reason \(reason) on vCPU \(vcpu.id)\n" + describeRegisters(vcpu)))
        }
    }

    func handlePortIO(port: UInt16, size: Int, isWrite: Bool, count: Int, vcpu: KVMVirtualCPU) {
        if isWrite, size == 4, count == 1, let hypercalls, hypercalls.portWrite(port, value: vcpu.ioValue(at: 0), on: vcpu) {
            return
        }
        for i in 0..<count {
            if isWrite {
                let value = vcpu.ioValue(at: i)
                if !bus.portWrite(port, size: size, value: value) {
                    unclaimed(UnclaimedAccess(kind: .port, address: UInt64(port), size: size, isWrite: true, value: UInt64(value)))
                }
            } else if let value = bus.portRead(port, size: size) {
                vcpu.setIOValue(value, at: i)
            } else {
                vcpu.setIOValue(UInt32.max, at: i)
                unclaimed(UnclaimedAccess(kind: .port, address: UInt64(port), size: size, isWrite: false, value: 0))
            }
        }
    }

    func handleMMIO(address: UInt64, size: Int, isWrite: Bool, vcpu: KVMVirtualCPU) {
        if isWrite {
            let value = vcpu.mmioWriteValue
            if !bus.mmioWrite(address, size: size, value: value) {
                unclaimed(UnclaimedAccess(kind: .mmio, address: address, size: size, isWrite: true, value: value))
            }
        } else if let value = bus.mmioRead(address, size: size) {
            vcpu.setMMIOReadValue(value)
        } else {
            vcpu.setMMIOReadValue(UInt64.max)
            unclaimed(UnclaimedAccess(kind: .mmio, address: address, size: size, isWrite: false, value: 0))
        }
    }
}

/// The vCPU's registers in a crash report.
public func describeRegisters(_ vcpu: KVMVirtualCPU) -> String {
    guard let r = try? vcpu.registers(), let s = try? vcpu.specialRegisters() else {
        return "  (registers unavailable)"
    }
    func h(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
    return """
      rip=\(h(r.rip)) rsp=\(h(r.rsp)) rflags=\(h(r.rflags))
      rax=\(h(r.rax)) rbx=\(h(r.rbx)) rcx=\(h(r.rcx)) rdx=\(h(r.rdx))
      rsi=\(h(r.rsi)) rdi=\(h(r.rdi)) rbp=\(h(r.rbp))
      cr0=\(h(s.cr0)) cr2=\(h(s.cr2)) cr3=\(h(s.cr3)) cr4=\(h(s.cr4)) efer=\(h(s.efer))
      cs=\(h(UInt64(s.cs.selector))) base=\(h(s.cs.base)) l=\(s.cs.l) db=\(s.cs.db)
    """
}
