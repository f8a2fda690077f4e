import KeelHyperV
import KeelKVM

/// The two I/O ports of Keel's hypercall page (hyperv-platform.md §3.8), as the exit handler
/// sees them. The generic port is a user-space exit: read RCX/RDX/R8 and the caller's
/// privilege level, run the call, put the result in RAX (KVM completes the OUT, RIP unchanged,
/// on the next entry). The signal-event port normally never exits (each open channel's
/// connection id has an ioeventfd); a write no ioeventfd matched lands here.
public struct HypercallPorts: HypercallPortHandler {
    public let dispatcher: HypercallDispatcher
    public let hypercallPort: UInt16
    public let signalEventPort: UInt16
    private let log: @Sendable (String) -> Void

    public init(dispatcher: HypercallDispatcher, hypercallPort: UInt8, signalEventPort: UInt8,
                log: @escaping @Sendable (String) -> Void) {
        self.dispatcher = dispatcher
        self.hypercallPort = UInt16(hypercallPort)
        self.signalEventPort = UInt16(signalEventPort)
        self.log = log
    }

    public func portWrite(_ port: UInt16, value: UInt32, on vcpu: KVMVirtualCPU) -> Bool {
        switch port {
        case hypercallPort:
            do {
                var regs = try vcpu.registers()
                let sregs = try vcpu.specialRegisters()
                let input = HypercallRegisters(rcx: regs.rcx, rdx: regs.rdx, r8: regs.r8, cpl: UInt8(sregs.cs.selector & 3))
                regs.rax = dispatcher.execute(input, vp: Int(vcpu.id)).rax
                try vcpu.setRegisters(regs)
            } catch {
                log("hypercall on VP \(vcpu.id): \(error)")
            }
            return true
        case signalEventPort:
            // The page itself returns success to the guest; an unknown connection id is dropped.
            _ = dispatcher.signalEventPortWrite(connectionID: value, vp: Int(vcpu.id))
            return true
        default:
            return false
        }
    }
}
