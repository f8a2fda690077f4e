import KeelKVM
import KeelSystem
import Testing

/// Why a direct /dev/kvm test cannot run here, or nil.
let kvmSkipReason: String? = {
    (try? KVMSystem()) == nil ? "SKIPPED: /dev/kvm cannot be opened on this machine" : nil
}()

/// A one-vCPU VM running a few real-mode instructions at 0x1000 over 64 KiB of RAM: fast even on
/// this machine's software KVM, which emulates every CPL0 instruction.
final class TinyPayload {
    let vm: KVMVirtualMachine
    let vcpu: KVMVirtualCPU
    let ram: GuestRAM

    init(code: [UInt8], msrFilter: [ClosedRange<UInt32>] = []) throws {
        let kvm = try KVMSystem()
        vm = try kvm.createVirtualMachine()
        ram = try GuestRAM(ranges: [(guestAddress: 0, size: 0x10000)])
        try vm.mapMemory(slot: 0, region: ram.regions[0])
        if !msrFilter.isEmpty {
            try vm.enableUserSpaceMSRExits()
            try vm.filterMSRsToUserSpace(msrFilter)
        }
        try ram.write(code, at: 0x1000)
        vcpu = try vm.createVirtualCPU(id: 0)
        var sregs = try vcpu.specialRegisters()
        sregs.cs.base = 0
        sregs.cs.selector = 0
        try vcpu.setSpecialRegisters(sregs)
        var regs = try vcpu.registers()
        regs.rip = 0x1000
        regs.rflags = 2
        try vcpu.setRegisters(regs)
    }
}
